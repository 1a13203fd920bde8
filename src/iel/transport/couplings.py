"""Couplings between consecutive snapshots of a population (THEORY §5).

Exact optimal transport (POT's network simplex, squared Euclidean cost) between the empirical
measures of two snapshots; the plan is turned into one destination per source particle by its
barycentric projection ``T(x_i) = Σ_j P_ij y_j / Σ_j P_ij``.  For equal sizes and uniform
weights the exact plan is a permutation, so the projection pairs each particle with one
particle of the next snapshot.  When the step map ``x ↦ x − τ∇V(x)`` is the gradient of a
convex function (``τ ∇²V ≺ I``), Brenier's theorem makes this pairing the true one.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import ot

from .minibatch import MINIBATCH, minibatch_targets

EXACT_LIMIT = 6000  # particles per block for the end-state assignment's exact solves
EXACT_ENTRIES = 1.6e8  # n·m above which the exact solver's dense cost and plan (16·n·m B) get big
# Sinkhorn computes its cost a block of about this many entries at a time (the whole kernel
# when it is smaller): memory ~4·ONLINE_BLOCK B in float32 however many particles
ONLINE_BLOCK = 2**24
COUPLINGS = ("auto", "exact", "sinkhorn", "minibatch")


# the last few minibatch couplings, by the digest of their inputs: a fit couples the same
# snapshots for the regime test, the pairs and the temperature, and at 10⁵ particles each
# coupling takes seconds
REMEMBERED = 8
_remembered: OrderedDict = OrderedDict()

SINKHORN_ITERATIONS, SINKHORN_THRESHOLD = 5000, 1e-3
SCALING_ITERATIONS = 50  # at most, for each ε of the scaling before the last


class CouplingError(RuntimeError):
    """An entropic coupling that did not converge (raise ε, or use the exact solver)."""


def exact_plan(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The exact optimal plan (``n × m``, rows sum to ``1/n``) for squared Euclidean cost."""
    n, m = len(source), len(target)
    cost = ot.dist(source, target, metric="sqeuclidean")
    plan = ot.emd(np.full(n, 1.0 / n), np.full(m, 1.0 / m), cost, numItermax=10_000_000)
    return np.asarray(plan)


def exact_plan_1d(source: np.ndarray, target: np.ndarray):
    """The exact plan on the line (monotone rearrangement, ``O(n log n)``), as a sparse array."""
    n, m = len(source), len(target)
    return ot.emd_1d(source[:, 0], target[:, 0], np.full(n, 1.0 / n), np.full(m, 1.0 / m),
                     dense=False).tocsr()  # fmt: skip


def barycentric_targets(plan, target: np.ndarray) -> np.ndarray:
    """``T(x_i) = Σ_j P_ij y_j / Σ_j P_ij``: one destination per source particle."""
    mass = np.asarray(plan.sum(axis=1)).reshape(-1, 1)
    return np.asarray(plan @ target) / np.maximum(mass, 1e-300)


