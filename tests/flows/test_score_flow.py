"""The scoring flow end to end: a real champion (trained once per module) scores a batch."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from evenflow.assess.mitigation import ThresholdPolicy
from evenflow.cli.main import app
from evenflow.config.score import ScoreParams
from evenflow.config.settings import EvenflowSettings
from evenflow.data import batch_io
from evenflow.errors import DataError
from evenflow.io import file_md5
from evenflow.records import ModelVersionRef
from evenflow.usecases import score as scoring
from evenflow.usecases.score import ScoringResult
from flows.score import score_batch
from tests.flows.conftest import trained_champion

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Champion:
    root: Path
    version: ModelVersionRef
    client: MlflowClient
    policy: ThresholdPolicy


@pytest.fixture(scope="module")
def champion(
    tmp_path_factory: pytest.TempPathFactory, adult_sample_path: Path
) -> Iterator[Champion]:
    """Train once (threshold mitigation on sex, so the policy is visible) and make it champion."""
    with trained_champion(
        tmp_path_factory.mktemp("scoring"),
        adult_sample_path,
        mitigation__method="threshold",
        mitigation__sensitive_column="sex",
    ) as trained:
        policy_file = trained.client.download_artifacts(
            trained.version.run_id, "reports/threshold_policy.json", str(trained.root / "dl")
        )
        policy = ThresholdPolicy.from_json(Path(policy_file).read_text(encoding="utf-8"))
        yield Champion(trained.root, trained.version, trained.client, policy)


def _batch(adult_sample_path: Path, out: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """The sample as a scoring batch: no label, an id column, three rows that break the contract."""
    frame = pd.read_csv(adult_sample_path).drop(columns=["income", "split", *drop])
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(frame))])
    if "age" in frame.columns:
        frame.loc[3, "age"] = 420
    frame.loc[5, "workclass"] = "Space-force"
    frame.loc[8, "sex"] = None
    frame.to_csv(out, index=False)
    return out


def test_score_writes_predictions_with_lineage_and_rejects_with_rules(
    champion: Champion, adult_sample_path: Path, tmp_path: Path
) -> None:
    data = _batch(adult_sample_path, tmp_path / "batch.csv")
    before = data.read_bytes()
    out = tmp_path / "out" / "scores.parquet"

    params = ScoreParams(data=data, out=out, name="adult", keep_columns=("customer_id",))
    result = score_batch(params)

    assert data.read_bytes() == before
    md5 = file_md5(data)
    totals = result.totals
    assert (totals.n_input, totals.n_scored, totals.n_rejected) == (3000, 2997, 3)
    rejects = pd.read_parquet(result.rejects_path)
    assert list(rejects["input_row"]) == [3, 5, 8]
    assert list(rejects["customer_id"]) == ["c00003", "c00005", "c00008"]
    assert rejects["failed_rules"].tolist() == [
        "expect_column_values_to_be_between[age]: 420 not in [17.0, 90.0]",
        "expect_column_values_to_be_in_set[workclass]: 'Space-force' not in the set",
        "expect_column_values_to_not_be_null[sex]: missing",
    ]
    scored = pd.read_parquet(out)
    assert len(scored) == 2997 and not scored["input_row"].isin([3, 5, 8]).any()
    version = champion.version
    lineage = {
        "model_name": "adult",
        "model_version": version.version,
        "model_alias": "champion",
        "model_run_id": version.run_id,
        "input_md5": md5,
    }
    for column, value in lineage.items():
        assert (scored[column] == value).all(), column
    metadata = json.loads(pq.read_schema(out).metadata[b"evenflow.scoring"])
    assert {k: metadata[k] for k in lineage} == lineage
    # The registered pyfunc applied the model's per-group thresholds (seeded as in serving).
    expected = champion.policy.decide(scored["score"].to_numpy(), scored["sex"], seed=0)
    assert (scored["prediction"].to_numpy() == expected).all()
    assert result.threshold.startswith("per-group thresholds on 'sex'")
    assert scored["score"].between(0, 1).all()

    sidecar = json.loads((tmp_path / "out" / "scores.parquet.json").read_text())
    assert sidecar["counts"] == {"input_rows": 3000, "scored_rows": 2997, "rejected_rows": 3}
    assert sidecar["model"]["version"] == version.version and sidecar["input"]["md5"] == md5
    assert sidecar["outputs"]["predictions"]["md5"] == file_md5(out)
    assert sidecar["rejected_by_rule"]["expect_column_values_to_not_be_null[sex]"] == 1
    assert any("income" in line for line in sidecar["not_checked_per_row"])
    assert not list(out.parent.glob(".*.tmp")), "a temp file was left behind"

    client = champion.client
    experiment = client.get_experiment_by_name("adult-scoring")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == sidecar["mlflow_run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["scored_rows"] == 2997 and run.data.metrics["rejected_rows"] == 3
    tags = run.data.tags
    assert tags["evenflow.data_md5"] == md5
    assert tags["evenflow.model_version"] == version.version
    assert tags["evenflow.model_run_id"] == version.run_id
    assert tags["evenflow.flow_run_id"] == sidecar["flow_run_id"]
    # The tracking server gets the rejects' counts and row numbers, never their values.
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "scoring")}
    assert artifacts == {"scoring/scores.parquet.json", "scoring/rejects_summary.json"}
    summary = client.download_artifacts(
        run.info.run_id, "scoring/rejects_summary.json", str(tmp_path / "dl")
    )
    assert json.loads(Path(summary).read_text()) == {
        "rejected_rows": 3,
        "by_rule": sidecar["rejected_by_rule"],
        "input_rows": [3, 5, 8],
    }


def test_cli_scores_to_csv_and_names_what_makes_a_batch_unusable(
    champion: Champion, adult_sample_path: Path, tmp_path: Path
) -> None:
    cli = CliRunner()
    data = _batch(adult_sample_path, tmp_path / "batch.csv")
    out = tmp_path / "scores.csv"

    done = cli.invoke(
        app,
        [
            "score",
            "--data",
            str(data),
            "--out",
            str(out),
            "--name",
            "adult",
            "--chunk-rows",
            "1000",
        ],
    )

    assert done.exit_code == 0, done.output
    assert "scored 2,997 of 3,000 rows" in done.output
    scored = pd.read_csv(out)
    assert len(scored) == 2997 and (scored["model_alias"] == "champion").all()
    rejected = pd.read_csv(tmp_path / "scores.rejects.csv")
    assert len(rejected) == 3
    # Without --keep-columns, an input column the model does not use is left out of both.
    assert "customer_id" not in scored.columns and "customer_id" not in rejected.columns
    assert json.loads((tmp_path / "scores.csv.json").read_text())["counts"]["scored_rows"] == 2997

    no_hours = _batch(adult_sample_path, tmp_path / "no_hours.csv", drop=("hours-per-week",))
    missing = cli.invoke(
        app,
        ["score", "--data", str(no_hours), "--out", str(tmp_path / "x.parquet"), "--name", "adult"],
    )
    assert missing.exit_code == 2
    assert "no_hours.csv: missing feature column(s) ['hours-per-week']" in missing.output
    assert not (tmp_path / "x.parquet").exists()
    runs = champion.client.search_runs(
        [champion.client.get_experiment_by_name("adult-scoring").experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    assert runs[0].info.status == "FAILED"

    no_alias = cli.invoke(
        app,
        ["score", "--data", str(data), "--out", str(tmp_path / "y.csv"), "--model", "adult@gold"],
    )
    assert no_alias.exit_code == 2
    assert "model 'adult' has no version with alias 'gold'" in no_alias.output


# Rows breaking the contract, in several chunks of 1,009 rows (two on a chunk boundary).
_BROKEN_AGE = [3, 1_008, 1_009, 4_500]
_BROKEN = sorted([*_BROKEN_AGE, 2_017, 5_555, 6_000, 7_001, 8_999])


def _long_batch(adult_sample_path: Path, out: Path) -> Path:
    """Three copies of the sample (9,000 rows): rejects in many chunks, the label known only
    from row 5,000 on, an id column with one word far down, a note column empty at first."""
    frame = pd.concat([pd.read_csv(adult_sample_path).drop(columns=["split"])] * 3)
    frame = frame.reset_index(drop=True).astype({"age": object})
    frame.insert(0, "ref", pd.Series(range(len(frame)), dtype=object))
    frame.loc[7_000, "ref"] = "n/a"
    frame["note"] = [None] * 2_500 + ["checked"] * (len(frame) - 2_500)
    frame.loc[:4_999, "income"] = None
    frame.loc[_BROKEN_AGE, "age"] = 420
    frame.loc[6_000, "age"] = "unknown"
    frame.loc[[2_017, 8_999], "workclass"] = "Space-force"
    frame.loc[5_555, "sex"] = None
    frame.loc[7_001, "income"] = "maybe"
    if out.suffix == ".parquet":
        pd.read_csv(_to_csv(frame, out.with_suffix(".csv")), low_memory=False).to_parquet(
            out, row_group_size=700
        )
        return out
    return _to_csv(frame, out)


def _to_csv(frame: pd.DataFrame, out: Path) -> Path:
    frame.to_csv(out, index=False)
    return out


def _score(data: Path, out: Path, chunk_rows: int) -> ScoringResult:
    settings = EvenflowSettings()
    params = ScoreParams(data=data, out=out, name="adult", chunk_rows=chunk_rows)
    model = scoring.resolve_model(settings, params)
    return scoring.score_file(settings, params, model, scoring_run_id="r", flow_run_id="f")


def _text(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


_SAME_IN_BOTH = (
    "counts",
    "rejected_by_rule",
    "not_checked_per_row",
    "warnings",
    "threshold",
    "positive_rate",
    "mean_score",
)


@pytest.mark.parametrize(
    ("data_name", "out_name"),
    [
        ("batch.csv", "scores.parquet"),
        ("batch.csv", "scores.csv"),
        ("batch.csv", "scores.csv.gz"),
        ("batch.parquet", "scores.parquet"),
    ],
)
def test_scoring_in_chunks_gives_the_whole_batch_results(
    champion: Champion, adult_sample_path: Path, tmp_path: Path, data_name: str, out_name: str
) -> None:
    data = _long_batch(adult_sample_path, tmp_path / data_name)

    whole = _score(data, tmp_path / "whole" / out_name, chunk_rows=100_000)
    chunked = _score(data, tmp_path / "chunked" / out_name, chunk_rows=1_009)

    for output in (lambda r: r.out_path, lambda r: r.rejects_path):
        pd.testing.assert_frame_equal(
            _read(output(chunked)), _read(output(whole)), check_exact=True
        )
    if not out_name.endswith(".parquet"):  # CSV rows carry no layout: the very same text
        assert _text(chunked.out_path) == _text(whole.out_path)
    first, second = (json.loads(r.summary_path.read_text()) for r in (whole, chunked))
    assert {k: second[k] for k in _SAME_IN_BOTH} == {k: first[k] for k in _SAME_IN_BOTH}
    assert second["counts"] == {"input_rows": 9_000, "scored_rows": 8_991, "rejected_rows": 9}
    rejects = _read(chunked.rejects_path)
    assert list(rejects["input_row"]) == _BROKEN
    assert not any("label column is empty" in line for line in second["not_checked_per_row"])
    scored = _read(chunked.out_path)
    assert len(scored) == 8_991 and not scored["input_row"].isin(_BROKEN).any()
    # The policy's randomised decisions are those of one call on all scored rows, and
    # restarting the draws at each chunk would have changed some of them.
    scores, groups = scored["score"].to_numpy(), scored["sex"].to_numpy()
    decided = champion.policy.decide(scores, groups, seed=0)
    assert (scored["prediction"].to_numpy() == decided).all()
    restarted = np.concatenate(
        [
            champion.policy.decide(scores[rows], groups[rows], seed=0)
            for rows in np.array_split(np.arange(len(scores)), 9)
        ]
    )
    assert (restarted != decided).any()


def _fail_on_third_write(write: Callable[..., None]) -> Callable[..., None]:
    calls = []

    def failing(self: object, table: pd.DataFrame) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("No space left on device")
        write(self, table)

    return failing


def test_a_failure_in_any_chunk_leaves_no_output_behind(
    champion: Champion, adult_sample_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _long_batch(adult_sample_path, tmp_path / "batch.csv")
    out = tmp_path / "out" / "scores.parquet"
    with monkeypatch.context() as patched:
        patched.setattr(
            batch_io._ParquetFile, "write", _fail_on_third_write(batch_io._ParquetFile.write)
        )
        with pytest.raises(OSError, match="No space left"):
            _score(data, out, chunk_rows=1_009)
    assert list(out.parent.iterdir()) == []

    # Judged on the whole batch, once every chunk was written to temp files: nothing stays.
    wrong = pd.read_csv(data).assign(sex=lambda f: (f["sex"] == "Male").astype(int))
    with pytest.raises(DataError, match="column 'sex' holds no text"):
        _score(_to_csv(wrong, tmp_path / "wrong.csv"), out, chunk_rows=1_009)
    assert list(out.parent.iterdir()) == []

    # No row passes: the rejects say why, no predictions file is written.
    old = pd.read_csv(data).assign(age=99)
    with pytest.raises(DataError, match="none of its 9000 rows meets the contract"):
        _score(_to_csv(old, tmp_path / "old.csv"), out, chunk_rows=1_009)
    assert [p.name for p in out.parent.iterdir()] == ["scores.rejects.parquet"]
    assert len(pd.read_parquet(out.parent / "scores.rejects.parquet")) == 9_000
