"""Collective variables: an energy of a few linear combinations of the coordinates.

If ``E(x) = g(Wx)`` with ``W`` an ``r × d`` matrix of orthonormal rows, the drift
``−Wᵀ∇g(Wx)`` lies in the ``r``-dimensional row space of ``W``.  The second moment of the
scaled one-step displacements,

    ``M = Σ_k Δx_k Δx_kᵀ / h_k  ≈  Σ_k h_k F(x_k) F(x_k)ᵀ + 2T K I``,

then has ``r`` eigenvalues above the noise level ``2TK`` and ``d − r`` at it (zero without
noise); its dominant eigenvectors span the row space of ``W`` (an active subspace).  The
projected data ``u = Wx`` are again one-step data of an energy: ``WΔx = −h∇g(u) + √(2Th) Wξ``
with ``Wξ`` standard normal in ``R^r``, so ``g`` is selected among the low-dimensional families
on them, and the candidate is coded with the force-free remaining directions as pure noise:

    ``L = L_data(residual_u + Σ‖(I − WᵀW)Δx‖²/h at one T) + L(g's parameters)
          + (rd − r(r+1)/2)(½ log₂ n + 1) bits for W``

(``rd − r(r+1)/2`` is the dimension of the set of ``r`` orthonormal rows).  Selection then
weighs it against the families in all ``d`` coordinates like any other candidate.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.trajectories import Trajectories
from ..energies.projected import ProjectedEnergy
from ..estimators.base import data_range
from ..mdl.codes import (
    CodeLength,
    floored_fit,
    gaussian_nll_bits,
    temperature_floor,
)
from ..model import observed_dynamics
from .candidates import Candidate, is_formula
from .families import auto_families

MAX_COLLECTIVE = 3  # at most this many collective variables: the low-dimensional families' range
MIN_COLLECTIVE_DIMENSION = MAX_COLLECTIVE + 1
# an eigenvalue counts as signal above median · (1 + NOISE_EDGE_FACTOR · √(d/K))²: the noise
# bulk's upper edge (Marchenko–Pastur: factor 1) with room for the median's own scatter
NOISE_EDGE_FACTOR = 1.5
NOISE_FREE_RATIO = 1e-10  # without noise: eigenvalues below this share of the largest are zero


def collective_subspace(
    dx: np.ndarray,
    h: np.ndarray,
    temperature: float | None = None,
    max_rank: int = MAX_COLLECTIVE,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Orthonormal rows spanning the directions the data move along, and the spectrum.

    Returns ``(W, λ / λ_max)`` with ``W`` of shape ``(r, d)``, or ``(None, λ / λ_max)`` when
    no ``1 ≤ r ≤ max_rank`` (``r < d``) directions stand out.  The noise level is the median
    of the eigenvalues beyond ``max_rank`` (all noise when at most ``max_rank`` directions
    carry a force); an eigenvalue is signal when above what a pure-noise eigenvalue reaches,
    ``median · (1 + 1.5√(d/K))²`` (the Marchenko–Pastur edge has 1 for 1.5), and above
    ``NOISE_FREE_RATIO`` of the largest.  Motion along every direction alike looks like noise
    in this moment; a temperature fitted otherwise (a model in all ``d`` coordinates) tells
    them apart: the noise level is then at most ``2TK``.  Without noise the subspace is exact;
    with it, a direction is found once its drift's share of the steps, ``h‖F‖²/2T``, exceeds
    about ``3√(d/K)``, and its angle shrinks like ``1/√K`` — a poorly found subspace shows in
    the candidate's code, which selection weighs against the families in all coordinates.
    """
    scaled = dx / np.sqrt(h)[:, None]
    values, vectors = np.linalg.eigh(scaled.T @ scaled)
    values, vectors = values[::-1], vectors[:, ::-1]
    dim, count = len(values), len(h)
    top = max(float(values[0]), 1e-300)
    spectrum = values / top
    if dim <= max_rank:
        return None, spectrum
    noise = float(np.median(values[max_rank:]))
    if temperature is not None:
        noise = min(noise, 2.0 * temperature * count)
    edge = noise * (1.0 + NOISE_EDGE_FACTOR * math.sqrt(dim / count)) ** 2
    rank = int(np.sum(values > max(edge, NOISE_FREE_RATIO * top)))
    if not 1 <= rank <= max_rank:
        return None, spectrum
    return varimax(vectors[:, :rank].T), spectrum


