"""Library loggers held at a level for a block: a library's INFO lines are its internals, not news.

Great Expectations, DVC and Dask each log routine steps (a checkpoint run, "Initialized DVC
repository.", a worker killed at a normal close) that a person at the console does not need;
their warnings and errors still pass. The levels are restored afterwards, whatever happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_at(level: int, *names: str) -> Iterator[None]:
    """Set each named logger to ``level`` for the block, then give each its own level back."""
    loggers = [logging.getLogger(name) for name in names]
    previous = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(level)
    try:
        yield
    finally:
        for each, old in zip(loggers, previous, strict=True):
            each.setLevel(old)


def family(root: str) -> tuple[str, ...]:
    """``root`` and every logger already created under it (``distributed``, ``distributed.nanny``…).

    A child with a level of its own ignores its parent's, so holding a library quiet means holding
    each of its loggers.
    """
    known = logging.root.manager.loggerDict
    return (root, *sorted(name for name in known if name.startswith(f"{root}.")))
