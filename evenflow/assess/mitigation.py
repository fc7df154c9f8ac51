"""Mitigations offered as alternatives with their costs, never applied silently.

Three ways to trade accuracy for a fairness criterion, each targeting one sensitive column:

- ``reweighing`` (Kamiran & Calders, :mod:`evenflow.assess.reweighing`): sample weights per
  (group, label) cell so that group and label are independent in the weighted training data. It
  is a small table computed from counts, so the driver builds it and each Dask worker applies it
  to its own shards.
- ``threshold`` (Hardt et al., through Fairlearn's ``ThresholdOptimizer``): per-group, possibly
  randomised thresholds fitted on the valid split's scores. The fitted optimizer is turned into a
  ``ThresholdPolicy``: a small JSON record that is versioned and logged with the model and
  reproduces Fairlearn's decisions exactly.
- ``reductions`` (Agarwal et al., Fairlearn's ``ExponentiatedGradient``,
  :mod:`evenflow.assess.reductions`): a randomised mixture of XGBoost classifiers trained under
  the constraint, on one node and a row sample.

``compare_mitigations`` puts each method's test predictions side by side (accuracy, AUC, parity
and error-rate summaries with bootstrap intervals, per-group precision and recall) and
``evenflow.reports.mitigation_html.write_tradeoff`` writes that table as JSON and HTML with one
plot. Choosing a method is a setting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score

from evenflow.assess.arrays import BoolArray, FloatArray, IntArray, ObjectArray
from evenflow.assess.fairness import (
    Disparity,
    Estimate,
    FairnessReport,
    fairness_report,
)
from evenflow.assess.predictions import (
    DECISION_COLUMN,
    LABEL_COLUMN,
    SCORE_COLUMN,
    require_columns,
)
from evenflow.assess.reweighing import binary_labels, group_keys
from evenflow.config.fairness import FairnessParams
from evenflow.config.mitigation import (
    Constraint,
    MitigationParams,
    Objective,
    check_threshold_options,
)
from evenflow.errors import ConfigError, DataError
from evenflow.records import Record

logger = logging.getLogger(__name__)


AUC_DECISIONS_ONLY = "decisions only: no score ranks this method's decisions"
POLICY_SCHEMA_VERSION = 1


def target_column(params: MitigationParams, sensitive: Sequence[str]) -> str:
    """The sensitive column a mitigation targets: the configured one, else the first.

    Raises:
        ConfigError: If there is no sensitive column or the configured one is not among them.
    """
    if not sensitive:
        raise ConfigError("mitigation: the dataset declares no sensitive column")
    column = params.sensitive_column or sensitive[0]
    if column not in sensitive:
        raise ConfigError(
            f"mitigation.sensitive_column {column!r} is not a sensitive column {list(sensitive)}"
        )
    return column


# --- per-group thresholds -------------------------------------------------------------------


class _PolicyRecord(Record):
    # Thresholds may be +-inf; they are written as the strings "Infinity" / "-Infinity".
    model_config = ConfigDict(ser_json_inf_nan="strings")


class ThresholdRule(_PolicyRecord):
    """One of Fairlearn's threshold operations: positive when ``score > t`` (or ``score < t``)."""

    operator: Literal[">", "<"]
    threshold: float = Field(description="May be -inf (always positive for '>').")

    def apply(self, scores: FloatArray) -> BoolArray:
        """Evaluate the rule on scores, exactly as ``ThresholdOperation.__call__`` does."""
        return scores > self.threshold if self.operator == ">" else scores < self.threshold


class GroupThreshold(_PolicyRecord):
    """A group's randomised rule: mix two thresholds, then maybe a constant (equalized odds).

    P(positive | score) = p0 [rule0] + p1 [rule1]; with ``p_ignore`` set, that is replaced by
    ``prediction_constant`` with probability ``p_ignore``.
    """

    p0: float = Field(ge=0.0, le=1.0)
    rule0: ThresholdRule
    p1: float = Field(ge=0.0, le=1.0)
    rule1: ThresholdRule
    p_ignore: float | None = Field(default=None, ge=0.0, le=1.0)
    prediction_constant: float | None = Field(default=None, ge=0.0, le=1.0)

    def positive_probability(self, scores: FloatArray) -> FloatArray:
        """P(decision = 1) per score, with Fairlearn's operations in Fairlearn's order."""
        mixed: FloatArray = self.p0 * self.rule0.apply(scores) + self.p1 * self.rule1.apply(scores)
        if self.p_ignore is None or self.prediction_constant is None:
            return mixed
        return self.p_ignore * self.prediction_constant + (1 - self.p_ignore) * mixed


