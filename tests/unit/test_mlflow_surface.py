"""The MLflow UI as the review surface: metric names, dataset input, experiment kind, Markdown.

Real records (a fairness report of Adult rows, a gate decision from the real policy, a review
summary) rendered and written to a real MLflow store on SQLite.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from evenflow import layout
from evenflow.assess.fairness import FairnessReport, fairness_report
from evenflow.assess.small_groups import REPORTED
from evenflow.config.fairness import FairnessParams
from evenflow.config.gates import GatePolicy
from evenflow.config.settings import EvenflowSettings
from evenflow.govern.comparison import Comparison, DataChange, GroupComparison
from evenflow.govern.evidence import Evidence
from evenflow.govern.gates import GateDecision, gate_failures
from evenflow.govern.review import GateSummary, ModelCardRef, ReviewSummary, VersionInfo
from evenflow.records import FeatureSpec, ShardInfo, ShardManifest, SplitSummary
from evenflow.registry import store, surface
from evenflow.reports import summaries
from evenflow.reports.review import review_description

SENSITIVE = ("sex", "race")
# What MLflow accepts as a metric name (mlflow.utils.validation, POSIX).
METRIC_NAME = re.compile(r"^[/\w.\- :]*$")


@pytest.fixture(scope="module")
def report(adult_rows: pd.DataFrame) -> FairnessReport:
    """The fairness report of 2,000 Adult rows scored by a noisy model (small groups included)."""
    rng = np.random.default_rng(3)
    label = (adult_rows["income"].str.contains(">50K")).astype(int).to_numpy()
    score = np.clip(0.5 * label + 0.5 * rng.random(label.size), 0, 1)
    frame = adult_rows[list(SENSITIVE)].assign(label=label, score=score)
    return fairness_report(frame, SENSITIVE, FairnessParams(n_bootstrap=100, seed=1))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> EvenflowSettings:
    return EvenflowSettings(project_root=tmp_path_factory.mktemp("surface"))


def _client(settings: EvenflowSettings) -> MlflowClient:
    return store.client_for(settings)


def test_fairness_metrics_have_stable_names_bounds_and_leave_small_groups_out(
    report: FairnessReport, settings: EvenflowSettings
) -> None:
    metrics = surface.fairness_metrics(report)

    eo = "fairness.sex.equalized_odds_difference"
    assert metrics[f"{eo}.low"] <= metrics[eo] <= metrics[f"{eo}.high"]
    female_tpr = "fairness.sex.group.Female.tpr"
    assert metrics[f"{female_tpr}.low"] <= metrics[female_tpr] <= metrics[f"{female_tpr}.high"]
    assert report.slice("sex").groups[0].tpr is not None
    assert any(k.startswith("fairness.sex_x_race.group.") for k in metrics), "intersections"
    assert all(METRIC_NAME.match(k) and len(k) <= 250 for k in metrics)
    for name in metrics:
        if name.endswith(".low"):
            value, high = metrics[name.removesuffix(".low")], metrics[name[:-4] + ".high"]
            assert metrics[name] <= value <= high, name
    # The one rule for small groups: no figure for a private or insufficient group, a count instead.
    for item in report.slices:
        part = surface.metric_part(item.name)
        left = [g for g in item.groups if g.status != REPORTED]
        assert metrics[f"fairness.{part}.groups_left_out"] == len(left)
        for group in left:
            prefix = f"fairness.{part}.group.{surface.metric_part(group.name)}."
            assert not any(k.startswith(prefix) for k in metrics), group.name
    assert sum(metrics[k] for k in metrics if k.endswith("groups_left_out")) == len(report.left_out)
    assert len(report.left_out) > 0, "the sample must hold a small group for this test to bite"

    run_id = store.start_run(settings, "surface", "fairness", {})
    store.log_metrics(settings, run_id, metrics)
    assert _client(settings).get_run(run_id).data.metrics == pytest.approx(metrics)


def test_every_experiment_opens_on_its_runs(settings: EvenflowSettings) -> None:
    client = _client(settings)
    old = client.create_experiment("made-before-the-tag")

    store.start_run(settings, "made-before-the-tag", "r", {})
    store.start_run(settings, "new-experiment", "r", {})

    for name in ("made-before-the-tag", "new-experiment"):
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


@contextmanager
def _no_warnings() -> Iterator[None]:
    """Fail on any warning raised inside the block (the console stays quiet)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield
    assert not seen, [str(w.message) for w in seen]


