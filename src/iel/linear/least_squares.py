"""Least squares with scaled columns."""

from __future__ import annotations

import numpy as np


def column_scaled_lstsq(a: np.ndarray, b: np.ndarray, rcond: float = 1e-13) -> np.ndarray:
    """Least squares ``min ‖a x − b‖`` with every column of ``a`` scaled to unit norm first (so
    that features of very different sizes are resolved alike); all-zero columns get ``x = 0``.
    ``b`` may hold several right-hand sides as columns (one factorisation for all)."""
    norms = np.linalg.norm(a, axis=0)
    scale = np.where(norms > 1e-12 * norms.max(), 1.0 / np.maximum(norms, 1e-300), 0.0)
    solution = np.linalg.lstsq(a * scale, b, rcond=rcond)[0]
    return solution * (scale if np.ndim(b) == 1 else scale[:, None])
