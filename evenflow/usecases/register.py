"""Registering a trained model: the MLflow version with its lineage and gate, and its card.

Only a model that passed its gates gets the ``candidate`` alias; the card is written from the run's
own records, so what a reviewer reads is what the run measured. The run's and the version's
descriptions (Markdown in the MLflow UI) are gathered by :func:`review_facts` and worded by
:mod:`evenflow.reports.summaries`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from evenflow import layout
from evenflow.assess import drift, explain
from evenflow.assess.fairness import Estimate, FairnessReport
from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.gates import GateDecision
from evenflow.records import (
    EvalReport,
    ModelVersionRef,
    ShardManifest,
    TrainingResult,
    ValidationReport,
)
from evenflow.registry import store as registry
from evenflow.registry import surface
from evenflow.reports import summaries
from evenflow.reports.mitigation_html import TradeoffFiles
from evenflow.reports.model_card import (
    DataSummary,
    DriftOverview,
    Lineage,
    ModelCardInputs,
    write_model_card,
)


def input_example(
    manifest: ShardManifest, n_rows: int = 5, *, decision_columns: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A few raw test rows in the data's own dtypes: the input example, hence the signature.

    ``decision_columns`` are inputs the model decides with but does not score with (the group of
    a threshold policy when sensitive columns are not features): MLflow drops any column the
    signature does not name, which would silently switch the policy off.
    """
    features = [f.name for f in manifest.features]
    columns = features + [c for c in decision_columns if c not in features]
    first = manifest.split_paths(manifest.evaluated_split)[0]
    return pd.read_parquet(first, columns=columns).head(n_rows)


def register(
    settings: EvenflowSettings,
    run_id: str,
    *,
    params: RunParams,
    manifest: ShardManifest,
    training: TrainingResult,
    report: EvalReport,
    decision: GateDecision,
    tags: dict[str, str],
) -> ModelVersionRef:
    """Register the model with lineage and gate tags; only a model that passed becomes candidate."""
    return registry.register_model(
        settings,
        run_id,
        model_name=params.dataset.name,
        training=training,
        manifest=manifest,
        input_example=input_example(
            manifest,
            decision_columns=(manifest.sensitive if report.threshold_policy_path else ()),
        ),
        threshold=params.evaluation.threshold,
        threshold_policy=report.threshold_policy_path,
        tags={**tags, **gate_tags(decision)},
        candidate=decision.passed,
    )


def log_dataset(
    settings: EvenflowSettings, run_id: str, manifest: ShardManifest, source: Path
) -> None:
    """Log the versioned data as the run's dataset input: digest = DVC md5, source = the batch."""
    registry.log_dataset(
        settings,
        run_id,
        surface.ShardedDataset(manifest, str(source)),
        context=layout.DATASET_CONTEXT,
        tags=surface.dataset_input_tags(manifest),
    )


def log_fairness(settings: EvenflowSettings, run_id: str, report: EvalReport) -> int:
    """Log the fairness summaries and group rates as metrics with bounds; return how many."""
    fairness = _fairness(report)
    if fairness is None:
        return 0
    metrics = surface.fairness_metrics(fairness)
    registry.log_metrics(settings, run_id, metrics)
    return len(metrics)


def gate_tags(decision: GateDecision) -> dict[str, str]:
    """The gate's outcome as tags (on the run and on the version): verdict and failed clauses."""
    return {
        layout.GATE_TAG: "passed" if decision.passed else "failed",
        layout.GATE_FAILED_TAG: "; ".join(c.name for c in decision.failed),
    }


def review_facts(
    settings: EvenflowSettings,
    run_id: str,
    *,
    params: RunParams,
    manifest: ShardManifest,
    report: EvalReport,
    decision: GateDecision,
    version: ModelVersionRef,
) -> summaries.ReviewFacts:
    """What the run's and the version's descriptions show, read from the run's own records."""
    fairness = _fairness(report)
    metrics = summaries.headline_estimates(report.metrics)
    return summaries.ReviewFacts(
        model=version.name,
        version=version.version,
        candidate=layout.CANDIDATE in version.aliases,
        run_id=run_id,
        dataset=manifest.dataset,
        data_md5=manifest.data_md5,
        source=str(params.dataset.path),
        rows={s.name: s.rows for s in manifest.split_report}
        or {s: manifest.split_rows(s) for s in ("train", "valid", "test")},
        cross_fitted=manifest.cross_fitted,
        decision=decision,
        metrics=metrics,
        gaps=surface.worst_gaps(fairness) if fairness else [],
        left_out=surface.left_out_groups(fairness) if fairness else 0,
        confidence_level=params.fairness.confidence_level,
        # The version's evidence: this run's, or (a build registered before) the earlier run's.
        links=_links(
            registry.experiment_id_of(settings, version.run_id), version.run_id, version, report
        ),
        champion=_champion_change(settings, version, metrics, manifest.data_md5),
    )


def describe(settings: EvenflowSettings, facts: summaries.ReviewFacts, *, version: bool) -> None:
    """Write the run's description, and the version's when ``version`` (a new registration)."""
    registry.describe_run(settings, facts.run_id, summaries.run_description(facts))
    if version and facts.version is not None:
        registry.describe_version(
            settings, facts.model, facts.version, summaries.version_description(facts)
        )


