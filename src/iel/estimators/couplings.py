"""Couplings between consecutive snapshots of a population (THEORY §5).

Exact optimal transport (POT's network simplex, squared Euclidean cost) between the empirical
measures of two snapshots; the plan is turned into one destination per source particle by its
barycentric projection ``T(x_i) = Σ_j P_ij y_j / Σ_j P_ij``.  For equal sizes and uniform
weights the exact plan is a permutation, so the projection pairs each particle with one
particle of the next snapshot.  When the step map ``x ↦ x − τ∇V(x)`` is the gradient of a
convex function (``τ ∇²V ≺ I``), Brenier's theorem makes this pairing the true one.
"""

from __future__ import annotations

import numpy as np
import ot

EXACT_LIMIT = 6000  # particles per block for the end-state assignment's exact solves
EXACT_ENTRIES = 1.6e8  # n·m above which the exact solver's dense cost and plan (16·n·m B) get big
COUPLINGS = ("auto", "exact", "sinkhorn")


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


def entropic_targets(source: np.ndarray, target: np.ndarray, epsilon: float | None = None):
    """Barycentric destinations under OTT-JAX's entropic plan, and the ``ε`` used.

    ``ε`` defaults to ``10⁻³ ×`` the mean squared distance between the two populations' points:
    the plan blurs each destination over a radius ``≈ √ε``.  Dense Sinkhorn in float32."""
    import jax
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    if epsilon is None:
        spread = np.var(source, axis=0).sum() + np.var(target, axis=0).sum()
        shift = np.sum((source.mean(axis=0) - target.mean(axis=0)) ** 2)
        epsilon = 1e-3 * float(spread + shift)
    geom = pointcloud.PointCloud(
        jnp.asarray(source, jnp.float32), jnp.asarray(target, jnp.float32), epsilon=epsilon
    )
    # OTT broadcasts ranks and mixes dtypes implicitly: allow that here only
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        solve = sinkhorn.Sinkhorn(max_iterations=5000, threshold=1e-3)
        out = solve(linear_problem.LinearProblem(geom))
        moved = np.asarray(out.apply(jnp.asarray(target.T, jnp.float32), axis=1)).T
        mass = np.asarray(out.apply(jnp.ones((1, len(target)), jnp.float32), axis=1)).T
    if not bool(out.converged):
        raise RuntimeError(
            f"Sinkhorn did not converge in 5000 iterations at ε = {epsilon:.3g}; raise ε or use "
            "coupling='exact'"
        )
    return moved.astype(float) / np.maximum(mass, 1e-30), epsilon


def couple(source: np.ndarray, target: np.ndarray, method: str = "auto",
           epsilon: float | None = None) -> tuple[np.ndarray, str]:  # fmt: skip
    """Destinations of the ``source`` particles in ``target`` and a line saying how.

    ``method``: ``"exact"`` (network simplex; the monotone rearrangement on the line),
    ``"sinkhorn"`` (entropic, OTT-JAX) or ``"auto"``: exact on the line and while the dense
    cost matrix fits (``n·m ≤ EXACT_ENTRIES``), entropic beyond.  On a CPU the exact solver is
    the faster one wherever it fits (``benchmarks/snapshot_estimators.py`` measures both), so
    ``auto`` turns to Sinkhorn only for memory."""
    n, m = len(source), len(target)
    if method not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {method!r}")
    line = source.shape[1] == 1
    if method == "auto":
        method = "exact" if line or n * m <= EXACT_ENTRIES else "sinkhorn"
        if method == "sinkhorn":
            print(
                f"coupling: {n} × {m} particles exceed the exact solver's memory here "
                f"({EXACT_ENTRIES:.2g} cost entries); using entropic (Sinkhorn) couplings"
            )
    if method == "sinkhorn":
        dest, eps = entropic_targets(source, target, epsilon)
        return dest, f"entropic optimal transport, Sinkhorn ε = {eps:.3g} ({n} → {m} particles)"
    if line:
        plan = exact_plan_1d(source, target)
        how = f"exact optimal transport on the line, monotone rearrangement ({n} → {m} particles)"
    else:
        plan = exact_plan(source, target)
        how = f"exact optimal transport ({n} → {m} particles, squared Euclidean cost)"
    return barycentric_targets(plan, target), how
