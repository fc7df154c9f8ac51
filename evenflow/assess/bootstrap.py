"""Seeded Poisson bootstrap: row weights drawn fast, in blocks, and percentile intervals.

Shared by the fairness report and the headline metrics, so both intervals mean the same thing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np

from evenflow.assess.arrays import FloatArray, UInt8Array


def _poisson_table(bits: int = 16) -> UInt8Array:
    """Poisson(1) by inverse CDF on a ``bits``-bit grid.

    A uniform draw ``u`` has weight ``table[u]``, the number of CDF points (rounded to the grid)
    at or below ``u``.

    On 16 bits each probability is within 2**-17 of Poisson(1)'s; the tail beyond the grid
    (mass ~1e-5) is folded into the largest weight.
    """
    size = 1 << bits
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(16)])
    edges = np.round(cdf * size)
    return np.searchsorted(edges, np.arange(size), side="right").astype(np.uint8)


_POISSON_TABLE = _poisson_table()
_UINT64_MAX = np.iinfo(np.uint64).max


def block_sizes(total: int, block: int) -> Iterator[int]:
    """Sizes of consecutive blocks of at most ``block`` that add up to ``total``."""
    for start in range(0, total, block):
        yield min(block, total - start)


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> UInt8Array:
    """Poisson(1) weights by a 16-bit inverse-CDF table (many times faster than ``rng.poisson``).

    Each 64-bit draw gives four weights, one table lookup each.
    """
    size = shape[0] * shape[1]
    draws = rng.integers(0, _UINT64_MAX, size=-(-size // 4), dtype=np.uint64, endpoint=True)
    return _POISSON_TABLE[draws.view(np.uint16)[:size].reshape(shape)]


def percentile_interval(replicates: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """Percentile interval over the replicate axis, ignoring replicates where a value is undefined."""
    tail = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high