def _links(
    experiment_id: str, run_id: str, version: ModelVersionRef, report: EvalReport
) -> list[summaries.Link]:
    """Links to the evidence, as the MLflow UI's own pages (they open in a new tab)."""

    def page(label: str, path: str) -> summaries.Link:
        return summaries.Link(label, layout.artifact_page(experiment_id, run_id, path))

    links = [
        page("Model card (HTML)", layout.CARD_HTML),
        page("Model card (Markdown)", layout.CARD_MARKDOWN),
    ]
    if report.fairness_path is not None:
        links.append(page("Fairness report (every group, with intervals)", layout.FAIRNESS_HTML))
    links += [
        page("Gate decision (every clause with its numbers)", layout.DECISION),
        page("All reports", layout.REPORTS_DIR),
        page("Validation (Great Expectations)", layout.VALIDATION_DIR),
        summaries.Link("Training run", layout.run_page(experiment_id, run_id)),
        summaries.Link(
            f"Model version {version.name} v{version.version}",
            layout.version_page(version.name, version.version),
        ),
    ]
    return links


def _champion_change(
    settings: EvenflowSettings,
    version: ModelVersionRef,
    metrics: dict[str, Estimate],
    data_md5: str,
) -> summaries.ChampionChange | None:
    """This version against the champion, or None when there is none (or it is this version)."""
    found = registry.champion_run(settings, version.name)
    if found is None or found[0] == version.version:
        return None
    champion_version, run = found
    champion_md5 = run.data.tags.get(layout.DATA_MD5_TAG, "")
    return summaries.ChampionChange(
        version=champion_version,
        rows=summaries.champion_rows(metrics, run.data.metrics),
        same_data=champion_md5 == data_md5,
        data_md5=champion_md5,
    )


def _fairness(report: EvalReport) -> FairnessReport | None:
    if report.fairness_path is None:
        return None
    return FairnessReport.model_validate_json(report.fairness_path.read_text(encoding="utf-8"))


def write_card(
    params: RunParams,
    *,
    version: ModelVersionRef,
    manifest: ShardManifest,
    validation_report: ValidationReport,
    report: EvalReport,
    explanations: explain.ExplanationFiles,
    decision: GateDecision,
    tags: dict[str, str],
    out_dir: Path,
    tradeoff: TradeoffFiles | None = None,
) -> tuple[Path, Path]:
    """Write the version's model card (HTML and Markdown) from the run's own records."""
    fairness = (
        FairnessReport.model_validate_json(report.fairness_path.read_text(encoding="utf-8"))
        if report.fairness_path
        else None
    )
    drift_summary = (
        drift.DriftSummary.model_validate_json(report.drift_path.read_text(encoding="utf-8"))
        if report.drift_path
        else None
    )
    inputs = ModelCardInputs(
        model_name=version.name,
        model_version=version.version,
        run_id=version.run_id,
        intended_use=params.model_card.intended_use,
        out_of_scope_use=params.model_card.out_of_scope_use,
        data=DataSummary(
            dataset=manifest.dataset,
            data_md5=manifest.data_md5,
            rows={s.name: s.rows for s in manifest.split_report}
            or {s: manifest.split_rows(s) for s in ("train", "valid", "test")},
            evaluation=(
                f"out-of-fold predictions of every row ({manifest.plan.reason})"
                if manifest.cross_fitted
                else f"the held-out test split ({manifest.plan.reason})"
            ),
            validation=validation_report,
        ),
        metrics=_metrics_with_intervals(report.metrics, fairness),
        baselines=_baseline_estimates(report.report_dir / layout.BASELINES_FILE),
        threshold=params.evaluation.threshold,
        fairness=fairness,
        fairness_html=report.fairness_path.with_name(layout.FAIRNESS_HTML_FILE)
        if report.fairness_path
        else None,
        mitigation=params.mitigation.method,
        tradeoff=_tradeoff_rows(tradeoff),
        tradeoff_plot=tradeoff.png_path if tradeoff else None,
        drift=DriftOverview.from_summary(drift_summary) if drift_summary else None,
        explanations=explain.read_explanations(explanations.json_path),
        shap_plots=(explanations.summary_plot_path, explanations.group_plot_path),
        lineage=Lineage.from_tags(tags),
        gate=decision,
    )
    return write_model_card(inputs, out_dir / layout.MODEL_CARD_DIR)


def _baseline_estimates(path: Path) -> dict[str, dict[str, object]]:
    """Each baseline's headline metrics as estimates for the card; empty when none were fitted."""
    if not path.is_file():
        return {}
    written = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: {
            metric: {
                "value": _finite(value),
                "low": _finite(figures.get(f"{metric}_low")),
                "high": _finite(figures.get(f"{metric}_high")),
            }
            for metric, value in figures.items()
            if not metric.endswith(("_low", "_high"))
        }
        for name, figures in written.items()
    }


def _metrics_with_intervals(
    metrics: dict[str, float], fairness: FairnessReport | None
) -> dict[str, object]:
    """Overall metrics as estimates, for the card.

    Headline metrics carry their own bootstrap bounds (``<name>_low`` / ``<name>_high``); other
    rates take the fairness report's overall interval where it has the same rate.
    """
    bounds = {f"{name}_{end}" for name in metrics for end in ("low", "high")}
    out: dict[str, object] = {}
    for name, value in metrics.items():
        if name in bounds:
            continue
        if f"{name}_low" in metrics or fairness is None:
            out[name] = {
                "value": _finite(value),
                "low": _finite(metrics.get(f"{name}_low")),
                "high": _finite(metrics.get(f"{name}_high")),
            }
            continue
        estimate = getattr(fairness.overall, name, None)
        out[name] = estimate if isinstance(estimate, Estimate) else value
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _tradeoff_rows(tradeoff: TradeoffFiles | None) -> list[dict[str, object]] | None:
    if tradeoff is None:
        return None
    rows: list[dict[str, object]] = json.loads(tradeoff.json_path.read_text(encoding="utf-8"))[
        "rows"
    ]
    return rows
