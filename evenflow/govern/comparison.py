"""A version beside the champion: overall and per-group figures, and what changed in the data.

Pure functions over the JSON a training run logs (``reports/metrics.json``, ``groups.json``,
the fairness report, the shard manifest); the review and monitoring both compare through them, so
a figure reads the same wherever it is shown. Reading the files is the caller's business.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field, ValidationError

from evenflow.assess.small_groups import PRIVATE, CellStatus, record_status
from evenflow.config.fairness import FairnessParams
from evenflow.numbers import finite_int, finite_number
from evenflow.records import Record

logger = logging.getLogger(__name__)

GROUP_METRICS = ("recall", "precision", "selection_rate")
METRIC_ORDER = (
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "selection_rate",
    "base_rate",
    "tpr",
    "fpr",
    "fnr",
    "log_loss",
    "brier",
    "mean_score",
    "n",
)
"""Overall metrics in the order a reviewer reads them; others follow as found."""
COUNTS = ("n",)
"""Metrics that are counts, not rates."""
SPLITS = ("train", "valid", "test")
# metrics.json / groups.json name -> the fairness report's name for the same rate.
_FAIRNESS_NAME = {"recall": "tpr"}

Figure = tuple[float | None, float | None, float | None]
"""A value with its interval: (value, low, high)."""
GroupPair = tuple[tuple[str, str], Mapping[str, Any], Mapping[str, Any] | None]


class Comparison(Record):
    """One figure of the reviewed version beside the champion's, with intervals when known."""

    name: str
    value: float | None = Field(description="The reviewed version's value.")
    low: float | None = None
    high: float | None = None
    champion: float | None = Field(default=None, description="The champion's value.")
    champion_low: float | None = None
    champion_high: float | None = None
    difference: float | None = Field(default=None, description="value - champion.")


class GroupComparison(Record):
    """Per-group rates of one (column, group) cell for both versions, with each side's status.

    A private side shows no rate (only n); an insufficient side shows its rates, marked.
    """

    column: str
    group: str
    n: int | None
    champion_n: int | None
    status: CellStatus | None = Field(description="None when the group is absent here.")
    champion_status: CellStatus | None = Field(description="None when absent or no champion.")
    metrics: tuple[Comparison, ...]


class DataChange(Record):
    """The data versions of both models and what changed between them."""

    data_md5: str | None
    champion_data_md5: str | None
    same_data: bool | None = Field(description="None when there is no champion to compare.")
    rows: dict[str, int]
    champion_rows: dict[str, int] | None
    features_added: tuple[str, ...] = ()
    features_removed: tuple[str, ...] = ()
    kind_changed: tuple[str, ...] = Field(default=(), description="'name: old -> new' lines.")
    categories_added: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    categories_removed: dict[str, tuple[str, ...]] = Field(default_factory=dict)


# --- overall metrics ------------------------------------------------------------------------


def compare_metrics(
    metrics: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    fairness: Mapping[str, Any] | None = None,
    champion_fairness: Mapping[str, Any] | None = None,
) -> tuple[Comparison, ...]:
    """Overall metrics of both versions and their differences.

    Intervals come from ``<name>_low``/``<name>_high`` in the metrics when present, else from the
    fairness report's overall row (bootstrap intervals of the rates).
    """
    present = [*metrics, *(n for n in champion or {} if n not in metrics)]
    names = [n for n in METRIC_ORDER if n in present]
    names += [n for n in present if n not in names and not n.endswith(("_low", "_high"))]
    overall = (fairness or {}).get("overall")
    champion_overall = (champion_fairness or {}).get("overall")
    return tuple(
        _comparison(
            name,
            _figure(metrics, name, overall),
            None if champion is None else _figure(champion, name, champion_overall),
        )
        for name in names
    )


def _figure(metrics: Mapping[str, Any], name: str, overall: Mapping[str, Any] | None) -> Figure:
    low, high = (
        finite_number(metrics.get(f"{name}_low")),
        finite_number(metrics.get(f"{name}_high")),
    )
    if low is None and high is None:
        low, high = _interval(overall, name)
    return finite_number(metrics.get(name)), low, high


def _interval(estimates: Mapping[str, Any] | None, name: str) -> tuple[float | None, float | None]:
    found = (estimates or {}).get(_FAIRNESS_NAME.get(name, name))
    if not isinstance(found, Mapping):
        return None, None
    return finite_number(found.get("low")), finite_number(found.get("high"))


def _comparison(name: str, ours: Figure, theirs: Figure | None) -> Comparison:
    value, low, high = ours
    champion, champion_low, champion_high = theirs or (None, None, None)
    difference = None if value is None or champion is None else value - champion
    return Comparison(
        name=name,
        value=value,
        low=low,
        high=high,
        champion=champion,
        champion_low=champion_low,
        champion_high=champion_high,
        difference=difference,
    )


# --- per-group metrics ----------------------------------------------------------------------


def compare_groups(
    groups: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]] | None,
    fairness: Mapping[str, Any] | None = None,
    champion_fairness: Mapping[str, Any] | None = None,
) -> tuple[GroupComparison, ...]:
    """Per-group recall, precision and selection rate of both versions, with differences.

    Each side's status follows the one rule for small groups (records older than the rule are
    classified from their counts under their fairness report's parameters); a private side gives
    no rate at all.
    """
    rule, champion_rule = group_rule(fairness), group_rule(champion_fairness)
    rows = []
    for key, mine, other in paired_groups(groups, champion):
        status = group_status(mine, rule)
        theirs = None if other is None else group_status(other, champion_rule)
        figures = [
            _comparison(
                metric,
                _group_figure(mine, metric, fairness, key, status),
                None
                if other is None
                else _group_figure(other, metric, champion_fairness, key, theirs),
            )
            for metric in GROUP_METRICS
        ]
        rows.append(group_row(key, mine, other, (status, theirs), figures))
    return tuple(rows)


