"""Cross-fitting: every row of a small batch gets an out-of-fold prediction from the same trainer.

A 1,000-row table held out at 20% leaves ~200 test rows, too few to say anything about a group of
fifty. Cross-fitting trains one model per fold (fold k is its test, fold k+1 its early-stopping
valid, the rest its training rows), so every row is scored by a model that never saw it and the
evaluation uses all of them. The registered model is then refit on every row with the number of
rounds the folds chose (their median best round): the figures describe the procedure that built
it, which is the standard reading of cross-validated estimates.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from distributed import Client

from evenflow import layout
from evenflow.config.run import ModelParams
from evenflow.io import write_parquet_atomic
from evenflow.records import ShardManifest, TrainingResult
from evenflow.training.engine import train_model
from evenflow.training.partitions import SampleWeights

logger = logging.getLogger(__name__)

FOLD = "fold"

WeightsFor = Callable[[ShardManifest], SampleWeights | None]


def refit_rounds(best_iterations: Sequence[int]) -> int:
    """Rounds of the final model: the median of the folds' best rounds (iteration + 1)."""
    return max(1, round(statistics.median(i + 1 for i in best_iterations)))


def train_cross_fitted(
    client: Client,
    manifest: ShardManifest,
    model: ModelParams,
    threads_per_worker: int,
    out_dir: Path,
    *,
    weights_for: WeightsFor,
) -> TrainingResult:
    """Train one model per fold, gather out-of-fold predictions, refit on all rows.

    Returns the refit model's record whose ``predictions_path`` holds every row's out-of-fold
    score (with its fold) and ``valid_predictions_path`` every row's score from the fold model
    that early-stopped on it (used to fit per-group thresholds). The valid predictions are
    written last: their presence marks the stage done.
    """
    folds = [
        _train_fold(
            client,
            manifest,
            model,
            threads_per_worker=threads_per_worker,
            out_dir=out_dir,
            fold=k,
            weights_for=weights_for,
        )
        for k in range(manifest.plan.folds)
    ]
    best = tuple(result.best_iteration for result in folds)
    rounds = refit_rounds(best)
    logger.info("folds stopped at rounds %s: refitting on every row for %d rounds", best, rounds)
    refit = manifest.refit_manifest()
    final = train_model(
        client,
        refit,
        model.model_copy(
            update={"num_boost_round": rounds, "early_stopping_rounds": min(rounds, 10_000)}
        ),
        threads_per_worker,
        out_dir / "refit",
        weights=weights_for(refit),
        keep_all_rounds=True,
    )
    predictions = _gather(folds, "predictions_path", manifest.row_id, tag_fold=True)
    valid = _gather(folds, "valid_predictions_path", manifest.row_id, tag_fold=False)
    return final.model_copy(
        update={
            "predictions_path": write_parquet_atomic(
                predictions, out_dir / layout.PREDICTIONS_FILE
            ),
            "valid_predictions_path": write_parquet_atomic(
                valid, out_dir / layout.VALID_PREDICTIONS_FILE
            ),
            "valid_auc": statistics.fmean(result.valid_auc for result in folds),
            "train_seconds": final.train_seconds + sum(r.train_seconds for r in folds),
            "resumed_from_round": final.resumed_from_round
            + sum(r.resumed_from_round for r in folds),
            "fold_best_iterations": best,
        }
    )


def _train_fold(
    client: Client,
    manifest: ShardManifest,
    model: ModelParams,
    *,
    threads_per_worker: int,
    out_dir: Path,
    fold: int,
    weights_for: WeightsFor,
) -> TrainingResult:
    fold_manifest = manifest.fold_manifest(fold)
    logger.info(
        "fold %d of %d: %d training rows, %d valid, %d scored out of fold",
        fold + 1,
        manifest.plan.folds,
        fold_manifest.split_rows("train"),
        fold_manifest.split_rows("valid"),
        fold_manifest.split_rows("test"),
    )
    return train_model(
        client,
        fold_manifest,
        model,
        threads_per_worker,
        out_dir / f"fold-{fold}",
        weights=weights_for(fold_manifest),
    )


def _gather(
    folds: Sequence[TrainingResult], field: str, row_id: str, *, tag_fold: bool
) -> pd.DataFrame:
    """The fold models' predictions in row order; out-of-fold ones tagged with their fold."""
    frames = [
        pd.read_parquet(getattr(result, field)).assign(**({FOLD: fold} if tag_fold else {}))
        for fold, result in enumerate(folds)
    ]
    merged = pd.concat(frames, ignore_index=True)
    return merged.sort_values(row_id, kind="stable").reset_index(drop=True)
