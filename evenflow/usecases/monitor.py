"""Monitoring a new batch against a registered model: contract, drift, performance and fairness.

A batch arrives, with or without its labels. The questions, in order:

1. Does it meet the dataset's contract? (Great Expectations; label and split expectations are
   skipped, not failed, when the batch carries no such column.)
2. Has it drifted from the data the monitored model was trained on? The reference is that
   version's own training data, restored by its DVC md5 (``evenflow.data_md5``), never "the latest
   data". Every feature is checked with an explicit statistic and threshold (normed Wasserstein
   for numbers, PSI or Jensen-Shannon for categories: distances that stay meaningful on large
   samples, where p-values call every column drifted), and the model's score distribution on the
   batch is compared with its scores on the reference (prediction drift).
3. With labels: how does the model perform, overall and per group, next to the figures logged
   with its own evaluation (``reports/metrics.json``, ``groups.json``, ``fairness/fairness.json``)?

Decisions are pure functions (:func:`drift_breaches`); Evidently computes the statistics and
renders its report; per-group figures come from :mod:`evenflow.assess.evaluation` and
:mod:`evenflow.assess.fairness`, never from Evidently's ``GroupBy``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field

from evenflow.assess import drift
from evenflow.assess.evaluation import evaluate, groups_to_records, json_safe
from evenflow.assess.fairness import (
    PRIVATE,
    CellStatus,
    FairnessReport,
    fairness_report,
)
from evenflow.config.fairness import FairnessParams
from evenflow.config.monitor import DriftPolicy, Statistic
from evenflow.config.run import EvalParams, RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import validation
from evenflow.data import versioning
from evenflow.data.datasets import content_md5, read_table
from evenflow.data.features import label_values
from evenflow.errors import DataError, EvenflowError
from evenflow.govern.promotion import (
    FAIRNESS_ARTIFACT,
    GROUPS_ARTIFACT,
    MANIFEST_ARTIFACT,
    METRICS_ARTIFACT,
    Comparison,
    compare_metrics,
    group_rule,
    group_status,
    paired_groups,
)
from evenflow.io import atomic_path, write_json_atomic
from evenflow.numbers import finite_int, finite_number
from evenflow.records import FeatureSpec, RawBatch, ShardManifest, ValidationReport
from evenflow.registry import store as registry
from evenflow.reports.fairness_html import write_fairness_report
from evenflow.usecases.reproduce import RUN_PARAMS_ARTIFACT

logger = logging.getLogger(__name__)

DATA_MD5_TAG = "evenflow.data_md5"
BATCH_MD5_TAG = "evenflow.batch_md5"
REFERENCE_MD5_TAG = "evenflow.reference_data_md5"
MODEL_NAME_TAG = "evenflow.model_name"
MODEL_VERSION_TAG = "evenflow.model_version"
MONITORING_FILE = "monitoring.json"
DRIFT_STEM = "drift"
SCORE = "score"
LABEL = "label"
# The score column as Evidently sees it: a name no dataset column is likely to have.
PREDICTION_COLUMN = "__evenflow_score__"
# Per-group metrics compared with the champion's groups.json.
GROUP_DELTA_METRICS = ("roc_auc", "accuracy", "tpr", "fpr", "precision", "selection_rate")
# Between-group summaries compared with the champion's fairness report.
FAIRNESS_SUMMARIES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "predictive_parity_difference",
    "calibration_gap",
)
_EVIDENTLY_KIND = {"numeric": "numerical", "categorical": "categorical"}

Scorer = Callable[[pd.DataFrame], np.ndarray]


class DriftDetected(EvenflowError):
    """A batch drifted beyond the monitoring policy; the message names each breach."""

    def __init__(self, summary: str, breaches: list[str]) -> None:
        super().__init__("\n".join([summary, *breaches]))
        self.summary = summary
        self.breaches = breaches


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MonitoredModel(_Record):
    """The registered version being monitored, and what its own training run recorded."""

    name: str
    version: str
    alias: str
    run_id: str
    data_md5: str = Field(description="DVC md5 of the version's training data (the reference).")
    features: tuple[FeatureSpec, ...]
    target: str
    positive_label: str
    sensitive: tuple[str, ...]
    split_column: str | None
    threshold: float = Field(description="The score cut the model was evaluated with.")
    fairness: FairnessParams = Field(
        description="The version's fairness parameters: the small-group rule and the bootstrap."
    )

    @property
    def uri(self) -> str:
        """MLflow model URI of exactly this version."""
        return f"models:/{self.name}/{self.version}"


class ColumnCheck(_Record):
    """One column's drift: the statistic, its threshold, the value, and the verdict."""

    column: str
    kind: Literal["numeric", "categorical", "prediction"]
    statistic: str = Field(description="Evidently's name: wasserstein, psi or jensenshannon.")
    threshold: float
    value: float
    drifted: bool = Field(description="value >= threshold, as Evidently decided it.")

    def describe(self) -> str:
        """``column: statistic value >= threshold``."""
        sign = ">=" if self.drifted else "<"
        return f"{self.column}: {self.statistic} {self.value:.4f} {sign} {self.threshold:g}"