def group_row(
    key: tuple[str, str],
    mine: Mapping[str, Any],
    other: Mapping[str, Any] | None,
    statuses: tuple[CellStatus | None, CellStatus | None],
    figures: Iterable[Comparison],
) -> GroupComparison:
    """One group beside the champion's: counts and statuses of both sides, with its figures."""
    return GroupComparison(
        column=key[0],
        group=key[1],
        n=finite_int(mine.get("n")),
        champion_n=None if other is None else finite_int(other.get("n")),
        status=statuses[0],
        champion_status=statuses[1],
        metrics=tuple(figures),
    )


def group_rule(fairness: Mapping[str, Any] | None) -> FairnessParams:
    """The small-group rule a logged fairness report was made with (defaults when unreadable)."""
    params = (fairness or {}).get("params")
    if isinstance(params, Mapping):
        try:
            return FairnessParams.model_validate(params)
        except ValidationError:
            logger.warning("fairness parameters not readable; the default small-group rule is used")
    return FairnessParams()


def group_status(record: Mapping[str, Any], rule: FairnessParams) -> CellStatus | None:
    """A logged group record's status under the rule; None for an empty record (group absent)."""
    return record_status(record, rule) if record else None


def paired_groups(
    groups: Sequence[Mapping[str, Any]], champion: Sequence[Mapping[str, Any]] | None
) -> list[GroupPair]:
    """Each (column, group) record beside the champion's: ours first, then groups only it has.

    A group missing on our side comes with an empty record; on the champion's side with None.
    """
    ours = {group_key(g): g for g in groups}
    theirs = {group_key(g): g for g in champion or ()}
    keys = [*ours, *(k for k in theirs if k not in ours)]
    return [(key, ours.get(key, {}), theirs.get(key)) for key in keys]


def group_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """The (column, group) a logged group record describes."""
    return str(record["column"]), str(record["group"])


def _group_figure(
    record: Mapping[str, Any],
    metric: str,
    fairness: Mapping[str, Any] | None,
    key: tuple[str, str],
    status: CellStatus | None,
) -> Figure:
    """A group's rate with its interval; nothing at all for a private group."""
    if status == PRIVATE:
        return None, None, None
    low, high = _interval(_fairness_group(fairness, key), metric)
    return finite_number(record.get(metric)), low, high


def _fairness_group(
    fairness: Mapping[str, Any] | None, key: tuple[str, str]
) -> Mapping[str, Any] | None:
    """The fairness report's group of one single-column slice, matched by column and value."""
    column, group = key
    for item in (fairness or {}).get("slices", ()):
        if list(item.get("columns", ())) != [column]:
            continue
        for found in item.get("groups", ()):
            if found.get("values", {}).get(column) == group:
                return dict(found)
    return None


# --- data -----------------------------------------------------------------------------------


def data_changes(
    manifest: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    *,
    data_md5: str | None = None,
    champion_data_md5: str | None = None,
) -> DataChange:
    """What changed in the data between the champion's manifest and the reviewed version's."""
    md5 = (manifest or {}).get("data_md5") or data_md5
    champion_md5 = None if champion is None else champion.get("data_md5") or champion_data_md5
    features = _features(manifest)
    old = _features(champion)
    common = [name for name in features if name in old]
    return DataChange(
        data_md5=md5,
        champion_data_md5=champion_md5,
        same_data=None if md5 is None or champion_md5 is None else md5 == champion_md5,
        rows=_split_rows(manifest),
        champion_rows=None if champion is None else _split_rows(champion),
        features_added=tuple(n for n in features if champion is not None and n not in old),
        features_removed=tuple(n for n in old if n not in features),
        kind_changed=tuple(
            f"{n}: {old[n][0]} -> {features[n][0]}" for n in common if old[n][0] != features[n][0]
        ),
        categories_added=_category_diff(features, old, common),
        categories_removed=_category_diff(old, features, common),
    )


def _features(manifest: Mapping[str, Any] | None) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {
        str(f["name"]): (str(f.get("kind", "")), tuple(str(c) for c in f.get("categories", ())))
        for f in (manifest or {}).get("features", ())
    }


def _split_rows(manifest: Mapping[str, Any] | None) -> dict[str, int]:
    """Rows per split; empty when the manifest is missing (unknown, not zero)."""
    if not manifest or "shards" not in manifest:
        return {}
    rows = dict.fromkeys(SPLITS, 0)
    for shard in manifest["shards"]:
        rows[str(shard["split"])] = rows.get(str(shard["split"]), 0) + int(shard["n_rows"])
    return rows


def _category_diff(
    ours: Mapping[str, tuple[str, tuple[str, ...]]],
    theirs: Mapping[str, tuple[str, tuple[str, ...]]],
    names: Iterable[str],
) -> dict[str, tuple[str, ...]]:
    """Categories each common feature has in ``ours`` and not in ``theirs``."""
    diff = {}
    for name in names:
        extra = tuple(c for c in ours[name][1] if c not in set(theirs[name][1]))
        if extra:
            diff[name] = extra
    return diff
