"""Pairing snapshots where the step map folds: point-set registration by a gradient step.

Optimal transport pairs two snapshots by the monotone map between them (Brenier): the
gradient of a convex function.  An explicit step ``x ↦ x − h∇V(x)`` is one only while
``h∇²V ≺ I``; where ``hλmax(∇²V) ≥ 1`` it folds (three particles land on one stretch of the
next snapshot, in reversed order) and transport pairs particles with other particles' images.
A family fitted to those pairs learns an unfolded map instead of the energy.

Registration pairs by the step itself.  The next snapshot ``{y_j}`` is read as a mixture of
Gaussians centred on the stepped particles ``T_θ(x_i) = x_i − h∇E_θ(x_i)``, with
``E_θ = θᵀφ`` in a broad library (:func:`registration_library`), and ``θ`` and the width
``σ²`` are fitted by expectation–maximisation — coherent point drift (Myronenko & Song
2010) with the step as the transformation:

    E:  P_ij = exp(−‖y_j − T_θ(x_i)‖²/2σ²) / Σ_k exp(−‖y_j − T_θ(x_k)‖²/2σ²)
    M:  θ = argmin Σ_ij P_ij ‖y_j − x_i − A_i θ‖²,  A_i = −h∇φ(x_i)ᵀ  (weighted least squares)
        σ² = Σ_ij P_ij ‖y_j − T_θ(x_i)‖² / (d · #targets)

Each target is shared among the stepped particles near it, not assigned by a monotone map,
so folded steps are followed; ``σ²`` shrinks as the fit explains the targets (noise-free
data: towards zero, where the assignment is the identity).  It starts from the
least-squares fit to the transport pairs, at their residual variance.

The library: monomials to degree 4 and Fourier modes of every coordinate with period the
data's widest range ``L``, ``k = 1..K``, ``K = L / (2s)``, ``s`` the particles' spacing
(the finest wave the particles sample: two per wavelength).  The fitted step then
pairs every snapshot (:func:`iel.estimators.snapshots.paired_transitions` from the predicted
positions); the caller keeps whichever pairing the library explains with the smaller residual
— with the same library and one permutation each, the shorter description.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..energies.features import ConcatLibrary, Fourier, Monomials

REGISTRATION_MAX_DIMENSION = 3  # beyond, the library's Fourier modes and cross terms grow fast
REGISTRATION_MAX_PARTICLES = 3000  # per snapshot: the E-step holds an n × m matrix
REGISTRATION_DEGREE = 4
MAX_FREQUENCIES = 24
MAX_ITERATIONS = 300
RELATIVE_TOLERANCE = 1e-9  # stop when σ² changes by less than this share in one iteration


def registration_library(states: np.ndarray) -> ConcatLibrary:
    """``poly:4 + fourier:K`` with period the widest coordinate range ``L`` of ``states``
    (``(M, d)``) and ``K = L / (2s)``, ``s = (volume / M)^{1/d}`` the mean spacing of the
    first snapshot's particles — at least 1 and at most :data:`MAX_FREQUENCIES` modes."""
    states = np.asarray(states, dtype=float)
    count, dim = states.shape
    widths = np.ptp(states, axis=0)
    width = float(np.max(widths))
    if not width > 0:
        raise ValueError("registration needs particles spread over a range, got all in one point")
    volume = float(np.prod(np.maximum(widths, width * 1e-3)))
    spacing = (volume / count) ** (1.0 / dim)
    frequencies = int(np.clip(round(width / (2 * spacing)), 1, MAX_FREQUENCIES))
    return ConcatLibrary([
        Monomials(dim, REGISTRATION_DEGREE),
        Fourier(dim, frequencies, width / (2 * math.pi)),
    ])  # fmt: skip


def registration_library_name(library: ConcatLibrary) -> str:
    """E.g. ``poly:4+fourier:16 (period 8)``."""
    monomials, modes = library.parts
    period = 2 * math.pi * float(modes.length_scale)
    return f"poly:{monomials.degree}+fourier:{modes.n_frequencies} (period {period:.4g})"


def step_designs(library, states: np.ndarray, h) -> jnp.ndarray:
    """``A_i = −h_i∇φ(x_i)ᵀ`` for each state: ``(M, d, p)``, so that ``T_θ(x_i) = x_i + A_iθ``
    (``h`` one gap or one per state)."""
    jacobians = jax.vmap(library.jacobian)(jnp.asarray(states, dtype=float))
    gaps = jnp.broadcast_to(jnp.asarray(h, dtype=float), (jacobians.shape[0],))
    return -gaps[:, None, None] * jnp.swapaxes(jacobians, -1, -2)


def _ridge_solve(gram, rhs):
    size = gram.shape[0]
    return jnp.linalg.solve(gram + 1e-10 * jnp.trace(gram) / size * jnp.eye(size), rhs)


