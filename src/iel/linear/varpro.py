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
on the Müller–Brown data of BENCHMARKS §B.

The loss has local optima (a term parked between two wells, or on a flank, while a well goes
unexplained), so the search is started from many places and the lowest loss kept:

1. *screening*: placements in groups — :data:`SCREENED` k-means placements (seeds ``seed,
   seed + 1, …``); ``M − 1`` k-means wells plus one broad background term over the whole data,
   growing or decaying outwards (:meth:`ExpQuadratics.with_background`: the fourth
   Müller–Brown term is such a term, and an optimum that needs one is out of reach of wells
   placed on the data, which then pile two terms into one basin); and one with its first terms
   on ``anchors`` (in selection the local minima of the best closed-form energy fitted before)
   — are scored by their projected loss (amplitudes solved, no search; batched);
2. *search*: Levenberg–Marquardt from the nested start (``nested_from``) or the library's own
   placement, if any, from the best-scored placement of each group, and from the next best
   overall up to ``restarts`` runs;
3. *swaps* (one exponentiated-quadratic part): each term of the best fit in turn is replaced by
   a k-means or background term, the swaps are scored as in 1 and the search rerun from the
   best one; kept when its loss is lower (:data:`SWAP_ROUNDS` rounds).

Every placement on one data set has the same shapes, and the transitions are padded to a
multiple of :data:`PAD_TO` rows, so each family size compiles one search program, whatever the
data set (a sweep of many data sets compiles it once).

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
SCREENED = 16  # k-means placements scored before the search (module docstring)
SWAP_ROUNDS = 1  # rounds of one-term swaps after the search
PAD_TO = 256  # transitions are padded to a multiple of this (one compiled program per size)


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
    library, where, x, dx, h, inv_root_h, norm = args
    library = _set_free(library, where, free, refined=False)
    theta, grads = amplitudes(library, x, dx, h)
    root_h = jnp.sqrt(h)[:, None]
    return (dx * inv_root_h[:, None] + root_h * jnp.einsum("npd,p->nd", grads, theta)) / norm


@eqx.filter_jit
def _loss(free, args):
    return jnp.sum(_projected_residual(free, args) ** 2)


@eqx.filter_jit
def _losses(stacked, args):
    """:func:`_loss` of a batch of placements (leaves stacked along a first axis)."""
    return jax.vmap(lambda free: _loss(free, args))(stacked)


def _padded(x, dx, h):
    """Transitions padded with rows of zero weight (``h = 0``, ``Δx = 0``) to a multiple of
    :data:`PAD_TO`, and ``1/√h`` (0 on the padding)."""
    n = len(h)
    size = PAD_TO * -(-n // PAD_TO)
    x = np.concatenate([x, np.repeat(x[:1], size - n, axis=0)])
    dx = np.concatenate([dx, np.zeros((size - n, dx.shape[1]))])
    h = np.concatenate([h, np.zeros(size - n)])
    inv_root_h = np.where(h > 0, 1.0 / np.sqrt(np.where(h > 0, h, 1.0)), 0.0)
    return x, dx, h, inv_root_h


def _screen(starts: list, args, batch: int = SCREENED) -> np.ndarray:
    """Projected losses of the placements ``starts`` (non-finite → inf), in batches of a
    fixed size (one compiled program)."""
    out = []
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        chunk = chunk + [chunk[-1]] * (batch - len(chunk))
        stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *chunk)
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            out.append(np.asarray(_losses(stacked, args)))
    losses = np.concatenate(out)[: len(starts)]
    return np.where(np.isfinite(losses), losses, np.inf)


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))  # fmt: skip


def _search(start, args, max_steps: int):
    """Levenberg–Marquardt from ``start``: ``(parameters, loss)``."""
    solver = optx.LevenbergMarquardt(rtol=RTOL, atol=ATOL)
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        sol = optx.least_squares(
            _projected_residual, solver, start, args=args, max_steps=max_steps, throw=False
        )
    loss = float(_loss(sol.value, args))
    return sol.value, (loss if np.isfinite(loss) else np.inf)