class DriftResult(_Record):
    """Per-feature drift, the share of drifted features, and prediction drift."""

    columns: tuple[ColumnCheck, ...]
    drifted_columns: tuple[str, ...]
    drifted_share: float
    max_drifted_share: float
    prediction: ColumnCheck
    mean_score_reference: float
    mean_score_batch: float
    ignored_columns: tuple[str, ...] = ()
    rows_reference: int = Field(description="Reference rows compared (after sampling).")
    rows_batch: int = Field(description="Batch rows compared (after sampling).")
    total_rows_reference: int
    total_rows_batch: int
    evidently_html: Path
    evidently_json: Path

    @property
    def sampled(self) -> bool:
        """Whether either side was sampled down to the policy's ``max_rows``."""
        return (
            self.rows_reference < self.total_rows_reference
            or self.rows_batch < self.total_rows_batch
        )


class GroupDelta(_Record):
    """One group's metrics on the batch beside the champion's evaluation.

    Each side has its status under the one rule for small groups; a private side has no figures.
    """

    column: str
    group: str
    n: int | None
    champion_n: int | None
    status: CellStatus | None = Field(description="On the batch; None when absent there.")
    champion_status: CellStatus | None = Field(description="In the champion's evaluation.")
    metrics: tuple[Comparison, ...]


class SummaryDelta(_Record):
    """A between-group fairness summary of one slice, on the batch and in the evaluation."""

    slice: str
    summary: str
    value: float | None
    champion: float | None
    difference: float | None


class PerformanceResult(_Record):
    """Performance and fairness on the labelled batch, compared with the model's evaluation."""

    n_rows: int
    metrics: tuple[Comparison, ...]
    groups: tuple[GroupDelta, ...]
    fairness: tuple[SummaryDelta, ...]
    fairness_json: Path
    fairness_html: Path
    missing: tuple[str, ...] = Field(
        default=(), description="Champion artifacts that were not found (no comparison there)."
    )


class ChampionEvaluation(_Record):
    """The monitored version's own evaluation artifacts, as logged with its run."""

    metrics: dict[str, Any] | None = None
    groups: list[dict[str, Any]] | None = None
    fairness: dict[str, Any] | None = None


class MonitoringReport(_Record):
    """Everything one monitoring run found, and whether the batch is within the policy."""

    dataset: str
    model: MonitoredModel
    batch: RawBatch
    labelled: bool
    validation: ValidationReport | None = None
    skipped_expectations: tuple[str, ...] = ()
    policy: DriftPolicy
    drift: DriftResult
    performance: PerformanceResult | None
    passed: bool
    breaches: tuple[str, ...] = Field(description="One line per breach of the policy.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Time per step.")
    json_path: Path | None = None
    html_path: Path | None = None

    def headline(self) -> str:
        """One line: passed, or how far beyond the policy the batch is."""
        d = self.drift
        checked = len(d.columns)
        head = (
            f"batch {self.batch.path.name} vs {self.model.name} v{self.model.version} "
            f"({self.model.alias}; reference data {self.model.data_md5}): "
            f"{len(d.drifted_columns)} of {checked} columns drifted "
            f"(share {d.drifted_share:.3f}, max {d.max_drifted_share:g}), "
            f"prediction drift {d.prediction.statistic} {d.prediction.value:.4f}"
        )
        return ("drift beyond the policy: " if not self.passed else "within the policy: ") + head


# --- the model and its evidence -------------------------------------------------------------


