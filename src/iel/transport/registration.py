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
least-squares fit to the transport pairs, at :data:`START_VARIANCE_FACTOR` times their
residual variance.  When only a subset of the first snapshot is registered (large
populations) or the second snapshot has more particles, a target may have no source: the
mixture then has a uniform component of weight ``w`` (the expected share of such targets),
which adds ``c = (2πσ²)^{d/2} · w/(1 − w) · M/N`` to the E-step's denominator (``M``
sources, ``N`` targets; Myronenko & Song's outlier term).  The E-step runs over blocks of
targets, so its memory is ``M × TARGET_BLOCK`` however large the snapshot.

The registration is not sure to find the step: EM may settle in a local optimum (on
bohachevsky it did with 2000 particles per snapshot), which is why ``auto`` keeps it
only where the library explains its pairs better than transport's, and tries it only up to
:data:`REGISTRATION_MAX_TARGETS` particles.

The library: monomials to degree 4 and Fourier modes of every coordinate with period the
data's widest range ``L``, ``k = 1..K``, ``K = L / (2s)``, ``s`` the particles' spacing
(the finest wave the particles sample: two per wavelength).  The fitted step then
pairs every snapshot (:func:`iel.estimators.snapshots.paired_transitions` from the predicted
positions); the caller keeps whichever pairing the library explains with the smaller residual
— with the same library and one permutation each, the shorter description.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..energies.base import compiled_vmap
from ..energies.features import (
    ConcatLibrary,
    Fourier,
    Monomials,
)
from ..linear.least_squares import column_scaled_lstsq

REGISTRATION_MAX_DIMENSION = 3  # beyond, the library's Fourier modes and cross terms grow fast
REGISTRATION_SOURCES = 2000  # at most this many particles of the first snapshot are registered
# `auto` registers up to this many particles per snapshot, and EM starts at this multiple of
# the transport pairs' residual variance: `python benchmarks/registration_reach.py` (four
# draws of bohachevsky) registers all four at 1000 per snapshot with 4 (three with 1) and none
# at 2000 per snapshot
REGISTRATION_MAX_TARGETS = 1500
START_VARIANCE_FACTOR = 4.0
TARGET_BLOCK = 2048  # the E-step holds sources × TARGET_BLOCK entries at a time
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


def step_designs(library, states: np.ndarray, h) -> np.ndarray:
    """``A_i = −h_i∇φ(x_i)ᵀ`` for each state: ``(M, d, p)``, so that ``T_θ(x_i) = x_i + A_iθ``
    (``h`` one gap or one per state)."""
    jacobians = np.asarray(compiled_vmap(library.jacobian, jnp.asarray(states, dtype=float)))
    gaps = np.broadcast_to(np.asarray(h, dtype=float), (jacobians.shape[0],))
    return -gaps[:, None, None] * np.swapaxes(jacobians, -1, -2)


def _ridge_solve(gram, rhs):
    size = gram.shape[0]
    return jnp.linalg.solve(gram + 1e-10 * jnp.trace(gram) / size * jnp.eye(size), rhs)


@functools.partial(jax.jit, static_argnames=("block",))
def _coherent_point_drift(designs, sources, targets, present, theta, variance, log_odds,
                          block):  # fmt: skip
    """EM iterations (module docstring) until ``σ²`` settles; returns ``(θ, σ², iterations)``.

    ``targets`` come in blocks of ``block`` rows (``present`` masks the padding), so the
    ``sources × block`` matrices are all the memory the E-step holds.  ``log_odds`` is
    ``log(w/(1 − w) · M/N)`` for an outlier share ``w`` (``−∞``: none)."""
    dim = sources.shape[1]
    blocks, masks = targets.reshape(-1, block, dim), present.reshape(-1, block)

    def expectations(stepped, variance):
        """``Σ_j P_ij``, ``Σ_j P_ij y_j``, ``Σ_ij P_ij`` and ``Σ_ij P_ij ‖y_j‖²``."""
        norms = jnp.sum(stepped**2, axis=1)
        log_outlier = log_odds + 0.5 * dim * jnp.log(2 * jnp.pi * variance)

        def add_block(totals, chunk):
            ys, mask = chunk
            y_norms = jnp.sum(ys**2, axis=1)
            logits = -(norms[:, None] + y_norms[None, :] - 2 * stepped @ ys.T) / (2 * variance)
            normaliser = jnp.logaddexp(jax.nn.logsumexp(logits, axis=0), log_outlier)
            shares = jnp.exp(logits - normaliser[None, :]) * mask[None, :]
            column = shares.sum(axis=0)
            weights, pulled, matched, spread = totals
            return (weights + shares.sum(axis=1), pulled + shares @ ys, matched + column.sum(),
                    spread + column @ y_norms), None  # fmt: skip

        zero = (jnp.zeros(len(sources)), jnp.zeros_like(sources), 0.0, 0.0)
        return jax.lax.scan(add_block, zero, (blocks, masks))[0]

    def step(state):
        theta, variance, _, count = state
        weights, pulled, matched, target_term = expectations(sources + designs @ theta, variance)
        gram = jnp.einsum("i,idp,idq->pq", weights, designs, designs)
        rhs = jnp.einsum("idp,id->p", designs, pulled - weights[:, None] * sources)
        theta = _ridge_solve(gram, rhs)
        stepped = sources + designs @ theta
        # Σ_ij P_ij ‖y_j − T(x_i)‖² from the sums, without the matrix
        spread = (target_term - 2 * jnp.sum(stepped * pulled)
                  + jnp.sum(weights * jnp.sum(stepped**2, axis=1)))  # fmt: skip
        new = jnp.maximum(spread / (dim * jnp.maximum(matched, 1e-300)),
                          jnp.finfo(spread.dtype).tiny)  # fmt: skip
        return theta, new, variance, count + 1

    def going(state):
        _, variance, previous, count = state
        settled = jnp.abs(variance - previous) <= RELATIVE_TOLERANCE * previous
        return (count < MAX_ITERATIONS) & ~settled

    theta, variance, _, count = jax.lax.while_loop(
        going, step, (theta, variance, 2 * variance + 1.0, 0)
    )
    return theta, variance, count


