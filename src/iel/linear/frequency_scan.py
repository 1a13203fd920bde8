"""Frequency scan: fit the length scale of a Fourier library with ``fourier:K:fit``.

A periodic landscape of unknown spacing (a colloid in an optical lattice, the ``cos(πx)`` of
the wavy-plateau potential) is linear in its amplitudes once the wavenumber ``ω = 1/ℓ`` is
known.  For every ``ω`` the one-step loss of THEORY §4 is minimised over the amplitudes in
closed form (variable projection, as in :mod:`iel.estimators.varpro`):

    ``L(ω) = Σ ‖Δx‖²/h − bᵀG⁻¹b``,  ``G = Σ w h ∇φ∇φᵀ``,  ``b = Σ w ∇φ Δx``,

with ``φ`` the library's other (fixed) parts and the Fourier features at ``ω``.  ``L`` is
highly multimodal in ``ω`` (every alias of a harmonic is a local minimum), so gradient
methods from one start fail; instead ``L`` is evaluated on a uniform grid of wavenumbers from
half a period to :data:`MAX_PERIODS` periods across the data, with spacing :data:`GRID_STEP`
of a period over the data's extent (the width of a minimum is about one such period), and the
best grid point is polished by bounded Brent minimisation between its neighbours.

Aliases: with harmonics ``k = 1..K``, the wavenumber ``ω/m`` (``m ≤ K``) contains every
feature of ``ω`` and fits at least as well.  So the multiples ``m·ω`` of the best wavenumber
are polished too, and the largest whose loss is within the noise of the best
(``n_features · 2T̂``: what that many extra features gain by chance) is kept, so ``cos(πx)``
is reported as such and not as the second harmonic of ``π/2``.

Cost: the Fourier features depend on one coordinate each, so per wavenumber only the blocks
``G_ff`` (block diagonal over coordinates), ``G_0f`` and ``b_f`` are formed — ``O(n p K)``
with ``p`` fixed features; the fixed block is formed once.  The fixed parts' gradients are
held in memory (``n × p × d`` numbers); above :data:`SCAN_BUDGET` the scan runs on a random
subset of the transitions that fits it.  In up to
three dimensions, above 20 000 transitions, the scan runs on compressed transitions
(:func:`iel.estimators.varpro.compress_transitions`); when the fit then leaves almost no
residual (nearly noise-free data, where the compression's error rather than noise would
limit the wavenumber) it is polished once more on all of them.
"""

from __future__ import annotations

import jax
import numpy as np
from scipy.optimize import minimize_scalar

from ..energies.base import compiled_vmap
from ..energies.exp_quadratics import ExpQuadratics
from ..energies.features import (
    AbstractFeatureLibrary,
    ConcatLibrary,
    Fourier,
    join_library_parts,
    library_parts,
)
from .compression import compress_transitions
from .normal_equations import normal_equations

MAX_PERIODS = 24.0  # largest base wavenumber: this many periods across the data's extent
GRID_STEP = 0.25  # grid spacing in periods across the data's extent
SCAN_BUDGET = 20_000_000  # fixed-part gradient numbers (n × p × d) the scan may hold
NOISE_FREE_SHARE = 1e-2  # residual share of Σ‖Δx‖²/h below which a scan is re-polished on all


def _unfitted(library: AbstractFeatureLibrary) -> list[int]:
    return [
        i for i, p in enumerate(library_parts(library))
        if isinstance(p, Fourier) and p.free_length and not p.fitted
    ]  # fmt: skip


def _fourier_gradients(x: np.ndarray, omega: float, n_frequencies: int) -> np.ndarray:
    """``∂/∂x_j`` of ``sin(kωx_j)`` and ``cos(kωx_j)``: shape ``(n, d, 2K)``; feature ``(s, k)``
    of coordinate ``j`` has its gradient only in coordinate ``j``.  The harmonics come from
    ``sin ωx`` and ``cos ωx`` by the angle-addition recurrence (two transcendental calls)."""
    s1, c1 = np.sin(omega * x), np.cos(omega * x)
    sines, cosines = [s1], [c1]
    for _ in range(n_frequencies - 1):
        s, c = sines[-1], cosines[-1]
        sines.append(s * c1 + c * s1)
        cosines.append(c * c1 - s * s1)
    k = np.arange(1, n_frequencies + 1) * omega
    return np.concatenate([k * np.stack(cosines, -1), -k * np.stack(sines, -1)], axis=2)


def _minus_explained(gram: np.ndarray, rhs: np.ndarray) -> float:
    """``−bᵀG⁻¹b`` (Jacobi-scaled, with a 1e-10 ridge, as in :func:`varpro.amplitudes`)."""
    scale = 1.0 / (np.sqrt(np.diag(gram)) + 1e-300)
    scaled = gram * scale[:, None] * scale[None, :] + 1e-10 * np.eye(len(rhs))
    return -float(rhs @ (scale * np.linalg.solve(scaled, rhs * scale)))


class _Projected:
    """``−bᵀG⁻¹b`` as a function of the wavenumber (fixed blocks precomputed)."""

    def __init__(self, fixed_grads, x, dx, h, n_frequencies):
        self.x, self.dx, self.h, self.K = x, dx, h, n_frequencies
        # fixed part: (n, p0, d)
        self.g0h = fixed_grads * h[:, None, None]
        self.G00 = np.einsum("npd,nqd->pq", fixed_grads, self.g0h)
        self.b0 = np.einsum("npd,nd->p", fixed_grads, dx)

    def blocks(self, omega):
        gf = _fourier_gradients(self.x, omega, self.K)  # (n, d, 2K)
        n, d, m = gf.shape
        p0 = self.G00.shape[0]
        G = np.zeros((p0 + d * m, p0 + d * m))
        G[:p0, :p0] = self.G00
        b = np.empty(p0 + d * m)
        b[:p0] = self.b0
        for j in range(d):
            sl = slice(p0 + j * m, p0 + (j + 1) * m)
            G[sl, sl] = gf[:, j].T @ (self.h[:, None] * gf[:, j])
            cross = self.g0h[:, :, j].T @ gf[:, j]
            G[:p0, sl], G[sl, :p0] = cross, cross.T
            b[sl] = gf[:, j].T @ self.dx[:, j]
        return G, b

    def __call__(self, omega: float) -> float:
        return _minus_explained(*self.blocks(omega))