def resolve_model(settings: EvenflowSettings, name: str, alias: str) -> MonitoredModel:
    """The version behind ``name@alias`` and what its training run recorded.

    Raises:
        DataError: No such model or alias, or its run lacks the data md5, run parameters or
            manifest needed to rebuild the reference.
    """
    client = registry.client_for(settings)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise DataError(
            f"model {name!r} has no version with alias {alias!r}; "
            f"promote one first (evenflow promote {name} VERSION ...)"
        ) from None
    run_id = str(version.run_id)
    data_md5 = version.tags.get(DATA_MD5_TAG) or client.get_run(run_id).data.tags.get(DATA_MD5_TAG)
    if not data_md5 or data_md5 == "pending":
        raise DataError(
            f"{name} version {version.version} (run {run_id}) has no {DATA_MD5_TAG} tag; "
            "its training data cannot be restored as the drift reference"
        )
    with tempfile.TemporaryDirectory(prefix="evenflow-monitor-") as scratch:
        params_doc = _download_json(client, run_id, RUN_PARAMS_ARTIFACT, Path(scratch))
        manifest_doc = _download_json(client, run_id, MANIFEST_ARTIFACT, Path(scratch))
    if params_doc is None or manifest_doc is None:
        raise DataError(
            f"{name} version {version.version} (run {run_id}) lacks "
            f"{RUN_PARAMS_ARTIFACT} or {MANIFEST_ARTIFACT}; it cannot be monitored"
        )
    params = RunParams.from_mapping(
        without_retired_keys(params_doc), source=f"run {run_id} {RUN_PARAMS_ARTIFACT}"
    )
    manifest = ShardManifest.model_validate(manifest_doc)
    return MonitoredModel(
        name=name,
        version=str(version.version),
        alias=alias,
        run_id=run_id,
        data_md5=data_md5,
        features=manifest.features,
        target=manifest.target,
        positive_label=manifest.positive_label,
        sensitive=manifest.sensitive,
        split_column=params.dataset.split_column,
        threshold=params.evaluation.threshold,
        fairness=params.fairness,
    )


# Keys that older runs logged and the one rule for small groups replaced (section, key).
RETIRED_KEYS = (("evaluation", "min_group_size"), ("gates", "min_group_positives"))


def without_retired_keys(params_doc: Mapping[str, Any]) -> dict[str, Any]:
    """A logged run configuration without the keys the small-group rule retired (logged)."""
    doc = dict(params_doc)
    for section, key in RETIRED_KEYS:
        part = doc.get(section)
        if isinstance(part, Mapping) and key in part:
            logger.info(
                "run configuration: %s.%s is retired (small groups follow fairness.min_cell, "
                "min_positives, min_negatives); ignored",
                section,
                key,
            )
            doc[section] = {k: v for k, v in part.items() if k != key}
    return doc


def champion_evaluation(settings: EvenflowSettings, model: MonitoredModel) -> ChampionEvaluation:
    """The version's logged metrics, per-group metrics and fairness report (None where absent)."""
    client = registry.client_for(settings)
    with tempfile.TemporaryDirectory(prefix="evenflow-monitor-") as scratch:
        docs = {
            path: _download_json(client, model.run_id, path, Path(scratch))
            for path in (METRICS_ARTIFACT, GROUPS_ARTIFACT, FAIRNESS_ARTIFACT)
        }
    return ChampionEvaluation(
        metrics=docs[METRICS_ARTIFACT],
        groups=docs[GROUPS_ARTIFACT],
        fairness=docs[FAIRNESS_ARTIFACT],
    )


def load_scorer(model: MonitoredModel) -> Scorer:
    """Score raw rows with the registered version itself (its MLflow pyfunc)."""
    import mlflow.pyfunc  # noqa: PLC0415  (loading MLflow's model flavours is slow; only here)

    loaded = mlflow.pyfunc.load_model(model.uri)
    names = [f.name for f in model.features]

    def score(frame: pd.DataFrame) -> np.ndarray:
        predicted = loaded.predict(frame.loc[:, names])
        return np.asarray(predicted[SCORE], dtype=np.float64)

    return score


def _download_json(client: Any, run_id: str, path: str, scratch: Path) -> Any:
    try:
        local = client.download_artifacts(run_id, path, str(scratch))
    except (MlflowException, OSError):
        logger.info("run %s has no artifact %s", run_id, path)
        return None
    return json.loads(Path(local).read_text(encoding="utf-8"))


