"""The impact-ratio tables as records: what a bias audit under NYC Local Law 144 reads.

Computed by :mod:`evenflow.assess.impact_ratio`; read by the card, the gates and the fairness
report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evenflow.assess.estimates import Estimate
from evenflow.assess.small_groups import CellStatus
from evenflow.config.fairness import ImpactRatioParams
from evenflow.records import Record

ImpactFlag = Literal["below four-fifths", "insufficient evidence", "ok"]
BELOW: ImpactFlag = "below four-fifths"
UNSURE: ImpactFlag = "insufficient evidence"
OK: ImpactFlag = "ok"
MIN_COMPARED = 2  # an impact ratio needs at least two categories compared
Rate = Literal["selection", "scoring"]
RATES: tuple[Rate, ...] = ("selection", "scoring")


class RateRatio(Record):
    """One rate of a category, its impact ratio against the reference category, and the flag."""

    rate: Estimate
    impact_ratio: Estimate | None = Field(
        default=None, description="Rate / the reference category's rate; None without a reference."
    )
    flag: ImpactFlag | None = Field(
        default=None, description="The impact ratio's interval against the four-fifths limit."
    )


class ImpactCategory(Record):
    """A known category of a slice holding at least the minimum share of rows."""

    name: str
    values: dict[str, str] = Field(description="Sensitive column -> value defining the category.")
    n: int
    share: float = Field(description="n / all rows of the data (unknown categories included).")
    status: CellStatus = Field(description="The one rule for small groups (cell_status).")
    reason: str | None = Field(default=None, description="Why it is private or insufficient.")
    selection: RateRatio | None = Field(
        default=None, description="Share decided positive; None for a private category."
    )
    scoring: RateRatio | None = Field(
        default=None, description="Share scored above the median score; None when private."
    )


class SmallCategory(Record):
    """A category under the minimum share: kept out of the ratios, disclosed with its n."""

    name: str
    values: dict[str, str]
    n: int
    share: float


class ImpactSlice(Record):
    """The impact-ratio table of one sensitive column or one intersection of them."""

    name: str
    columns: tuple[str, ...]
    n_rows: int = Field(description="All rows, unknown categories included.")
    n_unknown: int = Field(description="Rows whose category is unknown in any of the columns.")
    reference: dict[Rate, str | None] = Field(
        description="Per rate: the category with the highest rate, the ratios' denominator."
    )
    categories: tuple[ImpactCategory, ...]
    excluded: tuple[SmallCategory, ...] = Field(
        description="Categories under the minimum share, left out of the ratios."
    )
    note: str | None = None


class ImpactRatioReport(Record):
    """Impact-ratio tables of every slice, with how they were drawn up; aggregates only."""

    settings: ImpactRatioParams
    n_rows: int
    selection_rule: str = Field(description="What counts as selected.")
    median_score: float = Field(description="The cut of the scoring rate: share strictly above.")
    replicates: int
    confidence_level: float
    seed: int
    method: str = "Poisson(1) bootstrap drawn per cell, percentile intervals"
    slices: tuple[ImpactSlice, ...]

    def slice(self, *columns: str) -> ImpactSlice:
        """The table over exactly these columns (any order)."""
        for item in self.slices:
            if set(item.columns) == set(columns) and len(item.columns) == len(columns):
                return item
        raise KeyError(f"no impact-ratio table over columns {columns!r}")


def impact_flag(low: float | None, high: float | None, limit: float) -> ImpactFlag | None:
    """The four-fifths reading of an impact ratio's interval; None without an interval."""
    if low is None or high is None:
        return None
    if high < limit:
        return BELOW
    if low < limit:
        return UNSURE
    return OK
