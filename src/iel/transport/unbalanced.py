"""Couplings between snapshots of a population that grows or shrinks (births and deaths).

A balanced plan moves the whole mass of one snapshot onto the next: where cells divide in one
region and die in another, mass appears there without any particle moving, and the balanced
plan invents a drift toward the growing region.  Two ways out, both ending in one destination
per source particle by the barycentric projection ``T(x_i) = Σ_j P_ij y_j / Σ_j P_ij`` (as in
:mod:`.couplings`), so that a particle's displacement is its descendants' mean position:

**Known growth rates** (:func:`reweighted_plan`).  Particle ``i`` with log growth rate ``g_i``
(per unit time) has ``exp(g_i Δt)`` expected descendants after ``Δt``.  The source marginal is
``a_i ∝ exp(g_i Δt)``, the target uniform ``b_j = 1/m``, and the plan is the exact balanced
optimal plan between them.  The population's relative mass change over the interval is
``Σ_i exp(g_i Δt) / n``.

**Unknown rates: an unbalanced plan** (:func:`unbalanced_plan`).  The semi-relaxed problem

    ``min_{P ≥ 0} ⟨C, P⟩ + ε KL(P ‖ a bᵀ) + λ KL(P1 ‖ a)``   subject to ``Pᵀ1 = b``,

``C_ij = ‖x_i − y_j‖²``, with every particle the same mass in both snapshots (``a_i = b_j =
1/n``, so the target's total is ``m/n``).  The target is matched exactly (each observed
particle has an ancestor) while the source marginal may deviate from ``a`` at the price ``λ``
(POT's ``reg_m``) per unit of KL divergence: the row sums ``n Σ_j P_ij`` are the estimated
descendants of each source particle.  ``λ`` trades transport against creation: at the optimum
the row mass is ``a_i exp(−f_i/λ)`` for the dual potential ``f_i``, so a region gains mass
by growth rather than by transport from a distance ``D`` when ``D² > λ |Δ log growth|``, and
displacements with ``‖Δx‖² ≪ λ`` are left to transport.  ``λ → ∞`` is the balanced plan (the
entropic one, ``ε → 0`` the exact one); ``λ → 0`` creates every particle where it is seen.
The default ``λ`` is :data:`REG_M_SHARE` times the mean squared distance between the two
snapshots' points (the data's scale), ``ε`` :data:`EPSILON_SHARE` of that scale.  Only the
plan's row sums are kept: they weight an exact balanced plan (as known rates would), whose
barycentric destinations are sharp where the entropic ones are blurred over ``√ε``.  Solved
by POT's generalised Sinkhorn–Knopp (``ot.unbalanced.sinkhorn_unbalanced`` with ``reg_m=(λ,
∞)``; its log-stabilised variant diverged on this semi-relaxed problem in our trials, POT
0.9.7).

Why growth is not detected by default: snapshot sizes are usually sampling choices, so the
total masses are unknown; an unbalanced plan then reads any motion over distances with
``D² > λ |Δ log ρ|`` as growth, and ``λ`` is a modelling choice the data do not fix.  The
balanced plan stays the default; growth is used when rates are given or asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot

from .couplings import CouplingError, barycentric_targets, sinkhorn_epsilon

GROWTH_MODES = ("none", "given", "auto")
REG_M_SHARE = 0.5  # default λ: this share of the mean squared distance between the snapshots
# default ε: this share of it (ten times the balanced Sinkhorn's: only the smooth row sums of
# this plan are used, and the solve converges faster)
EPSILON_SHARE = 1e-2
UNBALANCED_ITERATIONS, UNBALANCED_THRESHOLD = 20_000, 1e-7


def data_scale(source: np.ndarray, target: np.ndarray) -> float:
    """Mean squared distance between a point of each population: the sum of both variances
    and the squared shift of the means (``sinkhorn_epsilon`` is ``10⁻³`` of it)."""
    return sinkhorn_epsilon(source, target) / 1e-3


def default_reg_m(source: np.ndarray, target: np.ndarray) -> float:
    """The default marginal relaxation ``λ = REG_M_SHARE ×`` :func:`data_scale`."""
    return REG_M_SHARE * data_scale(source, target)


def reweighted_plan(source: np.ndarray, target: np.ndarray, descendants: np.ndarray):
    """The exact balanced plan from ``a ∝ descendants`` (``exp(g_i Δt)``) to uniform ``b``
    (squared Euclidean cost; the monotone rearrangement on the line, as a sparse array)."""
    n, m = len(source), len(target)
    a = np.asarray(descendants, dtype=float) / np.sum(descendants)
    b = np.full(m, 1.0 / m)
    if source.shape[1] == 1:
        return ot.emd_1d(source[:, 0], target[:, 0], a, b, dense=False).tocsr()
    cost = ot.dist(source, target, metric="sqeuclidean")
    return np.asarray(ot.emd(a, b, cost, numItermax=10_000_000)).reshape(n, m)


def unbalanced_plan(source: np.ndarray, target: np.ndarray, reg_m: float | None = None,
                    epsilon: float | None = None) -> tuple[np.ndarray, float, float]:  # fmt: skip
    """The semi-relaxed entropic plan of the module docstring, with the ``λ`` and ``ε`` used:
    ``(P, λ, ε)``; every particle has mass ``1/n`` (``n`` the source's size), the target's
    marginal is matched exactly, the source's relaxed with weight ``λ``."""
    n, m = len(source), len(target)
    reg_m = default_reg_m(source, target) if reg_m is None else float(reg_m)
    epsilon = EPSILON_SHARE * data_scale(source, target) if epsilon is None else float(epsilon)
    if not (np.isfinite(reg_m) and reg_m > 0):
        raise ValueError(f"reg_m: expected a finite marginal relaxation > 0, got {reg_m}")
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon: expected a finite entropic blur > 0, got {epsilon}")
    cost = ot.dist(source, target, metric="sqeuclidean")
    plan, log = ot.unbalanced.sinkhorn_unbalanced(
        np.full(n, 1.0 / n), np.full(m, 1.0 / n), cost, epsilon, (reg_m, np.inf),
        method="sinkhorn", numItermax=UNBALANCED_ITERATIONS,
        stopThr=UNBALANCED_THRESHOLD, log=True,
    )  # fmt: skip
    plan = np.asarray(plan)
    column_error = np.abs(plan.sum(axis=0) * n - 1.0).max()
    if not (np.all(np.isfinite(plan)) and column_error < 1e-3 and plan.sum(axis=1).min() > 0):
        raise CouplingError(
            f"the unbalanced Sinkhorn did not converge (ε = {epsilon:.3g}, reg_m = {reg_m:.3g}; "
            f"target marginal off by {column_error:.2g}): raise epsilon or reg_m"
        )
    return plan, reg_m, epsilon


@dataclass(frozen=True)
class GrowthCoupling:
    """Destinations of the source particles and what the plan says about growth.

    Attributes:
        destinations: ``(n, d)`` barycentric destinations.
        how: one line saying how the plan was made.
        descendants: ``(n,)`` expected descendants of each source particle (row sums of the
            plan relative to the particle's source mass ``1/n``).
        mass_change: the plan's total mass relative to the source's, ``mean(descendants)``.
    """

    destinations: np.ndarray
    how: str
    descendants: np.ndarray
    mass_change: float


def couple_with_growth(source: np.ndarray, target: np.ndarray, descendants=None, *,
                       reg_m: float | None = None,
                       epsilon: float | None = None) -> GrowthCoupling:  # fmt: skip
    """Couple ``source`` to ``target`` allowing for growth: with ``descendants``
    (``exp(g_i Δt)`` from known rates) the reweighted balanced plan, without them the
    unbalanced plan (module docstring)."""
    n, m = len(source), len(target)
    if descendants is not None:
        descendants = np.asarray(descendants, dtype=float)
        if descendants.shape != (n,) or not np.all(np.isfinite(descendants) & (descendants > 0)):
            raise ValueError(f"descendants: expected {n} finite positive numbers, got "
                             f"shape {descendants.shape}")  # fmt: skip
        plan = reweighted_plan(source, target, descendants)
        how = (f"exact optimal transport from the source weighted by its expected descendants "
               f"exp(g·Δt) to the uniform target ({n} → {m} particles)")  # fmt: skip
        return GrowthCoupling(barycentric_targets(plan, target), how, descendants,
                              float(np.mean(descendants)))  # fmt: skip
    plan, reg_m, epsilon = unbalanced_plan(source, target, reg_m, epsilon)
    rows = plan.sum(axis=1) * n
    # the entropic plan blurs destinations over √ε; its row sums are smooth, so they weight an
    # exact plan whose barycentric destinations are sharp
    sharp = reweighted_plan(source, target, np.maximum(rows, 1e-12 * rows.max()))
    how = (f"descendants per particle from unbalanced entropic optimal transport (source "
           f"marginal relaxed with KL weight reg_m = {reg_m:.3g}, target matched, ε = "
           f"{epsilon:.3g}), then exact optimal transport from the source weighted by them "
           f"({n} → {m} particles)")  # fmt: skip
    return GrowthCoupling(barycentric_targets(sharp, target), how, rows, float(np.mean(rows)))


def growth_summary(times: np.ndarray, couplings: list[GrowthCoupling]) -> list[dict]:
    """Per consecutive pair of times: the relative mass change (plan mass / source mass) and
    the spread of the descendants per source particle (10 %, 50 %, 90 % quantiles)."""
    rows = []
    for k, c in enumerate(couplings):
        q10, q50, q90 = np.quantile(c.descendants, [0.1, 0.5, 0.9])
        rows.append({"from": float(times[k]), "to": float(times[k + 1]),
                     "mass_change": c.mass_change,
                     "descendants_quantiles": [float(q10), float(q50), float(q90)]})  # fmt: skip
    return rows


GROWTH_ASSUMPTIONS = {
    "none": "balanced: no births or deaths between snapshots (every observed change of "
    "density is motion)",
    "given": "growth at the given per-cell rates: a cell has exp(g·Δt) expected descendants, "
    "and the plan is balanced between those weights and the next snapshot",
    "unbalanced": "births and deaths estimated by unbalanced optimal transport (source "
    "marginal relaxed, KL weight reg_m): density changes over distances D with "
    "D² > reg_m·|Δ log ρ| are read as growth, shorter ones as motion",
}


@dataclass(frozen=True)
class Growth:
    """How consecutive snapshots are coupled for growth: ``mode`` ``"none"`` (balanced),
    ``"given"`` (``rates``: one array of log growth rates per snapshot, ``gaps`` the time to
    the next) or ``"unbalanced"`` (``reg_m``: the KL weight, ``None`` for the default)."""

    mode: str
    rates: list | None = None
    gaps: np.ndarray | None = None
    reg_m: float | None = None

    @property
    def active(self) -> bool:
        return self.mode != "none"

    @property
    def assumption(self) -> str:
        return GROWTH_ASSUMPTIONS[self.mode]

    def couple(self, k: int, source: np.ndarray, target: np.ndarray) -> GrowthCoupling:
        """Snapshot ``k`` (or positions standing for its particles) coupled to ``target``."""
        if self.mode == "given":
            return couple_with_growth(source, target, np.exp(self.rates[k] * self.gaps[k]))
        if self.mode == "unbalanced":
            return couple_with_growth(source, target, reg_m=self.reg_m)
        raise ValueError("balanced couplings are made by iel.transport.couplings.couple")


def resolve_growth(growth: str | None, rates: list | None, times: np.ndarray,
                   reg_m: float | None = None) -> tuple[Growth, str]:  # fmt: skip
    """The :class:`Growth` for the option ``growth`` and the snapshots' ``rates`` (or
    ``None``), with a line saying why.

    ``None`` (the default): ``"given"`` when the snapshots carry growth rates, balanced
    otherwise.  ``"none"``: balanced.  ``"given"``: the snapshots' rates (an error without
    them).  ``"auto"``: the given rates, or an unbalanced plan without them."""
    if growth not in (None, *GROWTH_MODES):
        raise ValueError(f"growth must be one of {GROWTH_MODES} (or None), got {growth!r}")
    if reg_m is not None and not (np.isfinite(reg_m) and reg_m > 0):
        raise ValueError(f"reg_m: expected a finite marginal relaxation > 0, got {reg_m}")
    gaps = np.diff(times)
    if growth == "given" and rates is None:
        raise ValueError("growth='given' needs growth rates: Snapshots(x, t, growth_rate=g) "
                         "(iel.growth_rate_from_scores makes them from proliferation and "
                         "apoptosis scores); or growth='auto' for an unbalanced plan")  # fmt: skip
    if growth == "none" or (growth is None and rates is None):
        why = ("asked for (the snapshots' growth rates are not used)" if rates is not None
               and growth == "none" else "asked for" if growth == "none" else
               "the default without growth rates: snapshot sizes are usually sampling "
               "choices, so births and deaths are not detected unless asked for "
               "(growth='auto')")  # fmt: skip
        return Growth("none"), f"balanced couplings: {why}"
    if rates is not None:
        return Growth("given", rates, gaps), "growth from the snapshots' given rates"
    return Growth("unbalanced", reg_m=reg_m), "growth='auto' without rates: unbalanced couplings"