# --- the batch and its contract -------------------------------------------------------------


def optional_columns(model: MonitoredModel) -> tuple[str, ...]:
    """Columns a monitoring batch may lack: the label, and the dataset's split column."""
    return (model.target, *((model.split_column,) if model.split_column else ()))


def monitoring_suite(
    suite: Mapping[str, Any], present: Sequence[str], optional: Sequence[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The suite with the expectations of absent optional columns skipped.

    An expectation on a column in ``optional`` that the batch lacks is removed, and the column
    is removed from ``expect_table_columns_to_match_set``; every other expectation stays.

    Returns:
        The adjusted suite and one line per skipped (or narrowed) expectation.
    """
    absent = [c for c in optional if c not in set(present)]
    kept, skipped = [], []
    for expectation in suite.get("expectations", []):
        kwargs = expectation.get("kwargs", {})
        kind = str(expectation.get("type"))
        if kwargs.get("column") in absent:
            skipped.append(f"{kind} on column '{kwargs['column']}' (column absent)")
            continue
        column_set = kwargs.get("column_set")
        if isinstance(column_set, list) and any(c in column_set for c in absent):
            narrowed = [c for c in column_set if c not in absent]
            removed = [c for c in column_set if c in absent]
            skipped.append(f"{kind}: not requiring {removed} (absent)")
            kept.append({**expectation, "kwargs": {**kwargs, "column_set": narrowed}})
            continue
        kept.append(expectation)
    return {**suite, "expectations": kept}, tuple(skipped)


def load_monitoring_batch(path: Path, dataset: str) -> tuple[RawBatch, pd.DataFrame]:
    """Read the batch and describe it (content md5, rows, columns).

    Raises:
        DataError: The file cannot be read or has no rows.
    """
    frame = read_table(path)
    if frame.empty:
        raise DataError(f"{path}: the batch has no rows")
    batch = RawBatch(
        dataset=dataset,
        path=path.resolve(),
        md5=content_md5(path),
        n_rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
    )
    return batch, frame


def validate_batch(
    path: Path,
    suite: Mapping[str, Any],
    model: MonitoredModel,
    out_dir: Path,
    *,
    dataset: str,
) -> tuple[RawBatch, ValidationReport, tuple[str, ...]]:
    """Validate the batch against its contract, skipping the expectations of absent labels.

    Returns:
        The batch, the validation report (``success`` says whether the contract holds) and the
        skipped expectations.
    """
    batch, frame = load_monitoring_batch(path, dataset)
    adjusted, skipped = monitoring_suite(suite, batch.columns, optional_columns(model))
    report = validation.validate_frame(frame, adjusted, out_dir, dataset=dataset)
    if skipped:
        logger.info("batch %s: skipped %d expectations: %s", path, len(skipped), skipped)
    return batch, report, skipped


# --- the reference --------------------------------------------------------------------------


def reference_sample(
    settings: EvenflowSettings, model: MonitoredModel, max_rows: int | None, seed: int
) -> Path:
    """The monitored version's train split (sampled to ``max_rows``) as one parquet file.

    The data is restored by the version's DVC md5, so the reference is exactly what the model
    was trained on. The sample is content-addressed (md5, rows, seed) under ``.evenflow/`` and
    reused by later runs.

    Raises:
        VersioningError: The data is in neither the DVC cache nor the remote.
        DataError: The restored data holds no train rows.
    """
    key = f"{model.data_md5.replace('.', '-')}-{max_rows or 'all'}-{seed}"
    target = settings.state_dir / "monitoring" / "reference" / f"{key}.parquet"
    if target.is_file():
        return target
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference-", dir=settings.state_dir) as scratch:
        restored = versioning.restore_directory(
            settings.project_root, model.data_md5, Path(scratch) / "data"
        )
        paths = sorted((restored / "train").glob("*.parquet"))
        if not paths:
            raise DataError(f"data {model.data_md5} holds no train shards to compare with")
        keep = [f.name for f in model.features]
        frame = pd.concat([pd.read_parquet(p, columns=keep) for p in paths], ignore_index=True)
    sample = sample_rows(frame, max_rows, seed)
    with atomic_path(target) as tmp:
        sample.to_parquet(tmp, index=False)
    logger.info(
        "reference %s: %d of %d train rows at %s", model.data_md5, len(sample), len(frame), target
    )
    return target


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows drawn without replacement (seeded); all rows if fewer."""
    if max_rows is None or len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


# --- drift ----------------------------------------------------------------------------------


def drift_tests(
    features: Sequence[FeatureSpec], policy: DriftPolicy
) -> tuple[list[drift.ColumnTest], list[str]]:
    """The drift test of every feature under ``policy``, and the features it ignores."""
    tests, ignored = [], []
    for feature in features:
        if feature.name in policy.ignore_columns:
            ignored.append(feature.name)
            continue
        statistic: Statistic = (
            policy.numeric_statistic if feature.kind == "numeric" else policy.categorical_statistic
        )
        tests.append(
            drift.ColumnTest(
                column=feature.name,
                kind="numerical" if feature.kind == "numeric" else "categorical",
                method=statistic,
                threshold=policy.threshold(feature.name, statistic),
            )
        )
    return tests, ignored


def assess_drift(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    features: Sequence[FeatureSpec],
    policy: DriftPolicy,
    out_dir: Path,
    *,
    scorer: Scorer,
) -> DriftResult:
    """Per-feature drift and prediction drift of ``batch`` against ``reference``.

    Both frames are sampled to ``policy.max_rows`` first (seeded). Numbers enter Evidently as
    floats and categories as text, so both sides are typed alike whatever the file format was.

    Args:
        reference: The model's training rows (at least the feature columns).
        batch: The new rows.
        features: The model's features and their kinds.
        policy: Statistics, thresholds, sample size.
        out_dir: Folder of Evidently's report (``drift.html`` / ``drift.json``).
        scorer: The model: rows in, probability of the positive class out.

    Raises:
        DataError: The batch lacks a feature column.
    """
    missing = [f.name for f in features if f.name not in batch.columns]
    if missing:
        raise DataError(f"the batch lacks the model's feature column(s) {missing}")
    tests, ignored = drift_tests(features, policy)
    ref = sample_rows(reference, policy.max_rows, policy.seed)
    cur = sample_rows(batch, policy.max_rows, policy.seed + 1)
    ref_scores, cur_scores = scorer(ref), scorer(cur)
    prediction_test = drift.ColumnTest(
        column=PREDICTION_COLUMN,
        kind="numerical",
        method=policy.prediction_statistic,
        threshold=policy.max_prediction_drift,
    )
    frames = [
        _drift_frame(frame, tests, scores)
        for frame, scores in ((ref, ref_scores), (cur, cur_scores))
    ]
    checks, files = drift.column_drift_report(
        frames[0], frames[1], [*tests, prediction_test], out_dir, stem=DRIFT_STEM
    )
    kinds = {f.name: f.kind for f in features}
    columns = tuple(_check(c, kinds.get(c.column, "prediction")) for c in checks[:-1])
    prediction = _check(checks[-1], "prediction").model_copy(update={"column": "prediction"})
    drifted = tuple(c.column for c in columns if c.drifted)
    return DriftResult(
        columns=columns,
        drifted_columns=drifted,
        drifted_share=len(drifted) / len(columns) if columns else 0.0,
        max_drifted_share=policy.max_drifted_share,
        prediction=prediction,
        mean_score_reference=float(np.mean(ref_scores)),
        mean_score_batch=float(np.mean(cur_scores)),
        ignored_columns=tuple(ignored),
        rows_reference=len(ref),
        rows_batch=len(cur),
        total_rows_reference=len(reference),
        total_rows_batch=len(batch),
        evidently_html=files.html,
        evidently_json=files.json,
    )


def drift_breaches(result: DriftResult) -> list[str]:
    """One line per breach of the policy: too many drifted columns, or prediction drift.

    The drifted-columns line names every drifted column with its statistic, value and
    threshold; an empty list means the batch is within the policy.
    """
    lines = []
    if result.drifted_share > result.max_drifted_share:
        named = "; ".join(c.describe() for c in result.columns if c.drifted)
        lines.append(
            f"{len(result.drifted_columns)} of {len(result.columns)} columns drifted "
            f"(share {result.drifted_share:.3f} > max {result.max_drifted_share:g}): {named}"
        )
    if result.prediction.drifted:
        lines.append(f"prediction drift: {result.prediction.describe()}")
    return lines


def _drift_frame(
    frame: pd.DataFrame, tests: Sequence[drift.ColumnTest], scores: np.ndarray
) -> pd.DataFrame:
    """The tested columns typed for Evidently (floats, text) plus the model's scores."""
    columns = {
        t.column: pd.to_numeric(frame[t.column], errors="coerce").astype("float64")
        if t.kind == "numerical"
        else frame[t.column].astype("string").astype(object).where(frame[t.column].notna())
        for t in tests
    }
    columns[PREDICTION_COLUMN] = pd.Series(scores, index=frame.index, dtype="float64")
    return pd.DataFrame(columns)


def _check(found: drift.ColumnDrift, kind: str) -> ColumnCheck:
    return ColumnCheck(
        column=found.column,
        kind=kind,
        statistic=found.method,
        threshold=found.threshold,
        value=found.score,
        drifted=found.drifted,
    )


# --- performance and fairness ---------------------------------------------------------------


def is_labelled(batch: pd.DataFrame, model: MonitoredModel) -> bool:
    """Whether the batch carries the label column with at least one value."""
    return model.target in batch.columns and bool(batch[model.target].notna().any())


def assess_performance(
    batch: pd.DataFrame,
    model: MonitoredModel,
    champion: ChampionEvaluation,
    out_dir: Path,
    *,
    scorer: Scorer,
) -> PerformanceResult:
    """Metrics, per-group metrics and the fairness report on the labelled batch, with deltas.

    Every batch row is scored (no sampling: per-group figures need every labelled row). The
    fairness report is written under ``out_dir/fairness``. Deltas are ``batch - champion``.

    Raises:
        DataError: A sensitive column is missing, or labels are missing or invalid.
    """
    missing = [c for c in model.sensitive if c not in batch.columns]
    if missing:
        raise DataError(f"the labelled batch lacks sensitive column(s) {missing}")
    predictions = pd.DataFrame(
        {
            LABEL: label_values(batch[model.target], model.positive_label).to_numpy(),
            SCORE: scorer(batch),
            **{c: batch[c].to_numpy() for c in model.sensitive},
        }
    )
    eval_params = EvalParams(threshold=model.threshold)
    metrics, _, groups = evaluate(predictions, model.sensitive, eval_params, model.fairness)
    report = fairness_report(predictions, model.sensitive, model.fairness)
    files = write_fairness_report(report, out_dir / "fairness")
    champion_metrics = (champion.metrics or {}).get("metrics")
    not_found = [
        name
        for name, doc in (
            (METRICS_ARTIFACT, champion.metrics),
            (GROUPS_ARTIFACT, champion.groups),
            (FAIRNESS_ARTIFACT, champion.fairness),
        )
        if doc is None
    ]
    return PerformanceResult(
        n_rows=len(predictions),
        metrics=compare_metrics(
            json_safe(metrics), champion_metrics, report.model_dump(mode="json"), champion.fairness
        ),
        groups=group_deltas(
            groups_to_records(groups),
            champion.groups,
            rule=model.fairness,
            champion_rule=group_rule(champion.fairness),
        ),
        fairness=summary_deltas(report, champion.fairness),
        fairness_json=files.json_path,
        fairness_html=files.html_path,
        missing=tuple(not_found),
    )


def group_deltas(
    groups: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]] | None,
    metrics: Sequence[str] = GROUP_DELTA_METRICS,
    *,
    rule: FairnessParams | None = None,
    champion_rule: FairnessParams | None = None,
) -> tuple[GroupDelta, ...]:
    """Per (column, group): each metric on the batch, in the champion's groups.json, and the delta.

    Groups present on one side only are listed with the other side empty. Each side's status
    follows the small-group rule (``rule`` for the batch, ``champion_rule`` for records older than
    the rule; defaults when not given); a private side contributes no figure.
    """
    ours_rule, theirs_rule = rule or FairnessParams(), champion_rule or FairnessParams()
    rows = []
    for key, mine, other in paired_groups(groups, champion):
        status = group_status(mine, ours_rule)
        theirs = None if other is None else group_status(other, theirs_rule)
        rows.append(
            GroupDelta(
                column=key[0],
                group=key[1],
                n=finite_int(mine.get("n")),
                champion_n=None if other is None else finite_int(other.get("n")),
                status=status,
                champion_status=theirs,
                metrics=tuple(
                    _delta(
                        m,
                        None if status == PRIVATE else finite_number(mine.get(m)),
                        None if other is None or theirs == PRIVATE else finite_number(other.get(m)),
                    )
                    for m in metrics
                ),
            )
        )
    return tuple(rows)