class ThresholdPolicy(_PolicyRecord):
    """Per-group decision rules for one sensitive column: logged with the model, applied at serving.

    ``decide`` reproduces ``ThresholdOptimizer.predict(..., random_state=seed)`` exactly for known
    groups. A group not seen when fitting (or one that had only one label there) gets the plain
    rule ``score >= default_threshold``; Fairlearn itself would always predict 0 for it.
    """

    schema_version: int = POLICY_SCHEMA_VERSION
    sensitive_column: str
    constraint: Constraint
    objective: Objective
    default_threshold: float = Field(gt=0.0, lt=1.0)
    groups: dict[str, GroupThreshold]
    unfitted_groups: tuple[str, ...] = Field(
        default=(), description="Groups left out of the fit (one label only): default rule."
    )
    n_fit_rows: int = Field(ge=1, description="Valid rows the optimizer was fitted on.")
    fairlearn_version: str

    def positive_probability(self, scores: Any, groups: Any) -> FloatArray:
        """P(decision = 1) per row (Fairlearn's ``_pmf_predict`` column 1)."""
        s, g = _scores(scores), group_keys(groups)
        probability = (s >= self.default_threshold).astype(np.float64)
        for name, rule in self.groups.items():
            rows = g == name
            probability[rows] = rule.positive_probability(s[rows])
        return probability

    def decide(self, scores: Any, groups: Any, seed: int | np.random.RandomState) -> IntArray:
        """Seeded 0/1 decisions: one uniform draw per row from ``RandomState(seed)``, as Fairlearn.

        A ``RandomState`` given as ``seed`` is drawn from as it stands: calls on consecutive parts
        of a batch then decide exactly as one call on the whole batch.
        """
        s, g = _scores(scores), group_keys(groups)
        stream = seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)
        draws = stream.rand(s.size)
        decisions = (self.positive_probability(s, g) >= draws).astype(np.int64)
        unknown = ~np.isin(g, list(self.groups))
        decisions[unknown] = (s[unknown] >= self.default_threshold).astype(np.int64)
        return decisions

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of the policy: the artifact logged with the model."""
        # model_dump_json writes +-inf as strings; json.loads keeps them strings for sorting.
        return json.dumps(json.loads(self.model_dump_json()), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ThresholdPolicy:
        """Read a policy written by ``to_json``."""
        return cls.model_validate_json(text)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: names this exact policy in tags and model cards."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _scores(values: Any) -> FloatArray:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or not np.isfinite(scores).all():
        raise DataError("scores must be a 1-D array of finite numbers")
    return scores


class _ScoreColumn(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A 'fitted classifier' whose ``predict_proba`` passes the first column of X through.

    Lets ``ThresholdOptimizer(prefit=True)`` work on stored scores, with no model retraining.
    """

    classes_ = np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any) -> _ScoreColumn:
        """Nothing to learn: the scores are given."""
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        """Two columns, ``1 - score`` and ``score``, in float64."""
        scores = np.asarray(X, dtype=np.float64)[:, 0]
        return np.column_stack([1.0 - scores, scores])


def fit_threshold_optimizer(scores: Any, labels: Any, groups: Any, params: MitigationParams) -> Any:
    """Fit Fairlearn's ``ThresholdOptimizer`` on given scores (prefit, nothing is retrained).

    Returns:
        The fitted ``ThresholdOptimizer``; feed it ``X = scores[:, None]`` to predict.
    """
    from fairlearn.postprocessing import ThresholdOptimizer  # noqa: PLC0415  (import is slow)

    check_threshold_options(params.constraint, params.objective)
    optimizer = ThresholdOptimizer(
        estimator=_ScoreColumn(),
        constraints=params.constraint,
        objective=params.objective,
        grid_size=params.threshold_grid_size,
        prefit=True,
        predict_method="predict_proba",
    )
    optimizer.fit(
        _scores(scores)[:, None], binary_labels(labels), sensitive_features=group_keys(groups)
    )
    return optimizer