def _swaps(best, centres: np.ndarray, fresh_matrices: np.ndarray) -> list:
    """Placements equal to ``best`` (one free part) with one term moved onto one of
    ``centres`` (with the matching row of ``fresh_matrices``), every term and centre."""
    ((c, m),) = best
    c, m = np.asarray(c), np.asarray(m)
    out = []
    for j in range(len(c)):
        for k, centre in enumerate(centres):
            cj, mj = c.copy(), m.copy()
            cj[j], mj[j] = centre, fresh_matrices[k]
            out.append(((jnp.asarray(cj), jnp.asarray(mj)),))
    return out


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
    anchors: np.ndarray | None = None,
) -> AbstractFeatureLibrary:
    """``library`` with its free parameters fitted to the transitions (module docstring).

    A Fourier part with a free length (``fourier:K:fit``) is fitted first by the frequency
    scan of :mod:`iel.estimators.frequency_scan`.  Libraries without free parameters, or whose
    free parts are already refined, are returned unchanged.  Searches are run (steps 1–3 of
    the module docstring; at least one per placement group, ``restarts`` in all when that is
    more) and the lowest one-step loss kept: from the library's own placement when it is
    already placed, from the nested start when ``nested_from`` is given, and from the
    best-scored placements on ``states`` (k-means seeds ``seed, seed + 1, …``; with ``anchors``,
    ``(k, d)`` points, deepest first, for a library with one free part, one with its first
    terms there).  With
    ``nested_from`` (fitted terms of a smaller family) and a library with one free part, the
    nested start is those terms plus new ones (:meth:`ExpQuadratics.grown`): a search from
    there can only lower the smaller family's loss.  Selection climbs the ladder this way
    (``expquad:2`` → ``4`` → ``6``)."""
    library = scan_length_scale(library, x0, dx, h, weights)  # fourier:K:fit, if any
    library = _screened(library, x0, dx, h, weights)  # pairs:K, if any
    where = _free_parts(library)
    parts = library_parts(library)
    if not where or all(parts[i].refined for i in where):
        return library
    xr, dxr, hr = compress_transitions(x0, dx, h, weights)
    norm = jnp.asarray(float(np.sqrt(np.sum(np.sum(dxr**2, axis=1) / hr))) or 1.0)
    args = (library, where, *(jnp.asarray(a) for a in _padded(xr, dxr, hr)), norm)
    single = len(where) == 1
    nested = (
        nested_from is not None and single and nested_from.dim == parts[where[0]].dim
        and nested_from.n_terms <= parts[where[0]].n_terms
    )  # fmt: skip

    def start_of(placed):
        return tuple((p.centres, p.matrices) for p in placed)

    forced = []  # searched whatever their screening score
    if nested:
        forced.append(start_of([nested_from.grown(states, parts[where[0]].n_terms, seed)]))
    elif all(parts[i].centres.any() for i in where):
        forced.append(start_of([parts[i] for i in where]))
    kmeans = [
        [ExpQuadratics.placeholder(parts[i].dim, parts[i].n_terms).adapt(states, seed + r)
         for i in where]
        for r in range(SCREENED)
    ]  # fmt: skip
    groups = [[start_of(placed) for placed in kmeans]]
    if single and parts[where[0]].n_terms > 1:  # M − 1 wells on the data and a background
        part = parts[where[0]]
        fewer = [ExpQuadratics.placeholder(part.dim, part.n_terms - 1).adapt(states, seed + r)
                 for r in range(SCREENED // 2)]  # fmt: skip
        groups.append([start_of([p.with_background(states, sign)])
                       for sign in (-1.0, 1.0) for p in fewer])  # fmt: skip
    if anchors is not None and single and len(anchors):
        groups.append([start_of([parts[where[0]].anchored(states, np.asarray(anchors), seed)])])
    searched = list(forced)
    ranked = []
    for group in groups:  # the best placement of each group, then the best of the rest
        group = [g for g in group if not any(_same(g, f) for f in forced)]
        if not group:
            continue
        scores = _screen(group, args)
        order = [int(k) for k in np.argsort(scores, kind="stable") if np.isfinite(scores[k])]
        searched += [group[k] for k in order[:1]]
        ranked += [(scores[k], group[k]) for k in order[1:]]
    ranked.sort(key=lambda item: item[0])
    searched += [g for _, g in ranked[: max(restarts - len(searched), 0)]]
    best, best_loss = None, np.inf
    for start in searched:
        value, loss = _search(start, args, max_steps)
        if loss < best_loss:
            best, best_loss = value, loss
    if best is not None and single and parts[where[0]].n_terms > 1:
        part = parts[where[0]]
        empty = ExpQuadratics.placeholder(part.dim, 0)
        moves = [k[0] for k in kmeans] + [empty.with_background(states, s) for s in (-1.0, 1.0)]
        pool = np.concatenate([np.asarray(p.centres) for p in moves])
        fresh = np.concatenate([np.asarray(p.matrices) for p in moves])
        for _ in range(SWAP_ROUNDS):
            swaps = _swaps(best, pool, fresh)
            scores = _screen(swaps, args)
            if not np.isfinite(scores.min()):
                break
            value, loss = _search(swaps[int(np.argmin(scores))], args, max_steps)
            if not loss < best_loss:
                break
            best, best_loss = value, loss
    if best is None:
        raise FloatingPointError(
            "variable projection: every placement of the exponentiated quadratics gave a "
            "non-finite loss; try fewer terms or rescale the data"
        )
    return _set_free(library, where, best, refined=True)


__all__ = ["free_parameter_count", "refine_free_parameters"]