def _polish(loss, omega, half_width, value):
    """Bounded Brent minimisation of ``loss`` on ``omega ± half_width``; the start is kept when
    it is better (``value``: its loss)."""
    lo, hi = max(omega - half_width, 1e-3 * half_width), omega + half_width
    found = minimize_scalar(loss, bounds=(lo, hi), method="bounded",
                            options={"xatol": 1e-12 * half_width})  # fmt: skip
    return (float(found.x), float(found.fun)) if found.fun <= value else (float(omega), value)


def scan_length_scale(
    library: AbstractFeatureLibrary,
    x0: np.ndarray,
    dx: np.ndarray,
    h: np.ndarray,
    weights: np.ndarray | None = None,
) -> AbstractFeatureLibrary:
    """``library`` with the length scale of its unfitted ``fourier:K:fit`` part set by the
    scan of the module docstring.  Other parts are held as they are (exponentiated
    quadratics, whose placement is searched afterwards, are left out of the scan); a library
    with several free Fourier parts is rejected."""
    where = _unfitted(library)
    if not where:
        return library
    if len(where) > 1:
        raise ValueError(
            "a library may have at most one Fourier part with a fitted length (fourier:K:fit), "
            f"got {len(where)}"
        )

    parts = list(library_parts(library))
    fourier: Fourier = parts[where[0]]
    fixed = [p for i, p in enumerate(parts) if i != where[0] and not isinstance(p, ExpQuadratics)]
    w = np.ones(len(h)) if weights is None else np.asarray(weights, float)
    total = float(np.sum(w * np.sum(np.asarray(dx, float) ** 2, axis=1) / np.asarray(h, float)))
    xr, dxr, hr = compress_transitions(x0, dx, h, weights)
    n_eff = float(np.sum(w))  # transitions the scan's sums stand for
    n_fixed = sum(p.n_features for p in fixed)
    if len(hr) * max(n_fixed, 1) * xr.shape[1] > SCAN_BUDGET:  # a random subset for the scan
        keep = np.sort(
            np.random.default_rng(0).choice(
                len(hr), SCAN_BUDGET // (max(n_fixed, 1) * xr.shape[1]), replace=False
            )
        )
        share = float(np.sum(hr[keep]) / np.sum(hr))  # of the observed time
        xr, dxr, hr = xr[keep], dxr[keep], hr[keep]
        total, n_eff = total * share, n_eff * share
    if fixed:
        lib0 = join_library_parts(fixed)
        with jax.numpy_dtype_promotion("standard"):
            grads = np.asarray(compiled_vmap(lib0.jacobian, np.asarray(xr, dtype=float)))
    else:
        grads = np.zeros((len(hr), 0, xr.shape[1]))
    loss = _Projected(grads, xr, dxr, hr, fourier.n_frequencies)

    extent = float(np.max(np.ptp(np.asarray(x0, float), axis=0))) or 1.0
    unit = 2 * np.pi / extent  # one period across the data
    omegas = unit * np.arange(0.5, MAX_PERIODS + GRID_STEP / 2, GRID_STEP)
    values = np.array([loss(o) for o in omegas])
    if not np.any(np.isfinite(values)):
        raise FloatingPointError(
            "frequency scan: the one-step loss is not finite at any wavenumber; check the "
            "transitions for NaN or infinite values"
        )
    values = np.where(np.isfinite(values), values, np.inf)
    best = int(np.argmin(values))
    omega, value = _polish(loss, omegas[best], unit * GRID_STEP, values[best])
    # aliases: ω·m (m ≤ K) has a subset of the features of ω; keep the largest within noise
    temperature = max(total + value, 0.0) / (2.0 * n_eff * xr.shape[1])
    noise = 2.0 * temperature * fourier.n_features + 1e-12 * total
    for m in range(fourier.n_frequencies, 1, -1):
        alias, alias_value = _polish(loss, m * omega, unit * GRID_STEP, np.inf)
        if alias_value <= value + noise:
            omega = alias
            break
    nearly_noise_free = total + value <= NOISE_FREE_SHARE * total
    if len(hr) < len(h) and nearly_noise_free:  # compressed scan: polish on every transition
        full = _FullDataLoss(fixed, fourier, x0, dx, h, weights)
        omega, _ = _polish(full, omega, unit * GRID_STEP / 2, full(omega))
    parts[where[0]] = fourier.with_length_scale(1.0 / omega)
    return ConcatLibrary(tuple(parts)) if isinstance(library, ConcatLibrary) else parts[0]


class _FullDataLoss:
    """``−bᵀG⁻¹b`` on every transition (the chunked, jitted normal equations; the Fourier
    length is an array leaf, so one compilation serves every wavenumber)."""

    def __init__(self, fixed, fourier, x0, dx, h, weights):
        self.fixed, self.fourier = list(fixed), fourier
        self.args = (x0, dx, h, weights)

    def __call__(self, omega: float) -> float:

        parts = (*self.fixed, self.fourier.with_length_scale(1.0 / omega))
        library = join_library_parts(parts)
        eq = normal_equations(library, *self.args)
        return _minus_explained(eq.gram, eq.rhs)


__all__ = ["scan_length_scale"]