def policy_from_optimizer(
    optimizer: Any,
    *,
    sensitive_column: str,
    default_threshold: float,
    n_fit_rows: int,
    unfitted_groups: Sequence[str] = (),
) -> ThresholdPolicy:
    """Copy a fitted optimizer's ``interpolated_thresholder_.interpolation_dict`` into a record."""
    import fairlearn  # noqa: PLC0415

    rules = {
        str(group): _group_threshold(bunch)
        for group, bunch in optimizer.interpolated_thresholder_.interpolation_dict.items()
    }
    return ThresholdPolicy(
        sensitive_column=sensitive_column,
        constraint=optimizer.constraints,
        objective=optimizer.objective,
        default_threshold=default_threshold,
        groups=rules,
        unfitted_groups=tuple(unfitted_groups),
        n_fit_rows=n_fit_rows,
        fairlearn_version=str(fairlearn.__version__),
    )


def _group_threshold(bunch: Mapping[str, Any]) -> GroupThreshold:
    def rule(operation: Any) -> ThresholdRule:
        return ThresholdRule(operator=operation.operator, threshold=float(operation.threshold))

    ignore = "p_ignore" in bunch
    return GroupThreshold(
        p0=float(bunch["p0"]),
        rule0=rule(bunch["operation0"]),
        p1=float(bunch["p1"]),
        rule1=rule(bunch["operation1"]),
        p_ignore=float(bunch["p_ignore"]) if ignore else None,
        prediction_constant=float(bunch["prediction_constant"]) if ignore else None,
    )


def fit_threshold_policy(
    valid: pd.DataFrame,
    sensitive: Sequence[str],
    params: MitigationParams,
    default_threshold: float = 0.5,
) -> ThresholdPolicy:
    """Per-group thresholds fitted on valid-split predictions (``label``, ``score``, sensitive).

    Groups with only one label in valid cannot be fitted by Fairlearn; they are left out of the
    fit, listed in ``unfitted_groups`` and decided by ``score >= default_threshold``.
    """
    column = target_column(params, sensitive)
    require_columns(valid, [LABEL_COLUMN, SCORE_COLUMN, column])
    groups = group_keys(valid[column])
    labels = binary_labels(valid[LABEL_COLUMN])
    one_label = _single_label_groups(labels, groups)
    if one_label:
        logger.warning("threshold policy: groups %s have one label in valid", one_label)
    fitted = ~np.isin(groups, one_label)
    if np.unique(groups[fitted]).size == 0:
        raise DataError(f"threshold policy: no group of {column!r} has both labels in valid")
    scores = valid[SCORE_COLUMN].to_numpy(dtype=np.float64)
    optimizer = fit_threshold_optimizer(scores[fitted], labels[fitted], groups[fitted], params)
    policy = policy_from_optimizer(
        optimizer,
        sensitive_column=column,
        default_threshold=default_threshold,
        n_fit_rows=int(fitted.sum()),
        unfitted_groups=one_label,
    )
    logger.info("threshold policy for %s over %d groups", column, len(policy.groups))
    return policy


def _single_label_groups(labels: IntArray, groups: ObjectArray) -> list[str]:
    frame = pd.DataFrame({"g": groups, "y": labels})
    distinct = frame.groupby("g", sort=True)["y"].nunique()
    return [str(g) for g in distinct.index[distinct.to_numpy() < 2]]  # noqa: PLR2004


def with_decisions(predictions: pd.DataFrame, policy: ThresholdPolicy, seed: int) -> pd.DataFrame:
    """Copy of predictions with the policy's seeded ``decision`` column (for the trade-off table)."""
    require_columns(predictions, [SCORE_COLUMN, policy.sensitive_column])
    decisions = policy.decide(predictions[SCORE_COLUMN], predictions[policy.sensitive_column], seed)
    return predictions.assign(**{DECISION_COLUMN: decisions})


# --- trade-off table ------------------------------------------------------------------------


def dpd_column(column: str, part: str = "") -> str:
    """Trade-off column of a demographic parity difference: ``dpd[sex]``, ``dpd_low[sex]``, ..."""
    return f"dpd{part}[{column}]"


def eod_column(column: str, part: str = "") -> str:
    """Trade-off column of an equalized odds difference: ``eod[sex]``, ``eod_high[sex]``, ..."""
    return f"eod{part}[{column}]"


def group_column(metric: str, column: str, group: str) -> str:
    """Trade-off column of a per-group metric: ``precision[sex=Female]``."""
    return f"{metric}[{column}={group}]"