def register_step(designs, source, target, theta, paired_target,
                  outlier_share: float = 0.0) -> tuple[np.ndarray, dict]:  # fmt: skip
    """``θ`` of the step ``x ↦ x + A(x)θ`` (``designs``: ``A_i = −h∇φ(x_i)ᵀ`` for each row of
    ``source``, :func:`step_designs`) registering ``source`` onto ``target`` (the next
    snapshot), started from ``theta`` (the fit to the transport pairs) at the variance of its
    residual to ``paired_target`` (``source``'s transport partners, row for row).
    ``outlier_share``: the share ``w`` of targets expected to have no source among these (a
    subset of the particles registered): each target is then an outlier with the mixture
    weight ``w`` of a uniform density (coherent point drift's outlier term).  Returns
    ``(θ, info)`` with the EM's final ``σ²`` and iteration count."""
    targets = np.asarray(target, float)
    block = min(TARGET_BLOCK, len(targets))
    padded = -len(targets) % block
    present = np.concatenate([np.ones(len(targets)), np.zeros(padded)])
    targets = np.concatenate([targets, np.zeros((padded, targets.shape[1]))])
    log_odds = (math.log(outlier_share / (1 - outlier_share) * len(source) / len(target))
                if 0 < outlier_share < 1 else -math.inf)  # fmt: skip
    theta, variance, count = _scaled_registration(
        jnp.asarray(designs, float), jnp.asarray(source, float), jnp.asarray(targets, float),
        jnp.asarray(present, float), jnp.asarray(theta, float), jnp.asarray(paired_target, float),
        log_odds, block,
    )  # fmt: skip
    info = {"variance": float(variance), "iterations": int(count), "sources": len(source),
            "targets": len(target)}  # fmt: skip
    return np.asarray(theta), info


@functools.partial(jax.jit, static_argnames=("block",))
def _scaled_registration(designs, sources, targets, present, theta, paired_target, log_odds,
                         block):  # fmt: skip
    """:func:`_coherent_point_drift` on unit-norm design columns, from the variance of the
    start's residual to the paired targets (times :data:`START_VARIANCE_FACTOR`): one
    compiled program for the whole registration."""
    scale = jnp.sqrt(jnp.einsum("idp,idp->p", designs, designs)) + 1e-300
    designs = designs / scale[None, None, :]
    theta = theta * scale
    residual = paired_target - sources - designs @ theta
    variance = jnp.maximum(START_VARIANCE_FACTOR * jnp.mean(residual**2),
                           jnp.finfo(residual.dtype).tiny)  # fmt: skip
    theta, variance, count = _coherent_point_drift(designs, sources, targets, present, theta,
                                                   variance, log_odds, block)  # fmt: skip
    return theta / scale, variance, count


class StepDesign:
    """A library's step design on the sources of a pairing, ``A_i = −h_i∇φ(x_i)ᵀ``, computed
    once and shared by the least-squares fits of every pairing of those sources, by the
    registration of rows of the first snapshot, and by the step's predictions.

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
        rows = (self.designs / root[:, None, None]).reshape(-1, self.library.n_features)
        targets = np.stack([(p.increments()[1] / root[:, None]).reshape(-1) for p in pairings],
                           axis=1)  # fmt: skip
        thetas = column_scaled_lstsq(rows, targets)
        residuals = np.sum((targets - rows @ thetas) ** 2, axis=0)
        return [(thetas[:, k], float(residuals[k])) for k in range(len(pairings))]

    def predicted(self, theta) -> np.ndarray:
        """Every source moved by the step, ``x_i + A_iθ = x_i − h_i∇(θᵀφ)(x_i)``."""
        return self.sources + self.designs @ np.asarray(theta)

    def register(self, rows, target, theta, paired_target) -> tuple[np.ndarray, dict]:
        """:func:`register_step` of the sources ``rows`` (indices into one snapshot: one gap)
        onto ``target``, the whole next snapshot; targets beyond the registered sources'
        count are taken as outliers."""
        rows = np.asarray(rows)
        if not np.allclose(self.gaps[rows], self.gaps[rows[0]]):
            raise ValueError("register the sources of one snapshot: one gap to the next")
        outliers = max(0.0, 1.0 - len(rows) / len(target))
        return register_step(self.designs[rows], self.sources[rows], target, theta,
                             paired_target, outlier_share=outliers)  # fmt: skip
