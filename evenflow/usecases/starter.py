"""Data to start from: the starter contract of a new dataset, synthetic data to try evenflow on.

``evenflow expectations init`` writes the contract a first run would infer, so the data team can
review it before that run; ``evenflow synth`` writes data with planted group effects, to try the
platform at scale.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evenflow.config.run import DatasetSpec
from evenflow.config.settings import EvenflowSettings
from evenflow.contracts import suite as contracts
from evenflow.data.planted_parquet import SynthManifest, write_planted_parquet
from evenflow.errors import EvenflowError
from evenflow.usecases.prepare import ensure_contract

logger = logging.getLogger(__name__)


def infer_contract(
    settings: EvenflowSettings, spec: DatasetSpec, *, force: bool = False
) -> tuple[Path, int]:
    """Infer the dataset's contract from its file, as a run would; return its path and size.

    An existing contract is replaced only with ``force``, and is kept if inference fails.

    Raises:
        EvenflowError: a contract exists and ``force`` is not set.
    """
    path = contracts.contract_path(settings, spec.name)
    kept = path.with_name(f"{path.name}.replaced")
    if path.exists():
        if not force:
            raise EvenflowError(f"{path} exists; pass --force to overwrite it")
        path.replace(kept)
    try:
        written, _ = ensure_contract(spec, settings)
    except BaseException:
        if kept.exists():
            kept.replace(path)
        raise
    kept.unlink(missing_ok=True)
    count = len(json.loads(written.read_text(encoding="utf-8"))["expectations"])
    logger.info("wrote %d expectations to %s", count, written)
    return written, count


def synthetic_data(
    rows: int, out: Path, *, seed: int, chunk_rows: int, features: int | None
) -> SynthManifest:
    """Adult-like data with planted group effects, written chunk by chunk as parquet parts."""
    return write_planted_parquet(rows, out, seed=seed, chunk_rows=chunk_rows, n_features=features)