def online_rows(n: int, m: int) -> int:
    """Rows of the cost computed at a time for an ``n × m`` Sinkhorn problem: all ``n`` (the
    whole kernel at once) up to :data:`ONLINE_BLOCK` entries, blocks of about that many
    entries beyond, so memory stays flat however many particles."""
    return min(n, max(1, ONLINE_BLOCK // max(m, 1)))


def sinkhorn_epsilon(source: np.ndarray, target: np.ndarray) -> float:
    """The default entropic blur: ``10⁻³ ×`` the mean squared distance between the two
    populations' points (sum of both variances and the squared shift of the means)."""
    spread = np.var(source, axis=0).sum() + np.var(target, axis=0).sum()
    shift = np.sum((source.mean(axis=0) - target.mean(axis=0)) ** 2)
    return 1e-3 * float(spread + shift)


def entropic_targets(source: np.ndarray, target: np.ndarray, epsilon: float | None = None,
                     rows: int | None = None):  # fmt: skip
    """Barycentric destinations under the entropic plan, and the ``ε`` used.

    ``ε`` defaults to :func:`sinkhorn_epsilon`: the plan blurs each destination over a radius
    ``≈ √ε``.  Solved by :func:`blockwise_sinkhorn_targets` in float32, ``rows`` cost rows at
    a time (default :func:`online_rows`).  OTT-JAX's dense Sinkhorn reaches the same plan (a
    test compares them) but was the slower one at every size measured on a 2-core CPU — 800
    to 16 000 particles per snapshot, ``python benchmarks/snapshot_estimators.py --large N``
    — and its online point clouds, which would keep memory flat, fail on JAX 0.10."""
    epsilon = sinkhorn_epsilon(source, target) if epsilon is None else epsilon
    rows = online_rows(len(source), len(target)) if rows is None else rows
    return blockwise_sinkhorn_targets(source, target, epsilon, rows), epsilon


def blockwise_sinkhorn_targets(source: np.ndarray, target: np.ndarray, epsilon: float,
                               rows: int) -> np.ndarray:  # fmt: skip
    """Barycentric destinations under the entropic plan, the cost computed ``rows`` source
    particles at a time (memory ``O(rows · m)``, not ``O(n · m)``).

    Log-domain Sinkhorn for uniform weights ``a = 1/n``, ``b = 1/m`` and ``C_ij = ‖x_i − y_j‖²``:

        ``f_i = −ε log Σ_j b_j exp((g_j − C_ij)/ε)``,  ``g_j = −ε log Σ_i a_i exp((f_i − C_ij)/ε)``,

    the second summed block by block with a running log-sum-exp, until the row marginals are
    within ``Σ_i |a'_i − a_i| ≤ 10⁻³`` (OTT's default threshold), after ε-scaling: ε halved
    from the populations' spread down to its target, a few iterations each.  Destination
    ``T(x_i) = Σ_j softmax_j((g_j − C_ij)/ε + log b_j) y_j``.  OTT's own online point clouds
    would do this, but OTT 0.6 calls ``jax.interpreters.batching.is_vmappable``, which JAX
    0.10 no longer has."""
    n, d = len(source), source.shape[1]
    rows = min(rows, n)
    pad = (-n) % rows
    x = jnp.asarray(np.concatenate([source, np.zeros((pad, d))]), jnp.float32)
    log_a = np.concatenate([np.full(n, -np.log(n)), np.full(pad, -np.inf)]).reshape(-1, rows)
    # ε-scaling: halve ε from the populations' spread down to the one asked for, a few
    # iterations each, so that the last stage starts near its solution
    spread = float(np.var(source, axis=0).sum() + np.var(target, axis=0).sum()) or 1.0
    stages = max(0, int(np.ceil(np.log2(max(spread / epsilon, 1.0)))))
    schedule = jnp.asarray(epsilon * 2.0 ** np.arange(stages, 0, -1), jnp.float32)
    moved, error = _blockwise_sinkhorn(
        x.reshape(-1, rows, d), jnp.asarray(log_a, jnp.float32), jnp.asarray(target, jnp.float32),
        jnp.float32(epsilon), schedule, scaling_iterations=SCALING_ITERATIONS,
        iterations=SINKHORN_ITERATIONS, threshold=SINKHORN_THRESHOLD,
    )  # fmt: skip
    if not float(error) <= SINKHORN_THRESHOLD:
        raise CouplingError(
            f"Sinkhorn did not converge in {SINKHORN_ITERATIONS} iterations at ε = "
            f"{epsilon:.3g}; raise ε or use coupling='exact'"
        )
    return np.asarray(moved, dtype=float).reshape(-1, d)[:n]


@functools.partial(jax.jit, static_argnames=("scaling_iterations", "iterations", "threshold"))
def _blockwise_sinkhorn(x, log_a, y, epsilon, schedule, *, scaling_iterations: int,
                        iterations: int, threshold: float):  # fmt: skip
    """:func:`blockwise_sinkhorn_targets`' solve, compiled once per shape (``x``: source
    blocks ``(blocks, rows, d)``, ``log_a`` their log weights, ``-inf`` on padding; ``y`` the
    target; ``schedule`` the ε-scaling stages before ``epsilon``): ``(destinations by block,
    final marginal error)``."""
    m = y.shape[0]
    log_b = jnp.full(m, -jnp.log(m), jnp.float32)

    def cost(block):
        return jnp.sum(block**2, 1)[:, None] + jnp.sum(y**2, 1)[None] - 2 * block @ y.T

    def row_logits(g, eps):  # (blocks, rows, m) would be the whole kernel: a block at a time
        return lambda block: (g[None] - cost(block)) / eps + log_b[None]

    def f_of(g, eps):
        return jax.lax.map(lambda block: -eps * jax.nn.logsumexp(row_logits(g, eps)(block), 1),
                           x)  # fmt: skip

    def g_of(f, eps):
        def add(total, args):
            block, f_block, log_a_block = args
            z = (f_block[:, None] - cost(block)) / eps + log_a_block[:, None]
            return jnp.logaddexp(total, jax.nn.logsumexp(z, 0)), None

        return -eps * jax.lax.scan(add, jnp.full(m, -jnp.inf, jnp.float32), (x, f, log_a))[0]

    def iterate(eps):
        def one(state):
            f, _, _, k = state
            g = g_of(f, eps)
            new_f = f_of(g, eps)
            error = jnp.sum(jnp.exp(log_a) * jnp.abs(jnp.expm1((f - new_f) / eps)))
            return new_f, g, error, k + 1

        return one

    def run(f, eps, limit, tolerance):
        start = (f, jnp.zeros(m, jnp.float32), jnp.float32(jnp.inf), 0)
        return jax.lax.while_loop(lambda s: (s[2] > tolerance) & (s[3] < limit), iterate(eps),
                                  start)  # fmt: skip

    def stage(f, eps):
        return run(f, eps, scaling_iterations, 10 * threshold)[0], None

    f = jax.lax.scan(stage, jnp.zeros(x.shape[:2], jnp.float32), schedule)[0]
    _, g, error, _ = run(f, epsilon, iterations, threshold)
    moved = jax.lax.map(lambda block: jax.nn.softmax(row_logits(g, epsilon)(block), 1) @ y, x)
    return moved, error


def auto_coupling(n: int, m: int, d: int) -> tuple[str, str]:
    """The coupling ``auto`` picks for ``n → m`` particles in ``d`` coordinates, and why.

    Exact on the line (the monotone rearrangement, ``O(n log n)`` whatever ``n``) and while
    the dense cost matrix fits (``n·m ≤ EXACT_ENTRIES``); minibatch exact OT beyond
    (:mod:`.minibatch`: blocks of :data:`MINIBATCH`, memory flat in ``n``; 10⁵ particles in
    d = 30 couple in seconds where Sinkhorn took minutes at 1.6·10⁴)."""
    if d == 1:
        return "exact", f"{n} → {m} particles on the line: the monotone rearrangement"
    if n * m <= EXACT_ENTRIES:
        return "exact", (f"{n} × {m} particles: the exact plan's cost matrix ({_bytes(8 * n * m)})"
                         f" is within {EXACT_ENTRIES:.2g} entries")  # fmt: skip
    return "minibatch", (
        f"{n} × {m} particles; exact needs {_bytes(8 * n * m)} of cost matrix (over "
        f"{EXACT_ENTRIES:.2g} entries); minibatch exact OT of {min(MINIBATCH, n)} particles per "
        f"block ({_bytes(16 * min(MINIBATCH, n) * min(MINIBATCH, m))} per block), blocks cut "
        "locally and repaired by sweeps"
    )


def _bytes(size: float) -> str:
    """``80 GB``, ``64 MB``: a size in bytes, decimal units."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def _digest(points: np.ndarray) -> tuple:
    array = np.ascontiguousarray(points, dtype=float)
    return array.shape, hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()


def couple(source: np.ndarray, target: np.ndarray, method: str = "auto",
           epsilon: float | None = None) -> tuple[np.ndarray, str]:  # fmt: skip
    """Destinations of the ``source`` particles in ``target`` and a line saying how.

    ``method``: ``"exact"`` (network simplex; the monotone rearrangement on the line),
    ``"sinkhorn"`` (entropic, :func:`entropic_targets`), ``"minibatch"`` (exact plans of
    local blocks, :func:`.minibatch.minibatch_targets`; memory flat in the particles) or
    ``"auto"`` (:func:`auto_coupling`: exact on the line and while the dense cost matrix
    fits, minibatch beyond; the choice and its reason are printed).  On a CPU the exact
    solver is the faster one wherever it fits (``benchmarks/snapshot_estimators.py``
    measures it against Sinkhorn), so ``auto`` leaves it only for memory."""
    n, m = len(source), len(target)
    if method not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {method!r}")
    line = source.shape[1] == 1
    if method == "auto":
        method, why = auto_coupling(n, m, source.shape[1])
        if method != "exact":
            print(f"coupling: {why}")
    if method == "minibatch" and not line:
        key = (_digest(source), _digest(target))
        if key in _remembered:
            _remembered.move_to_end(key)
            dest, how = _remembered[key]
            return dest.copy(), how
        dest, report = minibatch_targets(source, target)
        how = (
            f"minibatch exact optimal transport ({n} → {m} particles in {report.blocks} exact "
            f"blocks of at most {report.largest_block[0]} × {report.largest_block[1]}, "
            f"{report.sweeps} repair sweep(s); mean squared displacement "
            f"{report.costs[0]:.4g} → {report.costs[-1]:.4g})"
        )
        _remembered[key] = (dest.copy(), how)
        while len(_remembered) > REMEMBERED:
            _remembered.popitem(last=False)
        return dest, how
    if method == "sinkhorn":
        dest, eps = entropic_targets(source, target, epsilon)
        rows = online_rows(n, m)
        held = f", the cost computed {rows} rows at a time" if rows < n else ""
        return dest, (f"entropic optimal transport, Sinkhorn ε = {eps:.3g} ({n} → {m} "
                      f"particles{held})")  # fmt: skip
    if line:
        plan = exact_plan_1d(source, target)
        how = f"exact optimal transport on the line, monotone rearrangement ({n} → {m} particles)"
    else:
        plan = exact_plan(source, target)
        how = f"exact optimal transport ({n} → {m} particles, squared Euclidean cost)"
    return barycentric_targets(plan, target), how