def summary_deltas(
    report: FairnessReport, champion: Mapping[str, Any] | None
) -> tuple[SummaryDelta, ...]:
    """Between-group summaries of every slice on the batch beside the champion's report."""
    theirs = {
        str(item.get("name")): item.get("summary", {})
        for item in (champion or {}).get("slices", ())
    }
    rows = []
    for item in report.slices:
        summary = item.summary.model_dump(mode="json")
        other = theirs.get(item.name)
        for name in FAIRNESS_SUMMARIES:
            value = finite_number((summary.get(name) or {}).get("value"))
            champ = None if other is None else finite_number((other.get(name) or {}).get("value"))
            rows.append(
                SummaryDelta(
                    slice=item.name,
                    summary=name,
                    value=value,
                    champion=champ,
                    difference=None if value is None or champ is None else value - champ,
                )
            )
    return tuple(rows)


def _delta(name: str, value: float | None, champion: float | None) -> Comparison:
    difference = None if value is None or champion is None else value - champion
    return Comparison(name=name, value=value, champion=champion, difference=difference)


# --- the whole assessment -------------------------------------------------------------------


def assess(
    batch_frame: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    batch: RawBatch,
    model: MonitoredModel,
    policy: DriftPolicy,
    scorer: Scorer,
    champion: ChampionEvaluation,
    out_dir: Path,
    validation_report: ValidationReport | None = None,
    skipped_expectations: tuple[str, ...] = (),
) -> MonitoringReport:
    """Drift, and with labels performance and fairness, of one batch; writes ``monitoring.json``.

    The decision (``passed``, ``breaches``) follows :func:`drift_breaches`; the caller decides
    what a breach does (the flow fails the run).
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    drift_result = assess_drift(
        reference, batch_frame, model.features, policy, out_dir, scorer=scorer
    )
    seconds["drift"] = round(time.perf_counter() - started, 3)
    labelled = is_labelled(batch_frame, model)
    performance = None
    if labelled:
        started = time.perf_counter()
        performance = assess_performance(batch_frame, model, champion, out_dir, scorer=scorer)
        seconds["performance"] = round(time.perf_counter() - started, 3)
    breaches = drift_breaches(drift_result)
    report = MonitoringReport(
        dataset=batch.dataset,
        model=model,
        batch=batch,
        labelled=labelled,
        validation=validation_report,
        skipped_expectations=skipped_expectations,
        policy=policy,
        drift=drift_result,
        performance=performance,
        passed=not breaches,
        breaches=tuple(breaches),
        seconds=seconds,
        json_path=out_dir / MONITORING_FILE,
    )
    write_json_atomic(out_dir / MONITORING_FILE, report.model_dump(mode="json"))
    logger.info("%s", report.headline())
    return report


def drift_metrics(report: MonitoringReport) -> dict[str, float]:
    """The figures logged as MLflow metrics: drift per column, share, prediction, performance."""
    figures = {
        "drift.share": report.drift.drifted_share,
        "drift.n_drifted": float(len(report.drift.drifted_columns)),
        "drift.prediction": report.drift.prediction.value,
        "score.mean_batch": report.drift.mean_score_batch,
        "score.mean_reference": report.drift.mean_score_reference,
        "rows.batch": float(report.batch.n_rows),
    }
    figures.update({f"drift.{_metric_key(c.column)}": c.value for c in report.drift.columns})
    for item in report.performance.metrics if report.performance else ():
        if item.value is not None:
            figures[f"batch_{item.name}"] = item.value
        if item.difference is not None:
            figures[f"delta_{item.name}"] = item.difference
    return figures


def _metric_key(column: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``; replace anything else."""
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in column)


def breach_error(report: MonitoringReport, retraining: str | None = None) -> DriftDetected:
    """The error that fails the run: headline, one line per breach, and any retraining."""
    lines = [*report.breaches, *([f"retraining triggered: {retraining}"] if retraining else [])]
    return DriftDetected(report.headline(), lines)
