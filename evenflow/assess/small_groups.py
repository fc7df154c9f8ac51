"""The one rule for small groups, used by every consumer.

groups.json, the fairness report, the review, the gates, monitoring and the model card all read it.
Below ``min_cell`` rows a group is *private* and only its n is shown; with fewer than
``min_positives`` positives or ``min_negatives`` negatives it is shown with its (wide) intervals,
marked *insufficient* evidence, and kept out of between-group summaries and gates; otherwise it
is *reported*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from evenflow.assess.arrays import ObjectArray
from evenflow.config.fairness import FairnessParams
from evenflow.numbers import finite_int

CellStatus = Literal["private", "insufficient", "reported"]
PRIVATE: CellStatus = "private"
INSUFFICIENT: CellStatus = "insufficient"
REPORTED: CellStatus = "reported"
LEFT_OUT: tuple[CellStatus, ...] = (PRIVATE, INSUFFICIENT)


def cell_status(n: int, n_pos: int, n_neg: int, params: FairnessParams) -> CellStatus:
    """The one rule for small groups: ``private``, ``insufficient`` or ``reported``.

    Args:
        n: Rows in the cell.
        n_pos: Positive labels in the cell.
        n_neg: Negative labels in the cell.
        params: ``min_cell`` (privacy floor), ``min_positives`` and ``min_negatives``.

    Returns:
        ``private`` when ``n < min_cell`` (only n may be shown); ``insufficient`` when
        ``n_pos < min_positives`` or ``n_neg < min_negatives`` (shown with its intervals, marked,
        kept out of summaries and gates); ``reported`` otherwise.
    """
    if n < params.min_cell:
        return PRIVATE
    if n_pos < params.min_positives or n_neg < params.min_negatives:
        return INSUFFICIENT
    return REPORTED


def cell_statuses(
    n: npt.ArrayLike, n_pos: npt.ArrayLike, n_neg: npt.ArrayLike, params: FairnessParams
) -> ObjectArray:
    """:func:`cell_status` of many cells at once (elementwise over equal-shaped arrays)."""
    rows, pos, neg = (np.asarray(a) for a in (n, n_pos, n_neg))
    status = np.full(rows.shape, REPORTED, dtype=object)
    status[(pos < params.min_positives) | (neg < params.min_negatives)] = INSUFFICIENT
    status[rows < params.min_cell] = PRIVATE
    return status


def cell_reason(n: int, n_pos: int, n_neg: int, params: FairnessParams) -> str | None:
    """Why a cell is private or insufficient, in words; None for a reported cell.

    A private cell's reason names only its n: its positives are not shown.
    """
    status = cell_status(n, n_pos, n_neg, params)
    if status == PRIVATE:
        return f"{n} rows < min_cell={params.min_cell} (private: only n is shown)"
    if status == REPORTED:
        return None
    reasons = []
    if n_pos < params.min_positives:
        reasons.append(f"{n_pos} positives < min_positives={params.min_positives}")
    if n_neg < params.min_negatives:
        reasons.append(f"{n_neg} negatives < min_negatives={params.min_negatives}")
    return "insufficient evidence: " + "; ".join(reasons)


def record_status(record: Mapping[str, Any], params: FairnessParams) -> CellStatus:
    """The status of a logged per-group record (``groups.json``) under the rule.

    A record carries its ``status`` since the rule was unified. Older records carry ``n``,
    ``n_pos`` and ``suppressed`` instead: a suppressed one had no figures (private); the others
    are classified from their counts under ``params``.
    """
    status = record.get("status")
    if status in (PRIVATE, INSUFFICIENT, REPORTED):
        return cast(CellStatus, status)
    if record.get("suppressed"):
        return PRIVATE
    n, n_pos = finite_int(record.get("n")), finite_int(record.get("n_pos"))
    if n is None or n_pos is None:
        return PRIVATE  # nothing to classify by: show nothing
    return cell_status(n, n_pos, n - n_pos, params)