def varimax(weights: np.ndarray, sweeps: int = 50, tol: float = 1e-12) -> np.ndarray:
    """The rows of ``W`` rotated within their span to the simplest loadings (Kaiser's varimax:
    maximise the variance of the squared loadings of each row), each signed so that its largest
    loading is positive.

    The eigenvectors of the moment mix the collective variables by whatever rotation the
    sample's cross-correlations give; the energy is the same function of any rotation, but
    its readable form is not: ``u0 = 0.447·(x0 + … + x4)`` rather than a blend of two such
    sums, and families with per-coordinate terms (Fourier modes, additive bumps) fit ``g``
    exactly only in the axes where it separates.  Kaiser's pairwise sweeps: each pair of rows
    is turned by the angle that maximises the criterion for that pair (in closed form), until
    no angle exceeds ``tol``.
    """
    rows = np.array(weights, dtype=float)
    rank, dim = rows.shape
    for _ in range(sweeps if rank > 1 else 0):
        largest = 0.0
        for i in range(rank - 1):
            for j in range(i + 1, rank):
                x, y = rows[i], rows[j]
                u, v = x**2 - y**2, 2 * x * y
                a, b = u.sum(), v.sum()
                numerator = 2 * np.sum(u * v) - 2 * a * b / dim
                denominator = np.sum(u**2 - v**2) - (a**2 - b**2) / dim
                angle = 0.25 * np.arctan2(numerator, denominator)
                c, s = np.cos(angle), np.sin(angle)
                rows[i], rows[j] = c * x + s * y, -s * x + c * y
                largest = max(largest, abs(angle))
        if largest < tol:
            break
    signs = np.sign(rows[np.arange(rank), np.argmax(np.abs(rows), axis=1)])
    return np.ascontiguousarray(rows * signs[:, None])


def collective_candidate(data: Trajectories, temperature: float | None, *, epsilon: float,
                         h_mean: float, seed: int,
                         search_free: bool, networks: tuple[str, ...], network_steps: int,
                         network_optimiser: str, select_inner):  # fmt: skip
    """The collective-variable candidate for :func:`~iel.selection.select`, or
    ``None`` when the data move along more than :data:`MAX_COLLECTIVE` directions (or the
    state is not a vector of at least :data:`MIN_COLLECTIVE_DIMENSION` coordinates).
    ``temperature``: that of the best model in all coordinates so far (bounds the noise).
    ``select_inner``: the selection run on the projected data (:func:`~iel.selection.select`,
    passed in by it: the candidate is one of its own)."""

    if len(data.state_shape) != 1 or data.dim < MIN_COLLECTIVE_DIMENSION:
        return None
    _, dx, h = data.increments()
    weights, spectrum = collective_subspace(dx, h, temperature)
    if weights is None:
        return None
    rank, dim = weights.shape
    projected = Trajectories(np.einsum("ntd,rd->ntr", data.x, weights), t=data.t, mask=data.mask)
    inner = select_inner(
        projected, auto_families(rank, free_parameters=False), epsilon=epsilon,
        prequential=False, seed=seed, search_free=search_free, networks=networks,
        network_steps=network_steps, network_optimiser=network_optimiser,
        gradient_test=False, collective=False,
    )  # fmt: skip
    chosen = inner.chosen
    off_subspace = float(np.sum(dx**2 / h[:, None]) - np.sum((dx @ weights.T) ** 2 / h[:, None]))
    residual = chosen.code.details["residual"] + max(off_subspace, 0.0)
    n = float(len(h) * dim)
    stiefel = rank * dim - rank * (rank + 1) // 2
    n_params = chosen.n_parameters + stiefel
    floor = temperature_floor(epsilon, h_mean)
    coded, temperature = floored_fit(residual, n - n_params, floor)  # as the linear codes do
    code = CodeLength(
        gaussian_nll_bits(coded, n, dim * float(np.sum(np.log(h))), temperature),
        chosen.code.parameter_bits + stiefel * (0.5 * math.log2(max(n, 2.0)) + 1.0),
        chosen.code.structure_bits + math.log2(MAX_COLLECTIVE),
        n * math.log2(1.0 / epsilon),
        {"temperature": temperature, "residual": residual, "n_terms": n_params,
         "collective_variables": rank, "inner_formula": is_formula(chosen)},
    )  # fmt: skip
    energy = ProjectedEnergy(inner.model.energy_module, weights)
    noise_free = temperature <= floor * (1 + 1e-9)
    low, high = data_range(data.observed_states())
    model = inner.model.replace(
        energy_module=energy,
        dynamics=observed_dynamics(0.0 if noise_free else float(temperature)),
        data_low=low,
        data_high=high,
        identifiability={
            **inner.model.identifiability,
            "collective variables": f"the data move along {rank} of {dim} directions; E is "
            "identified as a function of u = Wx only (every orthogonal direction is "
            "force-free), and W up to a rotation within its row space",
        },
    ).with_diagnostics(
        noise_free=bool(noise_free),
        residual_scale=math.sqrt(residual / n),
        collective_variables=energy.components(),
        collective_spectrum=[float(v) for v in spectrum[: MAX_COLLECTIVE + 2]],
    )
    return Candidate(
        f"collective:{rank} → {chosen.name}", "projected", code, None, n_params,
        energy.formula(), math.sqrt(residual / n), f"collective:{rank}", fitted=model,
    )  # fmt: skip
