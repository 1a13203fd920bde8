"""Standard errors and confidence intervals of a closed-form (linear) one-step fit.

For Langevin increments ``Δx_k = −h_k G_k θ + √(2T h_k) ξ_k`` (``ξ_k ~ N(0, I_d)``), the
normal equations ``A θ̂ = b`` with ``A = Σ h GᵀG`` and ``b = −Σ GᵀΔx`` give

    ``θ̂ − θ = −A⁻¹ Σ_k √(2T h_k) G_kᵀ ξ_k``,   so   ``Cov θ̂ = 2T A⁻¹``

exactly (conditionally on the visited states: a linear-Gaussian regression).  The noise level is
estimated from the residual, ``T̂ = Σ‖Δx + hGθ̂‖²/h / (2ν)`` with ``ν = Σ d − rank(A)`` degrees
of freedom, and ``2νT̂/(2T) ~ χ²(ν)`` independently of ``θ̂``; so

* ``(θ̂_i − θ_i)/se_i ~ Student-t(ν)`` with ``se_i = √(2T̂ [A⁻¹]_ii)``: the intervals use
  Student-t quantiles with ``ν`` degrees of freedom (normal for large ``ν``);
* ``T ∈ [ν T̂ / χ²_{1−α/2}(ν),  ν T̂ / χ²_{α/2}(ν)]`` (the scaled χ² interval).

Rank deficiency: ``A`` is Jacobi-scaled and inverted on its range (pseudo-inverse, as
:func:`~iel.linear.normal_equations.solve_normal_equations`); a coefficient with a component in
the null space is not identified by the data and gets a NaN standard error and interval.  The
energy's additive constant is not a coefficient (the libraries hold no constant feature).

What breaks these intervals (and is said in the fit's notes): measurement noise on the states
(residuals anticorrelated at lag one; Euler differences then mix noise into the drift), weights
other than counts, a ridge, long steps (Euler bias is not in the interval), and selection (the
intervals of a selected sparse formula are conditional on its support).

All functions take batches: leading axes of ``gram`` (``(..., p, p)``) are independent fits,
so 200 repetitions or bootstrap resamples are one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class LinearIntervals:
    """Closed-form estimates and intervals, batched over leading axes.

    Attributes:
        theta: ``(..., p)`` least-squares coefficients (minimum norm on the range of ``A``).
        covariance: ``(..., p, p)`` ``2T̂ A⁺`` (NaN rows/columns for unidentified terms).
        stderr, low, high: ``(..., p)`` standard errors and the interval at ``level``.
        temperature, temperature_low, temperature_high: ``(...)`` ``T̂`` and its interval.
        dof: ``(...)`` residual degrees of freedom ``ν``.
        rank: ``(...)`` rank of ``A``.
    """

    theta: np.ndarray
    covariance: np.ndarray
    stderr: np.ndarray
    low: np.ndarray
    high: np.ndarray
    temperature: np.ndarray
    temperature_low: np.ndarray
    temperature_high: np.ndarray
    dof: np.ndarray
    rank: np.ndarray
    level: float = LEVEL


def pseudo_inverse(gram: np.ndarray, rcond: float = 1e-13) -> tuple[np.ndarray, np.ndarray]:
    """``(A⁺, identified)`` for a batch of symmetric PSD ``A`` (``(..., p, p)``), after Jacobi
    scaling; ``identified[..., i]`` is False when ``e_i`` has a component (above 1e-8, in the
    scaled coordinates) in the numerical null space, or feature ``i`` has no gradient."""
    gram = np.asarray(gram, dtype=float)
    diag = np.diagonal(gram, axis1=-2, axis2=-1)
    live = diag > 1e-300
    scale = np.where(live, 1.0 / np.sqrt(np.where(live, diag, 1.0)), 0.0)
    scaled = gram * scale[..., :, None] * scale[..., None, :]
    evals, evecs = np.linalg.eigh(scaled)
    top = np.max(evals, axis=-1, keepdims=True) if evals.shape[-1] else evals
    keep = evals > rcond * top
    inv = np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)
    pinv = np.einsum("...ik,...k,...jk->...ij", evecs, inv, evecs)
    null_weight = np.einsum("...ik,...k->...i", evecs**2, (~keep).astype(float))
    identified = live & (null_weight < 1e-8)
    return pinv * scale[..., :, None] * scale[..., None, :], identified


def linear_intervals(
    gram: np.ndarray,
    rhs: np.ndarray,
    sq_over_h: np.ndarray,
    n_rows: np.ndarray,
    *,
    level: float = LEVEL,
    rcond: float = 1e-13,
) -> LinearIntervals:
    """Coefficients, ``T̂`` and their ``level`` intervals from the normal-equation sums (fields
    of :class:`~iel.linear.normal_equations.NormalEquations`, each with the same leading
    batch axes).  See the module docstring for the distributions."""
    gram, rhs = np.asarray(gram, dtype=float), np.asarray(rhs, dtype=float)
    pinv, identified = pseudo_inverse(gram, rcond)
    theta = np.einsum("...ij,...j->...i", pinv, rhs)
    rank = _batched_rank(gram, rcond)
    quadratic = np.einsum("...i,...ij,...j->...", theta, gram, theta)
    residual = np.maximum(sq_over_h - 2.0 * np.sum(theta * rhs, -1) + quadratic, 0.0)
    dof = np.maximum(np.asarray(n_rows, dtype=float) - rank, 1.0)
    temperature = residual / (2.0 * dof)
    covariance = 2.0 * temperature[..., None, None] * pinv
    mask = identified[..., :, None] & identified[..., None, :]
    covariance = np.where(mask, covariance, np.nan)
    stderr = np.sqrt(np.diagonal(covariance, axis1=-2, axis2=-1))
    tail = (1.0 - level) / 2.0
    quantile = stats.t.ppf(1.0 - tail, dof)[..., None]
    t_low = dof * temperature / stats.chi2.ppf(1.0 - tail, dof)
    t_high = dof * temperature / stats.chi2.ppf(tail, dof)
    return LinearIntervals(
        theta, covariance, stderr, theta - quantile * stderr, theta + quantile * stderr,
        temperature, t_low, t_high, dof, np.asarray(rank), level,
    )  # fmt: skip


def _batched_rank(gram: np.ndarray, rcond: float) -> np.ndarray:
    diag = np.diagonal(gram, axis1=-2, axis2=-1)
    scale = np.where(diag > 1e-300, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
    evals = np.linalg.eigvalsh(gram * scale[..., :, None] * scale[..., None, :])
    top = np.max(evals, axis=-1, keepdims=True)
    return np.sum(evals > rcond * top, axis=-1)


def energy_std(features: np.ndarray, anchor: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Standard deviation of ``E(x) − E(x*)`` for ``E = θᵀφ``: ``√(uᵀ Cov u)`` with
    ``u = φ(x) − φ(x*)`` (``features``: ``(..., p)``, ``anchor``: ``(p,)``).  Fixing the
    additive gauge at the anchor ``x*`` (the model's minimum over the data) makes the band zero
    there and growing with the distance the data must be extrapolated.  Unidentified terms
    (NaN covariance) give NaN wherever their feature differs from the anchor's."""
    u = np.asarray(features, dtype=float) - np.asarray(anchor, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    bad = ~np.isfinite(np.diagonal(cov))
    clean = np.where(np.isfinite(cov), cov, 0.0)
    var = np.einsum("...i,ij,...j->...", u, clean, u)
    touches = np.any(bad & (np.abs(u) > 0), axis=-1)
    return np.where(touches, np.nan, np.sqrt(np.maximum(var, 0.0)))
