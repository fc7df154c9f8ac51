"""Great Expectations at run time: a throwaway context, a checkpoint, Data Docs copied out.

The copied Data Docs load their scripts, styles and fonts from copies evenflow ships, never
from a CDN (see :mod:`evenflow.contracts.data_docs`).

Each use builds a file-mode GX context in a temp folder, so nothing is shared between runs and
nothing happens at import time.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.checkpoint.actions import UpdateDataDocsAction
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from evenflow.contracts.data_docs import localise_site
from evenflow.io import atomic_dir
from evenflow.logs import held_at

logger = logging.getLogger(__name__)

# Numbers GX checks vectorised as they are (uint64 stays: it does not fit int64).
_WIDE = frozenset({"int64", "float64", "uint64"})


@contextmanager
def gx_context() -> Iterator[AbstractDataContext]:
    """A throwaway file-mode GX context (temp folder, no progress bars, GX's logs at WARNING)."""
    with (
        held_at(logging.WARNING, "great_expectations"),
        tempfile.TemporaryDirectory(prefix="evenflow-gx-") as root,
    ):
        context = gx.get_context(mode="file", project_root_dir=root)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        yield context


def add_checkpoint(
    context: AbstractDataContext, suite: gx.ExpectationSuite, dataset: str
) -> gx.Checkpoint:
    """A checkpoint validating one in-memory frame against ``suite`` and updating Data Docs."""
    batch = (
        context.data_sources.add_pandas(name="evenflow")
        .add_dataframe_asset(name=dataset)
        .add_batch_definition_whole_dataframe("whole frame")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=dataset, data=batch, suite=context.suites.add(suite))
    )
    checkpoint: gx.Checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=dataset,
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY"},
            actions=[UpdateDataDocsAction(name="data docs")],
        )
    )
    return checkpoint


def copy_data_docs(
    context: AbstractDataContext, identifier: ValidationResultIdentifier, target: Path
) -> Path | None:
    """Copy the local Data Docs site into ``target``, made to work offline; return the result's page.

    The site is localised in the temporary copy, so ``target`` never holds a page that
    reaches for a CDN.
    """
    (index,) = context.get_docs_sites_urls()
    (page,) = context.get_docs_sites_urls(resource_identifier=identifier)
    index_url, page_url = index["site_url"], page["site_url"]
    if index_url is None or page_url is None:
        logger.warning("GX built no Data Docs page for %s", identifier)
        return None
    site = _url_path(index_url).parent
    relative = _url_path(page_url).relative_to(site)
    with atomic_dir(target) as tmp:
        shutil.copytree(site, tmp, dirs_exist_ok=True)
        localise_site(tmp)
    return target / relative


def _url_path(url: str) -> Path:
    return Path(url2pathname(urlparse(url).path))


def gx_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy GX checks fast: narrow numbers widened to 64 bits, columns in one block per dtype.

    GX 1.24 checks a range value by value in Python unless the dtype is exactly int64 or float64
    (``column.dtype in [int, float]``); widening is exact and keeps every type check's answer
    (the inferred suites type numbers by family), and makes range checks vectorised. GX also
    filters the whole frame by a row mask once per expectation, and a frame read column by column
    (one block per column) is consolidated again on every such copy; consolidated once here, a
    1M-row chunk of 31 columns validates in about half the time.
    """
    widen: dict[str, str] = {}
    for column in frame.columns:
        dtype = frame[column].dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf" or dtype.name in _WIDE:
            continue
        widen[column] = "float64" if dtype.kind == "f" else "int64"
    return (frame.astype(widen) if widen else frame).copy()  # copy() consolidates the blocks


def result_config(item: ExpectationValidationResult) -> ExpectationConfiguration:
    """The expectation a result belongs to (GX attaches it to every result)."""
    config = item.expectation_config
    assert config is not None, "GX attaches the configuration to every validation result"
    return config