@jax.jit
def _coherent_point_drift(designs, sources, targets, theta, variance):
    """EM iterations (module docstring) until ``σ²`` settles; returns ``(θ, σ², iterations)``."""

    target_norms = jnp.sum(targets**2, axis=1)

    def step(state):
        theta, variance, _, count = state
        stepped = sources + designs @ theta
        distances = (jnp.sum(stepped**2, axis=1)[:, None] + target_norms[None, :]
                     - 2 * stepped @ targets.T)  # fmt: skip
        shares = jax.nn.softmax(-distances / (2 * variance), axis=0)  # over sources, per target
        weights = shares.sum(axis=1)
        pulled = shares @ targets  # Σ_j P_ij y_j
        gram = jnp.einsum("i,idp,idq->pq", weights, designs, designs)
        rhs = jnp.einsum("idp,id->p", designs, pulled - weights[:, None] * sources)
        theta = _ridge_solve(gram, rhs)
        stepped = sources + designs @ theta
        # Σ_ij P_ij ‖y_j − T(x_i)‖² without the matrix: Σ_j ‖y_j‖² (Σ_i P_ij = 1 per target)
        spread = (jnp.sum(target_norms) - 2 * jnp.sum(stepped * pulled)
                  + jnp.sum(weights * jnp.sum(stepped**2, axis=1)))  # fmt: skip
        new = jnp.maximum(spread / targets.size, jnp.finfo(spread.dtype).tiny)
        return theta, new, variance, count + 1

    def going(state):
        _, variance, previous, count = state
        settled = jnp.abs(variance - previous) <= RELATIVE_TOLERANCE * previous
        return (count < MAX_ITERATIONS) & ~settled

    theta, variance, _, count = jax.lax.while_loop(
        going, step, (theta, variance, 2 * variance + 1.0, 0)
    )
    return theta, variance, count


def register_step(designs, source, target, theta, paired_target) -> tuple[np.ndarray, dict]:
    """``θ`` of the step ``x ↦ x + A(x)θ`` (``designs``: ``A_i = −h∇φ(x_i)ᵀ`` for each row of
    ``source``, :func:`step_designs`) registering ``source`` onto ``target`` (the next
    snapshot), started from ``theta`` (the fit to the transport pairs) at the variance of its
    residual to ``paired_target`` (``source``'s transport partners, row for row).  Returns
    ``(θ, info)`` with the EM's final ``σ²`` and iteration count."""
    scale = jnp.sqrt(jnp.einsum("idp,idp->p", designs, designs)) + 1e-300
    designs = designs / scale[None, None, :]
    sources, targets = jnp.asarray(source, float), jnp.asarray(target, float)
    theta = jnp.asarray(theta, float) * scale
    residual = jnp.asarray(paired_target, float) - sources - designs @ theta
    variance = jnp.maximum(jnp.mean(residual**2), jnp.finfo(float).tiny)
    theta, variance, count = _coherent_point_drift(designs, sources, targets, theta, variance)
    info = {"variance": float(variance), "iterations": int(count)}
    return np.asarray(theta / scale), info


class StepDesign:
    """A library's step design on the sources of a pairing, ``A_i = −h_i∇φ(x_i)ᵀ``, computed
    once and shared by the least-squares fits of every pairing of those sources and by the
    registration of the first snapshot (its first rows).

    ``pairs``: Trajectories of two points, as
    :func:`~iel.estimators.snapshots.paired_transitions` gives them (sources in the order of
    the snapshots)."""

    def __init__(self, library, pairs):
        self.library = library
        self.sources, _, self.gaps = pairs.increments()
        self.designs = step_designs(library, self.sources, self.gaps)

    def fits(self, *pairings) -> list[tuple[np.ndarray, float]]:
        """For each pairing of these sources, ``θ`` minimising ``Σ ‖Δx + h∇(θᵀφ)(x)‖² / h``
        and that minimum: how much of the paired motion the library leaves unexplained."""
        root = np.sqrt(self.gaps)
        for other in pairings:
            if not np.array_equal(other.increments()[0], self.sources):
                raise ValueError("pairings compared by a StepDesign start from its sources, "
                                 "in its order")  # fmt: skip
        rows = np.asarray(self.designs / root[:, None, None]).reshape(-1, self.library.n_features)
        targets = np.stack([(p.increments()[1] / root[:, None]).reshape(-1) for p in pairings],
                           axis=1)  # fmt: skip
        norms = np.linalg.norm(rows, axis=0)
        scale = np.where(norms > 1e-12 * norms.max(), 1.0 / np.maximum(norms, 1e-300), 0.0)
        thetas = np.linalg.lstsq(rows * scale, targets, rcond=1e-13)[0] * scale[:, None]
        residuals = np.sum((targets - rows @ thetas) ** 2, axis=0)
        return [(thetas[:, k], float(residuals[k])) for k in range(len(pairings))]

    def register(self, count: int, target, theta, paired_target) -> tuple[np.ndarray, dict]:
        """:func:`register_step` of the first ``count`` sources (one snapshot, one gap) onto
        ``target``."""
        if not np.allclose(self.gaps[:count], self.gaps[0]):
            raise ValueError("register the sources of one snapshot: one gap to the next")
        return register_step(self.designs[:count], self.sources[:count], target, theta,
                             paired_target)  # fmt: skip
