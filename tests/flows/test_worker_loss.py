"""Training survives a Dask worker killed mid-training: Prefect retries it and it resumes.

A real worker process is SIGKILLed by a test-only hook (``EVENFLOW_TEST_KILL_WORKER_AT``) on the
first attempt only; the retried attempt starts a fresh local cluster and resumes from the last
checkpoint. A data error, by contrast, is not retried.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from sklearn.metrics import roc_auc_score

from evenflow.config.run import RunParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data.features import feature_specs
from evenflow.data.sharding import write_shards
from evenflow.errors import ConfigError
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.checkpoints import CHECKPOINT_FILE
from evenflow.training.faults import KILL_WORKER_ENV
from evenflow.training.partitions import LABEL, SCORE
from tasks.modeling import TRAIN_RETRIES, train_model
from tests.conftest import sample_params

pytestmark = pytest.mark.slow

KILL_AT = 60
EVERY = 20


def _params(path: Path) -> RunParams:
    return sample_params(
        path,
        model__num_boost_round=150,
        model__early_stopping_rounds=150,
        model__learning_rate=0.1,
        model__checkpoint_every=EVERY,
    )


def _manifest(path: Path, params: RunParams, shard_dir: Path) -> ShardManifest:
    spec = params.dataset
    frame = pd.read_csv(path)
    return ShardManifest(
        dataset=spec.name,
        raw_md5="0" * 32,
        data_md5="1" * 32 + ".dir",
        shard_dir=shard_dir,
        shards=tuple(write_shards(frame, spec, params.split, params.shards, shard_dir)),
        features=feature_specs(frame, spec),
        target=spec.target,
        positive_label=spec.positive_label,
        sensitive=spec.sensitive,
    )


@flow(name="train-only")
def _train_only(
    manifest: ShardManifest, params: RunParams
) -> tuple[UUID, TrainingResult | BaseException]:
    """The training task alone; returns its task run id and its result or error."""
    state = train_model(manifest, params, EvenflowSettings(), return_state=True)
    assert state.state_details.task_run_id is not None
    return state.state_details.task_run_id, state.result(raise_on_failure=False)


def _run_count(task_run_id: UUID) -> int:
    with get_client(sync_client=True) as client:
        return client.read_task_run(task_run_id).run_count


def _state_name(task_run_id: UUID) -> str | None:
    with get_client(sync_client=True) as client:
        state = client.read_task_run(task_run_id).state
    return None if state is None else state.name


def _test_auc(result: TrainingResult) -> float:
    predictions = pd.read_parquet(result.predictions_path)
    return float(roc_auc_score(predictions[LABEL], predictions[SCORE]))


def test_killed_worker_is_retried_and_training_resumes_from_the_checkpoint(
    project: Path, adult_sample_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = _params(adult_sample_path)
    manifest = _manifest(adult_sample_path, params, tmp_path / "shards")
    _, baseline = _train_only(manifest, params)
    assert isinstance(baseline, TrainingResult), baseline
    assert baseline.resumed_from_round == 0
    # Same data and params under another data hash: a new stage folder, not a cache hit.
    interrupted = manifest.model_copy(update={"data_md5": "2" * 32 + ".dir"})
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(KILL_WORKER_ENV, f"{KILL_AT}:{marker}")

    task_run_id, result = _train_only(interrupted, params)

    assert isinstance(result, TrainingResult), result
    assert marker.exists(), "no worker was killed"
    assert _run_count(task_run_id) == 2
    expected = KILL_AT // EVERY * EVERY
    assert result.resumed_from_round == expected
    assert not (result.model_path.parent / CHECKPOINT_FILE).exists()
    scores = pd.read_parquet(result.predictions_path)[SCORE]
    assert scores.between(0, 1, inclusive="neither").all()
    assert len(scores) == manifest.split_rows("test")
    assert abs(_test_auc(result) - _test_auc(baseline)) < 0.01
    assert 0.85 < _test_auc(result) <= 1.0

    # The retried attempt's result is cached like any other: a re-run reuses it.
    rerun_id, rerun = _train_only(interrupted, params)
    assert _state_name(rerun_id) == "Cached"
    assert rerun == result


def test_a_data_error_in_training_is_not_retried(
    project: Path, adult_sample_path: Path, tmp_path: Path
) -> None:
    params = _params(adult_sample_path)
    manifest = _manifest(adult_sample_path, params, tmp_path / "shards")
    broken = manifest.model_copy(update={"target": "age", "positive_label": "yes"})

    task_run_id, error = _train_only(broken, params)

    assert isinstance(error, ConfigError)
    assert "is not a number but target 'age' is numeric" in str(error)
    assert TRAIN_RETRIES > 0
    assert _run_count(task_run_id) == 1