_DPD_PATTERN = re.compile(r"^dpd\[(.*)\]$")


def compare_mitigations(
    results: Mapping[str, pd.DataFrame],
    sensitive: Sequence[str],
    fairness_params: FairnessParams,
    threshold: float,
) -> pd.DataFrame:
    """One row per mitigation: accuracy, AUC, parity and error-rate gaps, per-group rates.

    Each frame holds one method's test predictions (``label``, ``score``, sensitive columns). A
    ``decision`` column, when present, gives that method's decisions (randomised thresholds);
    otherwise a row is positive when ``score >= threshold``. Intervals come from the fairness
    report's bootstrap. AUC is NaN for decision rows: a ranking of the base score would describe
    the unmitigated model, not the decisions being compared.

    Returns:
        Columns ``method, n, decisions, accuracy[_low|_high], auc, auc_note``, then per
        sensitive column ``dpd[c]``, ``dpd_low[c]``, ``dpd_high[c]``, the same for ``eod``, and
        ``precision[c=g]`` / ``recall[c=g]`` per group (NaN unless the group is ``reported``).
    """
    if not results:
        raise DataError("compare_mitigations: no results to compare")
    params = fairness_params.model_copy(update={"threshold": threshold})
    rows = [_method_row(name, frame, sensitive, params) for name, frame in results.items()]
    return pd.DataFrame(rows)


def _method_row(
    name: str, frame: pd.DataFrame, sensitive: Sequence[str], params: FairnessParams
) -> dict[str, Any]:
    scored, rule = _decision_view(frame)
    report = fairness_report(scored, sensitive, params)
    accuracy = report.overall.accuracy
    decided = rule != "score"
    row: dict[str, Any] = {
        "method": name,
        "n": report.n_rows,
        "decisions": rule if decided else f"score >= {params.threshold:g}",
        **_estimate_columns("accuracy", accuracy),
        "auc": math.nan if decided else _auc(frame),
        "auc_note": AUC_DECISIONS_ONLY if decided else "",
    }
    for column in sensitive:
        row.update(_column_summary(report, column))
    return row


def _decision_view(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The frame and the rule that made its decisions (the fairness report reads ``decision``)."""
    if DECISION_COLUMN not in frame.columns:
        return frame, "score"
    return frame, f"'{DECISION_COLUMN}' column"


def _auc(frame: pd.DataFrame) -> float:
    labels = frame[LABEL_COLUMN].to_numpy()
    if np.unique(labels).size < 2:  # noqa: PLR2004
        return math.nan
    return float(roc_auc_score(labels, frame[SCORE_COLUMN].to_numpy(dtype=np.float64)))


def _estimate_columns(name: str, value: Estimate | None) -> dict[str, float]:
    if value is None:
        return {name: math.nan, f"{name}_low": math.nan, f"{name}_high": math.nan}
    return {
        name: _nan(value.value),
        f"{name}_low": _nan(value.low),
        f"{name}_high": _nan(value.high),
    }


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _column_summary(report: FairnessReport, column: str) -> dict[str, float]:
    item = report.slice(column)
    out: dict[str, float] = {}
    for key, value in (
        (dpd_column, item.summary.demographic_parity_difference),
        (eod_column, item.summary.equalized_odds_difference),
    ):
        out.update(_disparity_columns(key, column, value))
    for group in item.groups:
        label = group.values[column]
        # The one small-group rule: only groups with enough evidence are compared across methods.
        reported = group.status == "reported"
        out[group_column("precision", column, label)] = (
            _value(group.precision) if reported else math.nan
        )
        out[group_column("recall", column, label)] = _value(group.tpr) if reported else math.nan
    return out


def _disparity_columns(
    name: Callable[[str, str], str], column: str, value: Disparity | None
) -> dict[str, float]:
    estimate = _estimate_columns("v", value)
    return {
        name(column, ""): estimate["v"],
        name(column, "_low"): estimate["v_low"],
        name(column, "_high"): estimate["v_high"],
    }


def _value(estimate: Estimate | None) -> float:
    return math.nan if estimate is None else _nan(estimate.value)


def tradeoff_columns(table: pd.DataFrame) -> list[str]:
    """The sensitive columns a trade-off table covers, in table order."""
    return [m.group(1) for c in table.columns if (m := _DPD_PATTERN.match(str(c)))]
