"""One line when a stage starts and one when it ends, with its key figure and duration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger


class Stage:
    """Collects the closing line of a stage."""

    def __init__(self) -> None:
        self.summary = ""


@contextmanager
def stage(name: str, opening: str) -> Iterator[Stage]:
    """Log ``▶ name: opening``, run the block, then ``✔ name: summary (seconds)`` or ``✖``."""
    logger = get_run_logger()
    logger.info("▶ %s: %s", name, opening)
    started = time.perf_counter()
    record = Stage()
    try:
        yield record
    except Exception as exc:
        logger.error(
            "✖ %s failed after %.1fs: %s",
            name,
            time.perf_counter() - started,
            str(exc).splitlines()[0],
        )
        raise
    logger.info("✔ %s: %s (%.1fs)", name, record.summary, time.perf_counter() - started)
