"""Column kinds: the one table of what a column's type can be, as pandas, GX and people name it.

Three readers ask "what kind of column is this?" and must agree: suite inference (which GX type
list to write), the row checks of scoring (which values a type list admits) and the handoff
profile (which statistics to keep). The kinds, their GX type names and their words live here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "text", "boolean", "datetime"]
ProfileKind = Literal["numeric", "boolean", "text", "datetime", "other"]
"""A profiled column's kind: ``other`` for dtypes no contract names (complex, period, ...)."""


@dataclass(frozen=True)
class ColumnKind:
    """One kind of column: the GX type names it is written with and read from, and its words."""

    gx_types: tuple[str, ...]
    """Type names inference writes, as GX's pandas check resolves them (numpy dtype names,
    pandas extension dtype classes), in the order a suite lists them."""
    also_read: frozenset[str]
    """Other names of the kind a hand-written contract may use."""
    words: str
    """The kind in a sentence: ``holds no {words}``."""

    @property
    def names(self) -> frozenset[str]:
        """Every type name of the kind a contract may use."""
        return frozenset(self.gx_types) | self.also_read


# Integers and floats are one family: a CSV integer column with one missing value parses as
# float64, and the null check reports that more clearly than a type failure would.
_NUMERIC = ColumnKind(
    gx_types=(
        *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
        "float32",
        "float64",
        *(f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
        "Float32Dtype",
        "Float64Dtype",
    ),
    also_read=frozenset({"float16", "int", "float"}),
    words="a number",
)

KINDS: dict[Kind, ColumnKind] = {
    "numeric": _NUMERIC,
    # "str" matches each value of an object column; "StringDtype" pandas' python-backed strings.
    "text": ColumnKind(("str", "StringDtype"), frozenset({"string"}), "text"),
    "boolean": ColumnKind(("bool", "BooleanDtype"), frozenset(), "a boolean"),
    "datetime": ColumnKind(
        ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]"),
        frozenset({"datetime", "Timestamp"}),
        "a date-time",
    ),
}


def kind_of_type_list(type_list: Iterable[Any]) -> Kind | None:
    """The kind a contract's type list names, or None when it names several or none."""
    names = {str(name) for name in type_list}
    for kind, column_kind in KINDS.items():
        if names and names <= column_kind.names:
            return kind
    return None


def gx_kind(dtype: Any, *, holds_text: bool) -> Kind | None:
    """The kind of a dtype GX can check, or None where GX cannot express it.

    An object column is text only where its values are all strings (``holds_text``).
    """
    if pd.api.types.is_object_dtype(dtype):
        return "text" if holds_text else None
    if dtype == pd.StringDtype():
        return "text"
    name = dtype.name if isinstance(dtype, np.dtype) else type(dtype).__name__
    for kind in ("numeric", "boolean", "datetime"):
        if name in KINDS[kind].gx_types:
            return kind
    return None


def profile_kind(dtype: Any) -> ProfileKind:
    """The kind of a column as profiled: categoricals and objects are text."""
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "text"
    if isinstance(dtype, pd.CategoricalDtype):
        return "text"
    return "other"


def is_plain_numeric(dtype: Any) -> bool:
    """Numbers, and not booleans (which pandas also calls numeric)."""
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def dtype_holds(dtype: Any, kind: Kind) -> bool:
    """Whether every value a column of ``dtype`` can hold is of ``kind`` (no per-value test)."""
    if kind == "numeric":
        return is_plain_numeric(dtype)
    if kind == "text":
        return isinstance(dtype, pd.StringDtype)
    if kind == "boolean":
        return bool(pd.api.types.is_bool_dtype(dtype))
    return bool(pd.api.types.is_datetime64_any_dtype(dtype))
