"""Row checks of a batch against its contract, fed chunk by chunk.

What a contract says about single rows is judged per chunk (``RowChecker.check``); what it says
about the batch as a whole (a ``mostly`` share, a column holding no value of its kind, an empty
label column) is tallied across chunks and judged at the end (``RowChecker.finish``), so the
chunk size changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evenflow.contracts.kinds import KINDS
from evenflow.contracts.row_rules import RowRule, row_rules
from evenflow.errors import DataError

# Most example values quoted in one warning line.
_MAX_EXAMPLES = 3
# A type rule that every one of at least this many values breaks describes the column, not rows.
_WHOLE_COLUMN = 2


@dataclass(frozen=True)
class ChunkCheck:
    """Which rows of one chunk break the contract, and the rules each broke."""

    rejected: np.ndarray
    reasons: pd.Series


@dataclass(frozen=True)
class BatchCheck:
    """The batch as a whole: rows rejected per rule, what was not checked, batch warnings."""

    counts: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RowCheck:
    """Outcome of the row checks: which rows failed which rules, and what was not checked."""

    rejected: np.ndarray
    reasons: pd.Series
    counts: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


def check_rows(
    frame: pd.DataFrame,
    suite: Mapping[str, Any],
    *,
    features: Mapping[str, str],
    target: str | None,
) -> RowCheck:
    """Evaluate the suite's column expectations row by row on one frame (see ``row_rules``).

    Args:
        frame: The batch as read.
        suite: The dataset's contract (GX suite JSON).
        features: Model input columns and their signature types ("long", "double", "string", ...):
            whole-number columns must hold whole numbers, or the model refuses the batch.
        target: The label column; absent from a scoring batch, its expectations are skipped.

    Raises:
        DataError: a column holds no value of the contracted kind at all (a wrong column or file).
    """
    checker = RowChecker(list(frame.columns), suite, features=features, target=target)
    rows = checker.check(frame)
    batch = checker.finish()
    return RowCheck(rows.rejected, rows.reasons, batch.counts, batch.skipped, batch.warnings)


@dataclass
class _KindTally:
    """What a type rule saw so far: a column of the wrong kind fails on every value it holds."""

    dtype: str
    values: int = 0
    failing: int = 0
    examples: list[Any] = field(default_factory=list)

    def add(self, values: pd.Series, failing: np.ndarray) -> None:
        """Count the chunk's values and failures; keep the first few values while all fail."""
        self.values += int(values.notna().sum())
        self.failing += int(failing.sum())
        if self.failing < self.values or len(self.examples) >= _MAX_EXAMPLES:
            return
        for value in values.dropna().unique():
            if len(self.examples) == _MAX_EXAMPLES:
                return
            if value not in self.examples:
                self.examples.append(value)

    def require(self, rule: RowRule) -> None:
        """Stop the batch when every one of its values (at least two) breaks the type rule."""
        if rule.expects is None or self.values < _WHOLE_COLUMN or self.failing < self.values:
            return
        words = KINDS[rule.expects].words
        raise DataError(
            f"column {rule.column!r} holds no {words} (dtype {self.dtype}, e.g. "
            f"{', '.join(repr(v) for v in self.examples)}); the contract ({rule.expectation}) "
            f"expects {words}: wrong column or wrong file"
        )


class RowChecker:
    """The contract's row checks for one batch, fed chunk by chunk.

    Rules come from the batch's columns, the same in every chunk. What a contract says about the
    batch as a whole (a ``mostly`` share, a column with no value of its kind, an empty label
    column) is tallied chunk by chunk and judged by ``finish``, so the chunk size changes nothing.
    """

    def __init__(
        self,
        columns: Sequence[str],
        suite: Mapping[str, Any],
        *,
        features: Mapping[str, str],
        target: str | None,
    ) -> None:
        self._columns = list(columns)
        self._suite = suite
        self._features = dict(features)
        self._target = target
        self._rules, _ = row_rules(self._columns, suite, features=features, target=target)
        self._rows = 0
        self._labels = 0
        self._failing = [0] * len(self._rules)
        self._kinds: dict[int, _KindTally] = {}
        self._counts: dict[str, int] = {}

    def check(self, chunk: pd.DataFrame) -> ChunkCheck:
        """Which rows of the chunk break which rules (rows by position in the chunk)."""
        self._rows += len(chunk)
        if self._target in chunk.columns:
            self._labels += int(chunk[self._target].notna().sum())
        masks: dict[str, np.ndarray] = {}
        by_column: dict[str, np.ndarray] = {}
        pieces: list[pd.Series] = []
        for index, rule in enumerate(self._rules):
            column = chunk[rule.column]
            failing = rule.failing(column).to_numpy(dtype=bool)
            self._tally(index, rule, column, failing)
            if rule.mostly < 1.0:
                continue
            if rule.secondary and rule.column in by_column:
                failing = failing & ~by_column[rule.column]
            if not failing.any():
                continue
            masks[rule.key] = failing
            by_column[rule.column] = by_column.get(rule.column, False) | failing
            positions = np.flatnonzero(failing)
            pieces.append(
                pd.Series(
                    rule.explain(column.iloc[positions]).to_numpy(), index=positions, dtype=str
                )
            )
        for key, mask in masks.items():
            self._counts[key] = self._counts.get(key, 0) + int(mask.sum())
        return _chunk_check(len(chunk), masks.values(), pieces)

    def finish(self) -> BatchCheck:
        """Judge the batch as a whole, once every chunk was checked.

        Raises:
            DataError: a column holds no value of the contracted kind at all.
        """
        for index, tally in self._kinds.items():
            tally.require(self._rules[index])
        label_empty = self._target in self._columns and not self._labels
        _, skipped = row_rules(
            self._columns,
            self._suite,
            features=self._features,
            target=self._target,
            label_empty=label_empty,
        )
        warnings = [
            f"{rule.expectation} on '{rule.column}': {share:.1%} of rows break it, the contract "
            f"allows {1.0 - rule.mostly:.1%} (mostly={rule.mostly}); rows kept: a single row "
            "may break it"
            for rule, failing in zip(self._rules, self._failing, strict=True)
            if rule.mostly < 1.0 and (share := failing / self._rows) > 1.0 - rule.mostly
        ]
        counts = {r.key: self._counts[r.key] for r in self._rules if r.key in self._counts}
        return BatchCheck(counts, tuple(skipped), tuple(warnings))

    def _tally(self, index: int, rule: RowRule, column: pd.Series, failing: np.ndarray) -> None:
        self._failing[index] += int(failing.sum())
        if rule.expects is not None:
            self._kinds.setdefault(index, _KindTally(str(column.dtype))).add(column, failing)


def _chunk_check(rows: int, masks: Iterable[np.ndarray], pieces: list[pd.Series]) -> ChunkCheck:
    """Rows rejected by any rule, each with its failed rules joined in rule order."""
    rejected = np.zeros(rows, dtype=bool)
    for failing in masks:
        rejected |= failing
    if not pieces:
        return ChunkCheck(rejected, pd.Series([], dtype=str))
    joined = pd.concat(pieces).groupby(level=0, sort=True).agg("; ".join)
    return ChunkCheck(rejected, joined.reindex(np.flatnonzero(rejected)))
