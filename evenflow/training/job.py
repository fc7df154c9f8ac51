"""One training request as a value: the trainers take it whole instead of seven loose arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distributed import Client

from evenflow.config.run import ModelParams
from evenflow.records import ShardManifest
from evenflow.training.partitions import SampleWeights


@dataclass(frozen=True)
class TrainingJob:
    """What a trainer needs: the cluster, the shards, the model settings and where to write.

    With ``keep_all_rounds`` every round is kept (a refit whose rounds were chosen elsewhere),
    otherwise the model stops at the best round on valid.
    """

    client: Client
    manifest: ShardManifest
    model: ModelParams
    threads_per_worker: int
    out_dir: Path
    weights: SampleWeights | None = None
    keep_all_rounds: bool = False
