"""The noise level of residuals whose mean is an unknown smooth function of position.

After a fit, the residual of particle ``i`` is ``u_i = m(x_i) + σ ξ_i``: the force the family
misses, ``m``, plus the noise.  The mean square ``mean |u|²/d`` counts both as noise.  The
difference of two neighbours' residuals cancels ``m`` up to ``|∇m|·|x_i − x_j|``, so

    σ̂² = mean_i |u_i − u_{j(i)}|² / (2d),    j(i) the nearest neighbour of i,

estimates the noise alone where ``m`` is smooth on the particles' spacing (difference-based
variance estimation: Rice 1984 on a line; the first nearest neighbour in several dimensions,
Devroye, Ferrario, Györfi & Walk 2013).  Where ``m`` has kinks or folds its differences stay
large on a few particles: the mean is taken over the :data:`TRIMMED_SHARE` smallest ones, and
the factor that trimming (and any pairing) puts on pure noise is left to the caller's
calibration by simulation (:func:`iel.estimators.snapshot_temperature.calibrated_temperature`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

TRIMMED_SHARE = 0.9  # the largest tenth of the neighbour differences is left out


def neighbour_difference_variance(positions: np.ndarray, residuals: np.ndarray,
                                  rows: np.ndarray | None = None) -> float:  # fmt: skip
    """Trimmed ``mean_i |u_i − u_{j(i)}|² / (2d)`` over the smallest :data:`TRIMMED_SHARE`
    of the squared differences, ``j(i)`` the nearest other point to ``positions[i]``.

    ``rows``: average over these ``i`` only (their neighbours still sought among all points)
    — a random subset keeps the cost down in many dimensions, where a k-d tree query costs
    nearly ``O(n)`` per point (16 s for all 20 000 points in d = 30, ``O(n²)`` in all).

    Under pure noise ``u_i ~ N(0, σ² I)`` it is ``c·σ²`` with a fixed ``c < 1`` (the trimmed
    tail); calibrate it by simulating the noise through the same statistic."""
    positions, residuals = np.asarray(positions), np.asarray(residuals)
    if positions.ndim != 2 or residuals.shape != positions.shape:
        raise ValueError(
            f"positions and residuals must both be (n, d), got {positions.shape} and "
            f"{residuals.shape}"
        )
    if len(positions) < 2:
        raise ValueError(f"need at least 2 points for a neighbour difference, got {len(positions)}")
    own = np.arange(len(positions)) if rows is None else np.asarray(rows)
    _, index = cKDTree(positions).query(positions[own], k=2)
    # with duplicated positions the query may list the point's twin first: take the other one
    neighbour = np.where(index[:, 0] == own, index[:, 1], index[:, 0])
    squares = np.sum((residuals[own] - residuals[neighbour]) ** 2, axis=1)
    kept = np.sort(squares)[: max(1, int(np.ceil(TRIMMED_SHARE * len(squares))))]
    return float(np.mean(kept) / (2 * positions.shape[1]))
