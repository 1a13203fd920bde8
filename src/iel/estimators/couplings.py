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

EXACT_LIMIT = 6000  # particles per snapshot above which the exact solver gets slow here


def exact_plan(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The exact optimal plan (``n × m``, rows sum to ``1/n``) for squared Euclidean cost."""
    n, m = len(source), len(target)
    cost = ot.dist(source, target, metric="sqeuclidean")
    plan = ot.emd(np.full(n, 1.0 / n), np.full(m, 1.0 / m), cost, numItermax=10_000_000)
    return np.asarray(plan)


def barycentric_targets(plan: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``T(x_i) = Σ_j P_ij y_j / Σ_j P_ij``: one destination per source particle."""
    mass = plan.sum(axis=1, keepdims=True)
    return (plan @ target) / np.maximum(mass, 1e-300)


def couple(source: np.ndarray, target: np.ndarray, method: str = "auto") -> tuple[np.ndarray, str]:
    """Destinations of the ``source`` particles in ``target`` and a line saying how."""
    n, m = len(source), len(target)
    if method not in ("auto", "exact"):
        raise ValueError(
            f"coupling must be 'auto' or 'exact', got {method!r} (entropic couplings for very "
            "large populations are not available yet)"
        )
    if method == "auto" and max(n, m) > EXACT_LIMIT:
        raise ValueError(
            f"snapshots of {max(n, m)} particles exceed the exact solver's limit here "
            f"({EXACT_LIMIT}); subsample them (entropic couplings are not available yet)"
        )
    plan = exact_plan(source, target)
    how = f"exact optimal transport ({n} → {m} particles, squared Euclidean cost)"
    return barycentric_targets(plan, target), how
