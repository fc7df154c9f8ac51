"""Cross-fitting on a real local Dask cluster: out-of-fold scores for every row, then a refit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from distributed import Client
from sklearn.metrics import roc_auc_score

from evenflow.assess import baselines
from evenflow.config.run import (
    ClusterParams,
    DatasetSpec,
    EvalParams,
    ModelParams,
    ShardParams,
    SplitParams,
)
from evenflow.data.sharding import plan_split, write_shard_chunks
from evenflow.records import ShardManifest
from evenflow.serving import load_booster
from evenflow.training import crossfit
from evenflow.training.cluster import dask_client
from evenflow.usecases.prepare import describe_shards
from tests.unit.test_splits import SPEC, planted, with_copies

MODEL = ModelParams(device="cpu", num_boost_round=200, early_stopping_rounds=20, max_depth=3)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with dask_client(None, ClusterParams(n_workers=2, threads_per_worker=1)) as shared:
        yield shared


def cross_fitted(frame: pd.DataFrame, spec: DatasetSpec, out: Path) -> ShardManifest:
    plan = plan_split(spec, EvalParams(), len(frame))
    written = write_shard_chunks(
        [frame], spec, SplitParams(), ShardParams(n_shards=2), out, plan=plan
    )
    return describe_shards(
        written.features,
        spec,
        raw_md5="0" * 32,
        data_md5="0" * 32 + ".dir",
        shard_dir=out,
        shards=list(written.shards),
        plan=plan,
        split_report=written.report,
    )


def test_every_row_gets_an_out_of_fold_score_and_the_refit_uses_the_folds_rounds(
    tmp_path: Path, client: Client
) -> None:
    frame = with_copies(planted(750, seed=3)).reset_index(drop=True)  # 1,500 rows
    manifest = cross_fitted(frame, SPEC, tmp_path / "shards")
    result = crossfit.train_cross_fitted(
        client, manifest, MODEL, 1, tmp_path / "train", weights_for=lambda _: None
    )
    oof = pd.read_parquet(result.predictions_path)
    assert sorted(oof[manifest.row_id]) == list(range(len(frame)))
    assert set(oof[crossfit.FOLD]) == set(range(5))
    # Each row's fold is the fold its shard belongs to: its model never saw it.
    shard_folds = pd.concat(
        pd.read_parquet(manifest.shard_dir / s.path, columns=[manifest.row_id]).assign(fold=s.fold)
        for s in manifest.shards
    ).set_index(manifest.row_id)["fold"]
    assert (
        oof.set_index(manifest.row_id)[crossfit.FOLD] == shard_folds.loc[oof[manifest.row_id]]
    ).all()
    assert len(result.fold_best_iterations) == 5
    assert result.best_iteration + 1 == crossfit.refit_rounds(result.fold_best_iterations)
    refit = load_booster(str(result.model_path), "xgboost")
    assert refit.num_boosted_rounds() == result.best_iteration + 1
    # Out-of-fold AUC is close to what a plain xgboost.train reaches on the same folds.
    auc = roc_auc_score(oof["label"], oof["score"])
    plain = np.zeros(len(frame))
    folds = shard_folds.loc[np.arange(len(frame))].to_numpy()
    inputs = frame[["x1", "x2", "x3", "group"]].assign(group=frame["group"].astype("category"))
    for fold in range(5):
        train = folds != fold
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 3, "eta": 0.05, "seed": 0},
            xgb.DMatrix(inputs[train], frame["y"][train], enable_categorical=True),
            num_boost_round=result.best_iteration + 1,
        )
        plain[~train] = booster.predict(xgb.DMatrix(inputs[~train], enable_categorical=True))
    plain_auc = roc_auc_score(frame["y"], plain)
    assert auc > plain_auc - 0.02, (auc, plain_auc)


def test_baselines_are_fitted_on_each_folds_training_rows(tmp_path: Path) -> None:
    frame = planted(1500, seed=4)
    manifest = cross_fitted(frame, SPEC, tmp_path / "shards")
    scores = baselines.baseline_predictions(manifest, max_rows=100_000)
    assert sorted(scores[manifest.row_id]) == list(range(len(frame)))
    # The prior of each fold is the base rate of that fold model's training rows.
    fold0 = manifest.fold_manifest(0)
    train_rows = pd.concat(pd.read_parquet(p) for p in fold0.split_paths("train"))
    test_ids = pd.concat(pd.read_parquet(p) for p in fold0.split_paths("test"))[manifest.row_id]
    prior = scores.set_index(manifest.row_id).loc[test_ids, "score_prior"]
    assert np.allclose(prior, train_rows["y"].mean())
    logistic_auc = roc_auc_score(scores["label"], scores["score_logistic"])
    assert logistic_auc > 0.75  # the planted signal is linear in the logit


def test_lightgbm_is_cross_fitted_and_refit_the_same_way(tmp_path: Path, client: Client) -> None:
    frame = planted(1500, seed=5)
    manifest = cross_fitted(frame, SPEC, tmp_path / "shards")
    model = MODEL.model_copy(update={"trainer": "lightgbm", "num_boost_round": 60})
    result = crossfit.train_cross_fitted(
        client, manifest, model, 1, tmp_path / "train", weights_for=lambda _: None
    )
    oof = pd.read_parquet(result.predictions_path)
    assert sorted(oof[manifest.row_id]) == list(range(len(frame)))
    assert result.trainer == "lightgbm"
    refit = load_booster(str(result.model_path), "lightgbm")
    assert refit.current_iteration() == result.best_iteration + 1
    assert result.best_iteration + 1 == crossfit.refit_rounds(result.fold_best_iterations)
    assert roc_auc_score(oof["label"], oof["score"]) > 0.75
