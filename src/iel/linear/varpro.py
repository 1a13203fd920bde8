"""Variable projection: fit the free parameters of a feature library (Golub & Pereyra 1973).

A library with free parameters ``ν`` (the centres and matrices of
:class:`~iel.energies.exp_quadratics.ExpQuadratics`) gives an energy ``E(x) = θᵀφ(x; ν)``
that is linear in ``θ`` only.  The one-step loss of THEORY §4,

    ``L(θ, ν) = Σ_k w_k ‖Δx_k + h_k ∇φ(x_k; ν)ᵀθ‖² / h_k``,

is minimised in ``θ`` in closed form for every ``ν`` (``θ*(ν) = −G⁻¹b``, ``G = Σ w h ∇φ∇φᵀ``,
``b = Σ w ∇φ Δx``), and the projected residual ``r(ν) = Δx/√h + √h ∇φᵀθ*(ν)`` is minimised in
``ν`` by Levenberg–Marquardt (Optimistix), differentiating through the solve.  Gauss–Newton
steps matter here: the residual is noise-dominated (Langevin increments), the loss surface
flat, and first-order methods (L-BFGS was tried) stopped far from the optimum in our trials
on the Müller–Brown data of BENCHMARKS §B.  Several placements (``restarts``) are tried and
the lowest loss kept.

For speed the search runs on *compressed transitions* when the state has at most three
dimensions: transitions are grouped in cells of a fine grid and each cell is one
representative at the ``w h``-weighted mean of its states, carrying ``Σ w Δx`` and ``Σ w h``.
Since the representative is the weighted mean, the first-order error of replacing ``∇φ(x_k)``
by ``∇φ(x̄)`` cancels in ``G``; what remains is of order (cell / feature width)².  The
amplitudes of the returned library are then fitted on every transition by the caller.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ..energies.exp_quadratics import (
    ExpQuadratics,
    free_parameter_count,
)
from ..energies.features import (
    AbstractFeatureLibrary,
    ConcatLibrary,
    join_library_parts,
    library_parts,
)
from ..energies.pair_monomials import PairMonomials
from .compression import compress_transitions
from .frequency_scan import scan_length_scale
from .pair_screening import screen_pairs

RTOL, ATOL = 1e-4, 1e-6  # Levenberg–Marquardt stopping tolerances (far below the statistical error)


def _free_parts(library: AbstractFeatureLibrary) -> list[int]:
    return [i for i, p in enumerate(library_parts(library)) if isinstance(p, ExpQuadratics)]


def _set_free(library, where: list[int], free, refined: bool):
    parts = list(library_parts(library))
    for i, (centres, matrices) in zip(where, free):
        parts[i] = ExpQuadratics(centres, matrices, refined=refined)
    return ConcatLibrary(tuple(parts)) if isinstance(library, ConcatLibrary) else parts[0]


def amplitudes(library, x, dx, h):
    """``θ*(ν) = −G⁻¹ b`` (Jacobi-scaled, with a 1e-10 ridge) and the feature gradients."""
    grads = jax.vmap(library.jacobian)(x)  # (n, p, d)
    gram = jnp.einsum("npd,nqd,n->pq", grads, grads, h)
    rhs = jnp.einsum("npd,nd->p", grads, dx)
    scale = 1.0 / (jnp.sqrt(jnp.diag(gram)) + 1e-300)
    scaled = gram * scale[:, None] * scale[None, :] + 1e-10 * jnp.eye(gram.shape[0])
    return -scale * jnp.linalg.solve(scaled, rhs * scale), grads


def _projected_residual(free, args):
    library, where, x, dx, h, norm = args
    library = _set_free(library, where, free, refined=False)
    theta, grads = amplitudes(library, x, dx, h)
    root_h = jnp.sqrt(h)[:, None]
    return (dx / root_h + root_h * jnp.einsum("npd,p->nd", grads, theta)) / norm


@eqx.filter_jit
def _loss(free, args):
    return jnp.sum(_projected_residual(free, args) ** 2)


def _screened(library, x0, dx, h, weights):
    """``library`` with the pairs of its :class:`PairMonomials` parts chosen from the data."""
    parts = library_parts(library)
    if not any(isinstance(p, PairMonomials) and not p.screened for p in parts):
        return library
    if weights is not None:
        raise ValueError("pair screening (pairs:K) does not take weighted transitions")

    screened = tuple(
        screen_pairs(p, x0, dx, h, others=tuple(q for q in parts if q is not p)) for p in parts
    )
    return join_library_parts(screened)


def refine_free_parameters(
    library: AbstractFeatureLibrary,
    states: np.ndarray,
    x0: np.ndarray,
    dx: np.ndarray,
    h: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    restarts: int = 3,
    seed: int = 0,
    max_steps: int = 200,
    nested_from: ExpQuadratics | None = None,
) -> AbstractFeatureLibrary:
    """``library`` with its free parameters fitted to the transitions (module docstring).

    A Fourier part with a free length (``fourier:K:fit``) is fitted first by the frequency
    scan of :mod:`iel.estimators.frequency_scan`.  Libraries without free parameters, or whose
    free parts are already refined, are returned unchanged.  Placement ``r`` of ``restarts``
    puts the terms on ``states`` with seed ``seed + r`` (the first placement is the library's
    own when it is already placed); the placement reaching the lowest one-step loss is kept.
    With ``nested_from`` (fitted terms of a smaller family) and a library with one free
    part, the first placement is those terms plus new ones (:meth:`ExpQuadratics.grown`, in
    place of the library's own placement): the search then starts where the smaller family's
    optimum is, so its loss can only go down.  Selection climbs the ladder this way
    (``expquad:2`` → ``4`` → ``6``)."""
    library = scan_length_scale(library, x0, dx, h, weights)  # fourier:K:fit, if any
    library = _screened(library, x0, dx, h, weights)  # pairs:K, if any
    where = _free_parts(library)
    parts = library_parts(library)
    if not where or all(parts[i].refined for i in where):
        return library
    xr, dxr, hr = compress_transitions(x0, dx, h, weights)
    norm = jnp.asarray(float(np.sqrt(np.sum(np.sum(dxr**2, axis=1) / hr))) or 1.0)
    solver = optx.LevenbergMarquardt(rtol=RTOL, atol=ATOL)
    args = (library, where, jnp.asarray(xr), jnp.asarray(dxr), jnp.asarray(hr), norm)
    nested = (
        nested_from is not None and len(where) == 1 and nested_from.dim == parts[where[0]].dim
        and nested_from.n_terms <= parts[where[0]].n_terms
    )  # fmt: skip
    best, best_loss = None, np.inf
    for r in range(max(restarts, 1)):
        placed = [
            nested_from.grown(states, parts[i].n_terms, seed) if r == 0 and nested else
            parts[i] if r == 0 and parts[i].centres.any() else
            ExpQuadratics.placeholder(parts[i].dim, parts[i].n_terms).adapt(states, seed + r)
            for i in where
        ]  # fmt: skip
        start = tuple((p.centres, p.matrices) for p in placed)
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            sol = optx.least_squares(
                _projected_residual, solver, start, args=args, max_steps=max_steps, throw=False
            )
        loss = float(_loss(sol.value, args))
        if np.isfinite(loss) and loss < best_loss:
            best, best_loss = sol.value, loss
    if best is None:
        raise FloatingPointError(
            "variable projection: every placement of the exponentiated quadratics gave a "
            "non-finite loss; try fewer terms or rescale the data"
        )
    return _set_free(library, where, best, refined=True)


__all__ = ["free_parameter_count", "refine_free_parameters"]
