"""Array types shared by the assessment modules, named once so every signature reads the same."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
UInt8Array = npt.NDArray[np.uint8]
"""Small counts and flags, one byte each: Poisson(1) bootstrap weights, 0/1 labels."""
ObjectArray = npt.NDArray[np.object_]
"""Group keys and cell statuses: Python strings held by numpy."""
