"""A figure with its bootstrap interval: the record every per-group figure is reported as.

It lives apart from the fairness report so that the report's parts (the impact-ratio table)
can use it without importing the report.
"""

from __future__ import annotations

from evenflow.records import Record


class Estimate(Record):
    """A point value with its percentile bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None
