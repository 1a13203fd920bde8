"""Compressed transitions: many one-step transitions summarised on a fine grid.

Transitions are grouped in cells of a grid and each cell is one representative at the
``w h``-weighted mean of its states, carrying ``Σ w Δx`` and ``Σ w h``.  Since the
representative is the weighted mean, the first-order error of replacing ``∇φ(x_k)`` by
``∇φ(x̄)`` cancels in the Gram matrix ``Σ w h ∇φ∇φᵀ``; what remains is of order
(cell / feature width)².  Searches over free parameters (variable projection, the frequency
scan) run on these when the state has at most three dimensions.
"""

from __future__ import annotations

import numpy as np

GRID_CELLS = {1: 4096, 2: 60, 3: 24}  # cells per axis of the compression grid, by dimension
COMPRESS_ABOVE = 20_000  # transitions above which the search runs on compressed transitions


def compress_transitions(x0, dx, h, weights=None):
    """``(x̄, ΣwΔx, Σwh)`` per occupied cell of a grid with :data:`GRID_CELLS` cells per
    axis (module docstring); transitions unchanged for d > 3 or few transitions."""
    x0, dx, h = (np.asarray(a, float) for a in (x0, dx, h))
    w = np.ones(len(h)) if weights is None else np.asarray(weights, float)
    d = x0.shape[1]
    if d not in GRID_CELLS or len(h) <= COMPRESS_ABOVE:
        return x0, w[:, None] * dx, w * h
    low, high = x0.min(axis=0), x0.max(axis=0)
    cell = np.where(high > low, (high - low) / GRID_CELLS[d], 1.0)
    index = np.minimum(((x0 - low) / cell).astype(np.int64), GRID_CELLS[d] - 1)
    _, group = np.unique(index, axis=0, return_inverse=True)
    group = group.reshape(-1)
    n = int(group.max()) + 1
    wh = w * h
    sum_wh = np.bincount(group, wh, n)
    mean_x = np.stack([np.bincount(group, wh * x0[:, j], n) for j in range(d)], axis=1)
    sum_dx = np.stack([np.bincount(group, w * dx[:, j], n) for j in range(d)], axis=1)
    keep = sum_wh > 0
    return mean_x[keep] / sum_wh[keep, None], sum_dx[keep], sum_wh[keep]