def _manifest(shard_dir: Path) -> ShardManifest:
    return ShardManifest(
        dataset="adult",
        raw_md5="a" * 32,
        data_md5="0123456789abcdef0123456789abcdef.dir",
        shard_dir=shard_dir,
        shards=(ShardInfo(split="train", path="train/part-0.parquet", md5="0" * 32, n_rows=10),),
        features=(
            FeatureSpec(name="age", kind="numeric"),
            FeatureSpec(name="workclass", kind="categorical", categories=("Private",)),
        ),
        target="income",
        positive_label=">50K",
        sensitive=("sex",),
        split_report=(
            SplitSummary(name="train", rows=700, positives=170, base_rate=0.24, groups={}),
            SplitSummary(name="test", rows=300, positives=70, base_rate=0.23, groups={}),
        ),
    )


def test_the_dataset_input_carries_the_dvc_hash_source_and_schema(
    settings: EvenflowSettings, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "shards")
    run_id = store.start_run(settings, "surface", "dataset", {})

    with _no_warnings():
        dataset = surface.ShardedDataset(manifest, str(tmp_path / "adult.csv"))
    store.log_dataset(
        settings, run_id, dataset, context="training", tags=surface.dataset_input_tags(manifest)
    )

    (logged,) = _client(settings).get_run(run_id).inputs.dataset_inputs
    assert logged.dataset.digest == manifest.data_md5
    assert logged.dataset.name == "adult"
    assert str(tmp_path / "adult.csv") in logged.dataset.source
    assert '"age"' in logged.dataset.schema and '"double"' in logged.dataset.schema
    assert '"num_rows": 1000' in logged.dataset.profile
    tags = {t.key: t.value for t in logged.tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags[layout.RAW_MD5_INPUT_TAG] == manifest.raw_md5


def _decision(report: FairnessReport, metrics: dict[str, float]) -> GateDecision:
    policy = GatePolicy(min_auc=0.99, max_disparity={"equalized_odds_difference": 0.5})
    return gate_failures(policy, metrics, report, None, [])


def _facts(report: FairnessReport, *, version: str = "3") -> summaries.ReviewFacts:
    metrics = {"roc_auc": 0.91, "roc_auc_low": 0.9, "roc_auc_high": 0.92, "accuracy": 0.85}
    metrics |= {"accuracy_low": 0.84, "accuracy_high": 0.86}
    estimates = summaries.headline_estimates(metrics)
    return summaries.ReviewFacts(
        model="adult",
        version=version,
        run_id="abc123",
        dataset="adult",
        data_md5="0123.dir",
        source="/data/adult.csv",
        rows={"train": 700, "test": 300},
        cross_fitted=False,
        decision=_decision(report, metrics),
        metrics=estimates,
        gaps=surface.worst_gaps(report),
        left_out=surface.left_out_groups(report),
        confidence_level=0.95,
        links=[
            summaries.Link(
                "Model card (HTML)", layout.artifact_page("1", "abc123", layout.CARD_HTML)
            )
        ],
        champion=summaries.ChampionChange(
            version="2",
            rows=summaries.champion_rows(estimates, {"test_roc_auc": 0.9, "test_accuracy": 0.86}),
            same_data=False,
            data_md5="9999.dir",
        ),
    )


def test_the_version_description_leads_with_the_verdict_and_renders_as_tables(
    report: FairnessReport,
) -> None:
    facts = _facts(report)

    text = summaries.version_description(facts)

    failed, checked = len(facts.decision.failed), len(facts.decision.clauses)
    assert text.startswith(
        f"**Gate FAILED**: adult v3 FAILED its gates ({failed} of {checked} clauses) and is not a"
    )
    assert "- failed: min_auc" in text
    assert "| roc_auc | 0.9100 | [0.9000, 0.9200] |" in text
    assert "|---|---|---|" in text
    worst = facts.gaps[0]
    assert (
        f"| {worst.slice} | {worst.summary.replace('_', ' ')} | {worst.estimate.value:.4f}" in text
    )
    assert "| roc_auc | 0.9100 | 0.9000 | +0.0100 |" in text
    assert "different data from the champion" in text
    assert (
        "[Model card (HTML)](#/experiments/1/runs/abc123/artifacts/model_card/model_card.html?workflowType=machine_learning)"
        in text
    )
    assert f"{facts.left_out} groups left out" in text
    assert len(text) <= store.DESCRIPTION_LIMIT

    short = summaries.version_description(facts, limit=900)
    assert len(short) <= 900 and short.startswith("**Gate FAILED**")
    assert "Since the champion" not in short


def test_the_run_description_names_the_data_and_the_metric_pattern(report: FairnessReport) -> None:
    text = summaries.run_description(_facts(report))

    assert text.startswith("**Gate FAILED**")
    assert "DVC md5 `0123.dir` (train 700, test 300)" in text
    assert "Source: `/data/adult.csv`" in text
    assert "`fairness.<slice>.group.<group>.<rate>`" in text


def _summary() -> ReviewSummary:
    auc = Comparison(name="roc_auc", value=0.91, low=0.9, high=0.92, champion=0.9, difference=0.01)
    rates = (
        Comparison(name="tpr", value=0.6, low=0.5, high=0.7, champion=0.55, difference=0.05),
        Comparison(name="fpr", value=0.1, low=0.05, high=0.15, champion=0.1, difference=0.0),
    )
    groups = tuple(
        GroupComparison(
            column="race",
            group=f"group-{i}",
            n=100 + i,
            champion_n=100,
            status="reported" if i else "insufficient",
            champion_status="reported",
            metrics=rates,
        )
        for i in range(40)
    )
    return ReviewSummary(
        model="adult",
        version=VersionInfo(
            version="3", run_id="run3", aliases=("candidate",), data_md5="a.dir", git_commit="c"
        ),
        champion=VersionInfo(
            version="2", run_id="run2", aliases=(), data_md5="b.dir", git_commit="c"
        ),
        metrics=(auc,),
        groups=groups,
        gate=GateSummary(tag="passed", passed=True, n_clauses=4, failed=()),
        data=DataChange(
            data_md5="a.dir",
            champion_data_md5="b.dir",
            same_data=False,
            rows={"train": 700},
            champion_rows={"train": 650},
            features_added=("hours",),
        ),
        model_card=ModelCardRef(
            run_id="run3", html=layout.CARD_HTML, markdown=layout.CARD_MARKDOWN, present=()
        ),
        evidence=Evidence(files={"a": "b"}, sha256="f" * 64),
        missing=(),
    )


def test_the_review_is_markdown_tables_that_fit_the_description() -> None:
    summary = _summary()

    text = review_description(summary, experiment_id="7")

    assert text.startswith("**Review of adult v3** (candidate) against champion v2")
    assert "**Gate passed** (4 clauses checked; tag `passed`)" in text
    assert "| metric | this version | champion | difference |" in text
    assert "| roc_auc | 0.9100 [0.9000, 0.9200] | 0.9000 | +0.0100 |" in text
    assert "| race | group-0 | 100 insufficient evidence (100) | tpr |" in text
    assert "| train rows | 700 | 650 | +50 |" in text
    assert "- features added: hours" in text
    assert (
        "(#/experiments/7/runs/run3/artifacts/model_card/model_card.html?workflowType=machine_learning)"
        in text
    )
    assert "```" not in text, "no fixed-width block"
    assert len(text) <= store.DESCRIPTION_LIMIT
    # 40 groups x 2 rates do not fit: the last rows give way, counted, and the evidence stays.
    assert re.search(r"…and \d+ more rows: `evenflow review adult 3`", text)
    assert "Evidence sha256" in text
