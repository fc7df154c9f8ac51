"""Shared unit-test helpers: Adult-sample shards; versions on a real MLflow registry (SQLite).

Shards are the 3,000-row Adult sample as sharding writes them, for the training tests.

A version is a run whose artifacts are real evaluation, fairness and gate outputs of small
synthetic predictions, a hand-written model card and manifest, registered without a model (no
training: seconds, not minutes). The ``settings`` fixture is module-scoped: each test module gets
its own registry (migrations cost seconds) and each test its own model name, so modules stay
isolated from each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_USER
from typer.testing import CliRunner, Result

from evenflow import layout
from evenflow.assess.evaluation import write_evaluation
from evenflow.assess.fairness import fairness_report, report_to_json
from evenflow.cli.main import app
from evenflow.config.fairness import FairnessParams
from evenflow.config.gates import GatePolicy
from evenflow.config.run import EvalParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data.features import feature_specs
from evenflow.data.sharding import write_shards
from evenflow.govern.gates import gate_failures
from evenflow.govern.ledger import LedgerEntry
from evenflow.io import write_json_atomic
from evenflow.records import FeatureSpec, ShardInfo, ShardManifest
from evenflow.registry import store as registry
from evenflow.usecases import champion
from tests.conftest import sample_params

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TRAINER = "tess"


def sample_shards(adult_sample_path: Path, shard_dir: Path, n_shards: int) -> ShardManifest:
    """The Adult sample cut into ``n_shards`` per split under ``shard_dir``, as sharding leaves it.

    The manifest's md5s are placeholders: no DVC here, only the shards' own md5s are real.
    """
    params = sample_params(adult_sample_path, shards__n_shards=n_shards)
    spec = params.dataset
    frame = pd.read_csv(adult_sample_path)
    shards = write_shards(frame, spec, params.split, params.shards, shard_dir)
    return ShardManifest(
        dataset=spec.name,
        raw_md5="0" * 32,
        data_md5="0" * 32 + ".dir",
        shard_dir=shard_dir,
        shards=tuple(shards),
        features=feature_specs(frame, spec),
        target=spec.target,
        positive_label=spec.positive_label,
        sensitive=spec.sensitive,
    )


@dataclass(frozen=True)
class Made:
    """A registered version and the figures its artifacts hold."""

    version: str
    run_id: str
    metrics: dict[str, float]
    groups: list[dict[str, Any]]
    folder: Path


def _predictions(seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    sex = rng.choice(["Female", "Male"], size=n, p=[0.4, 0.6])
    label = (rng.random(n) < np.where(sex == "Male", 0.35, 0.2)).astype(int)
    score = np.clip(0.35 * label + 0.65 * rng.random(n) + shift, 0.0, 1.0)
    return pd.DataFrame({"label": label, "score": score, "sex": sex, "_row_id": np.arange(n)})


def _manifest(rows: int, features: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    specs = tuple(
        FeatureSpec(name=name, kind="categorical" if cats else "numeric", categories=cats)
        for name, cats in features.items()
    )
    shards = tuple(
        ShardInfo(split=split, path=f"{split}/part-0.parquet", md5="0" * 32, n_rows=count)
        for split, count in (("train", rows), ("valid", rows // 5), ("test", rows // 5))
    )
    manifest = ShardManifest(
        dataset="adult",
        raw_md5="r" * 32,
        data_md5=f"{rows:032d}.dir",
        shard_dir=Path("/data/adult"),
        shards=shards,
        features=specs,
        target="income",
        positive_label=">50K",
        sensitive=("sex",),
    )
    return manifest.model_dump(mode="json")


def make_version(
    settings: EvenflowSettings,
    model: str,
    folder: Path,
    *,
    seed: int = 0,
    shift: float = 0.0,
    passed: bool = True,
    rows: int = 1000,
    features: dict[str, tuple[str, ...]] | None = None,
) -> Made:
    """Log the artifacts a training run logs and register a version from the run."""
    client = registry.client_for(settings)
    run_id = registry.start_run(settings, "promotion-tests", model, {})
    predictions = _predictions(seed, shift)
    rule = FairnessParams(n_bootstrap=50)
    report = write_evaluation(
        predictions,
        ["sex"],
        EvalParams(),
        folder / "reports",
        predictions_path=folder / "p",
        fairness=rule,
    )
    fairness = fairness_report(predictions, ["sex"], rule)
    fairness_json = folder / "reports" / "fairness" / "fairness.json"
    write_json_atomic(fairness_json, report_to_json(fairness))  # the HTML twin is slow to draw
    groups = json.loads(report.groups_path.read_text(encoding="utf-8"))
    policy = GatePolicy(min_auc=0.5 if passed else 0.999)
    decision = gate_failures(policy, report.metrics, fairness, None, groups)
    write_json_atomic(folder / "gate" / "decision.json", decision.model_dump(mode="json"))
    card = folder / "model_card"
    card.mkdir()
    (card / "model_card.html").write_text(f"<h1>{model} seed {seed}</h1>", encoding="utf-8")
    (card / "model_card.md").write_text(f"# {model} seed {seed}\n", encoding="utf-8")
    manifest = _manifest(rows, features or {"age": (), "workclass": ("Private", "State-gov")})
    write_json_atomic(folder / "data" / "manifest.json", manifest)
    for part in ("reports", "gate", "model_card", "data"):
        client.log_artifacts(run_id, str(folder / part), part)
    if not client.search_registered_models(filter_string=f"name = '{model}'"):
        client.create_registered_model(model)
    version = str(
        client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id).version
    )
    tags = {
        "evenflow.gate": "passed" if passed else "failed",
        "evenflow.gate_failed": "; ".join(c.name for c in decision.failed),
        "evenflow.data_md5": manifest["data_md5"],
    }
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)
    if passed:
        client.set_registered_model_alias(model, layout.CANDIDATE, version)
    return Made(version, run_id, report.metrics, groups, folder)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> EvenflowSettings:
    """One SQLite registry per module (migrations cost seconds); each test uses its own model."""
    return EvenflowSettings(project_root=tmp_path_factory.mktemp("registry"))


@pytest.fixture
def model(request: pytest.FixtureRequest) -> str:
    """A model name of this test's own, so tests sharing the module's registry do not meet."""
    return re.sub(r"\W", "-", request.node.name)


@pytest.fixture
def trainer() -> str | None:
    """Who launched the training runs ``make`` registers (MLflow's user tag); None leaves it.

    Modules about separation of duties override this with ``TRAINER``.
    """
    return None


@pytest.fixture
def make(
    settings: EvenflowSettings, model: str, tmp_path: Path, trainer: str | None
) -> Callable[..., Made]:
    """``make(**kwargs)`` registers a version of ``model`` (kwargs as ``make_version`` takes)."""
    counter = iter(range(100))

    def _make(**kwargs: Any) -> Made:
        folder = tmp_path / f"v{next(counter)}"
        folder.mkdir()
        made = make_version(settings, model, folder, **kwargs)
        if trainer is not None:
            registry.client_for(settings).set_tag(made.run_id, MLFLOW_USER, trainer)
        return made

    return _make


def ledger_entry(seq: int, action: str, version: str, previous: str | None) -> LedgerEntry:
    """A ledger entry as ``ada`` wrote it at ``NOW``, for the pure ledger decisions."""
    return LedgerEntry.model_validate(
        {
            "seq": seq,
            "action": action,
            "version": version,
            "previous_champion": previous,
            "reviewer": "ada",
            "at": NOW,
            "note": "n",
            "evidence_sha256": None,
        }
    )


def promote_reviewed(
    settings: EvenflowSettings, model: str, version: str, note: str
) -> LedgerEntry:
    """Review then promote as ``ada`` at ``NOW``: the ledger's ordinary path."""
    champion.review(settings, model, version)
    return champion.promote(settings, model, version, "ada", note, now=NOW)


def run_cli(settings: EvenflowSettings, *args: str) -> Result:
    """``evenflow ARGS``, the real command line, pointed at this module's registry."""
    return CliRunner().invoke(
        app,
        list(args),
        env={
            "EVENFLOW_PROJECT_ROOT": str(settings.project_root),
            "EVENFLOW_TRACKING_URI": settings.tracking_uri,
        },
    )
