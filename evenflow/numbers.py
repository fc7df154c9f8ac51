"""Reading numbers out of logged JSON, where a missing, boolean or non-finite value means "none"."""

from __future__ import annotations

import math
from typing import Any


def finite_number(value: Any) -> float | None:
    """The value as a finite float, or None (JSON from reports may hold null, NaN or text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def finite_int(value: Any) -> int | None:
    """The value as an int when it is a finite number, else None."""
    number = finite_number(value)
    return None if number is None else int(number)
