"""Sparse formula search by description length, and snapping of constants.

Greedy forward–backward selection over the terms of a linear model: add the term that shortens
the two-part code most, then drop any term whose removal shortens it, until no move helps.  No
threshold is set by hand: a term stays only if the bits it saves in the data code exceed its
own cost.  Then each coefficient is tried as a simple rational ``p/q`` (the others refitted
given it); the snap is kept when the total code gets shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .codes import (
    CodeLength,
    Stats,
    linear_code_parts,
    two_part_linear,
)

DENOMINATORS = (1, 2, 3, 4, 5, 6, 8, 10)
# libraries up to this many terms are also searched from the dense fit (backward); above it the
# backward pass costs seconds (every trial solved alone on an ill-conditioned Gram block)
BACKWARD_LIBRARY = 30


def solve_support(stats: Stats, support: list[int], fixed: dict[int, float] | None = None):
    """Least squares on ``support`` with some coefficients ``fixed`` (by library index)."""
    fixed = fixed or {}
    free = [j for j in support if j not in fixed]
    theta = np.zeros(len(support))
    pos = {j: i for i, j in enumerate(support)}
    for j, v in fixed.items():
        theta[pos[j]] = v
    if free:
        a = stats.gram[np.ix_(free, free)]
        rhs = stats.rhs[free].copy()
        for j, v in fixed.items():
            rhs -= stats.gram[free, j] * v
        scale = 1.0 / np.sqrt(np.maximum(np.diag(a), 1e-300))
        sol = np.linalg.lstsq(a * scale[:, None] * scale[None, :], rhs * scale, rcond=1e-13)[0]
        for i, j in enumerate(free):
            theta[pos[j]] = sol[i] * scale[i]
    return theta


def solve_supports(stats: Stats, supports: np.ndarray) -> np.ndarray:
    """:func:`solve_support` on each row of ``(m, k)`` supports, one by one."""
    return np.array([solve_support(stats, list(row)) for row in supports]).reshape(supports.shape)


WELL_POSED = 1e-9  # eigenvalue ratio of a scaled Gram block above which updates are used
# below this share of the motion (residual / Σ‖Δx‖²/h) a fit is near exact: its residual is
# mostly rounding, and one-term changes are solved afresh rather than updated
NEAR_EXACT = 1e-6


class _SupportFit:
    """The least-squares fit on one support, and every fit one term away from it.

    With ``M = A_SS⁻¹`` known, adding a term ``j`` is a rank-one update (the Schur complement
    ``s_j = A_jj − A_jS M A_Sj``): ``θ_j = (b_j − A_jS θ_S)/s_j``, ``θ_S ← θ_S − M A_Sj θ_j``;
    removing term ``i`` gives ``θ ← θ − θ_i M_{·i}/M_ii``.  Where a block is close to singular
    (scaled eigenvalues or ``s_j/A_jj`` below :data:`WELL_POSED`), or the fit on ``support``
    (its ``code``) is near exact (:data:`NEAR_EXACT`), each fit is solved on its own
    (:func:`solve_supports`) instead — and, near exact, coded on its own too, so that the
    search makes the moves a term-by-term search makes (its residuals are rounding there).
    Residuals are left to the quadratic form ``c − 2θ·b + θᵀAθ``
    (:func:`_quadratic_residuals`), which is stationary at the solution: the updates'
    rounding enters it at second order, where the shortcut ``c − θ·b`` would carry it at
    first order."""

    def __init__(self, stats: Stats, support: list[int], code: CodeLength, updates=True):
        self.stats, self.support = stats, np.asarray(support, dtype=int)
        a = stats.gram[np.ix_(self.support, self.support)]
        scale = 1.0 / np.sqrt(np.maximum(np.diag(a), 1e-300))
        values, vectors = np.linalg.eigh(a * scale[:, None] * scale[None, :])
        # near exact, or asked to: every trial solved and coded alone
        self.alone = code.details["residual"] < NEAR_EXACT * stats.sq_over_h or not updates
        well_posed = len(support) == 0 or values[0] > WELL_POSED * values[-1]
        self.by_updates = well_posed and not self.alone
        if self.by_updates:
            self.inverse = scale[:, None] * ((vectors / values) @ vectors.T) * scale[None, :]
            self.theta = self.inverse @ stats.rhs[self.support]

    def extended(self, outside: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(supports, thetas)`` of the fits on ``sorted(support + [j])`` for each ``j`` in
        ``outside``."""
        stats, support = self.stats, self.support
        supports = np.column_stack([np.tile(support, (len(outside), 1)), outside]).astype(int)
        order = np.argsort(supports, axis=1)
        supports = np.take_along_axis(supports, order, axis=1)
        if not self.by_updates:
            return supports, solve_supports(stats, supports)
        cross = stats.gram[np.ix_(support, outside)]  # (k, m)
        u = self.inverse @ cross
        diagonal = stats.gram[outside, outside]
        schur = diagonal - np.sum(cross * u, axis=0)
        gain = stats.rhs[outside] - cross.T @ self.theta
        safe = schur > WELL_POSED * diagonal
        added = np.where(safe, gain / np.where(safe, schur, 1.0), 0.0)
        thetas = np.column_stack([self.theta[None, :] - (u * added).T, added])
        thetas = np.take_along_axis(thetas, order, axis=1)
        if not np.all(safe):
            thetas[~safe] = solve_supports(stats, supports[~safe])
        return supports, thetas

    def reduced(self) -> tuple[np.ndarray, np.ndarray]:
        """``(supports, thetas)`` of the fits with each term left out in turn."""
        k = len(self.support)
        keep = ~np.eye(k, dtype=bool)
        supports = np.array([self.support[row] for row in keep]).reshape(k, k - 1)
        if not self.by_updates:
            return supports, solve_supports(self.stats, supports)
        weight = self.theta / np.diag(self.inverse)
        thetas = self.theta[None, :] - weight[:, None] * self.inverse.T
        return supports, thetas[keep].reshape(k, k - 1)


def _quadratic_residuals(stats: Stats, supports: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """``c − 2θ·b + θᵀAθ`` for each row of ``(m, k)`` supports and coefficients."""
    gram = stats.gram[supports[:, :, None], supports[:, None, :]]
    quadratic = np.einsum("mi,mij,mj->m", thetas, gram, thetas)
    return stats.sq_over_h - 2 * np.einsum("mi,mi->m", thetas, stats.rhs[supports]) + quadratic


@dataclass
class SparseResult:
    support: list[int]
    theta: np.ndarray
    code: CodeLength
    snapped: dict[int, tuple[int, int]]  # library index -> (p, q)
    path: list[tuple[str, int, float]]  # (move, term, total bits)


@dataclass(frozen=True)
class FreeParameters:
    """Nonlinear parameters some library terms were fitted with (a scanned Fourier length):
    ``count`` of them, charged in a sparse model's code only when its support holds one of
    ``terms`` (library indices)."""

    count: int = 0
    terms: frozenset[int] = frozenset()

    def charged(self, support) -> int:
        return self.count if any(j in self.terms for j in support) else 0


class _Coder:
    def __init__(self, stats: Stats, n_library: int, epsilon: float, h_mean: float, temperature,
                 free: FreeParameters = FreeParameters()):  # fmt: skip
        self.stats, self.n_library = stats, n_library
        self.epsilon, self.h_mean, self.temperature = epsilon, h_mean, temperature
        self.free = free

    def __call__(self, support, theta, snapped=None) -> CodeLength:
        pos = {j: i for i, j in enumerate(support)}
        local = {pos[j]: pq for j, pq in (snapped or {}).items()}
        return two_part_linear(
            self.stats, np.asarray(support, dtype=int), theta, n_library=self.n_library,
            epsilon=self.epsilon, h_mean=self.h_mean, snapped=local,
            temperature=self.temperature, free_parameters=self.free.charged(support),
        )  # fmt: skip

    def totals(self, supports: np.ndarray, thetas: np.ndarray, one_by_one=False) -> np.ndarray:
        """Total bits of ``m`` fits on supports of equal size at once (no snapped constants);
        ``one_by_one``: each coded on its own, exactly as ``self(support, theta)`` codes it."""
        if one_by_one:
            return np.array([self(list(s), t).total for s, t in zip(supports, thetas)])
        m, k = supports.shape
        parts = linear_code_parts(
            self.stats, supports, thetas, _quadratic_residuals(self.stats, supports, thetas),
            epsilon=self.epsilon, h_mean=self.h_mean, temperature=self.temperature,
            free_parameters=np.array([self.free.charged(row) for row in supports]),
        )  # fmt: skip
        structure = math.log2(math.comb(self.n_library, k)) if self.n_library else 0.0
        quantisation = self.stats.n * math.log2(1.0 / self.epsilon)
        return (parts["data_bits"] + parts["coefficient_bits"].sum(axis=1)
                + parts["free_parameter_bits"] + structure + quantisation)  # fmt: skip


def _first_shorter(coder: _Coder, best: CodeLength, trials):
    """The first of ``trials`` — ``(support, scored bits, term)`` — scored below ``best``
    whose support, solved afresh, also codes shorter: ``(support, code, term)``, or ``None``.

    Scores come from updated fits; far from an exact fit they equal the fresh solves' to
    rounding, so the first trial is taken.  Near one the residual is rounding and the two
    differ; solving afresh before each move keeps every move a strict improvement of the
    same code, so the search ends."""
    for support, bits, term in trials:
        if bits >= best.total - 1e-9:
            continue
        code = coder(support, solve_support(coder.stats, support))
        if code.total < best.total - 1e-9:
            return support, code, term
    return None


def forward_backward(
    stats: Stats,
    *,
    epsilon: float,
    h_mean: float,
    candidates: list[int] | None = None,
    temperature: float | None = None,
    max_terms: int | None = None,
    free: FreeParameters = FreeParameters(),
    updates: bool = True,
    from_dense: bool = True,
) -> SparseResult:
    """Greedy forward–backward search minimising the two-part code (``free``: nonlinear
    parameters charged when the support uses the terms fitted with them).

    The search runs twice: from the empty support (add the best term, drop any term whose
    removal shortens the code) and, with ``from_dense`` (and no ``max_terms``, and at most
    :data:`BACKWARD_LIBRARY` terms), from the full library (drop the best term while that
    shortens the code, then the same forward–backward moves); the shorter code wins.  A
    forward search alone stalls when no single term pays for itself but a group does:
    Styblinski–Tang ``½Σ(x⁴ − 16x² + 5x)`` seen by 5 trajectories near its minima, where
    neither ``x²`` nor ``x⁴`` alone shortens the code, so ``poly:4`` found no formula and
    ``poly:6`` won with ``x⁶`` terms that blow up outside the data (force relMSE ≈ 1.4
    beyond the trajectories' box, against ≈ 0.03 for the formula the backward pass finds).

    ``updates``: score the one-term changes by rank-one updates of the current fit
    (:class:`_SupportFit`); ``False`` solves and codes every trial support on its own — the
    same moves, several times slower on large libraries (``benchmarks/sparse_search.py``)."""
    p = stats.gram.shape[0]
    pool = list(range(p)) if candidates is None else list(candidates)
    coder = _Coder(stats, len(pool), epsilon, h_mean, temperature, free)
    limit = max_terms or len(pool)
    start = coder([], np.zeros(0))
    forward = _search(coder, pool, [], start, [("start", -1, start.total)], limit, updates)
    if not from_dense or max_terms is not None or not 2 <= len(pool) <= BACKWARD_LIBRARY:
        return forward
    support = sorted(pool)
    best = coder(support, solve_support(stats, support))
    path = [("start dense", -1, best.total)]
    while len(support) > 1:  # backward elimination: the best drop while it shortens the code
        fits = _SupportFit(stats, support, best, updates)
        bits = coder.totals(*fits.reduced(), one_by_one=fits.alone)
        order = np.argsort(bits, kind="stable")
        move = _first_shorter(coder, best, (
            ([k for k in support if k != support[i]], bits[i], support[i]) for i in order
        ))  # fmt: skip
        if move is None:
            break
        support, best, dropped = move
        path.append(("drop", dropped, best.total))
    backward = _search(coder, pool, support, best, path, limit, updates)
    return backward if backward.code.total < forward.code.total - 1e-9 else forward


def _search(coder: _Coder, pool: list[int], support: list[int], best: CodeLength,
            path: list, limit: int, updates: bool) -> SparseResult:  # fmt: skip
    """Forward–backward moves from ``support`` (coded ``best``) until no move helps."""
    stats = coder.stats
    while len(support) < limit:
        # every one-term change is scored at once (rank-one updates of the fit); the best
        # scored is then solved afresh and made only if it codes shorter (see _first_shorter)
        outside = [j for j in pool if j not in support]
        if not outside:
            break
        fits = _SupportFit(stats, support, best, updates)
        bits = coder.totals(*fits.extended(outside), one_by_one=fits.alone)
        order = np.argsort(bits, kind="stable")  # ties: the first in pool order
        move = _first_shorter(coder, best, ((sorted(support + [outside[i]]), bits[i], outside[i])
                                            for i in order))  # fmt: skip
        if move is None:
            break
        support, best, added = move
        path.append(("add", added, best.total))
        while len(support) > 1:  # drop the first term whose removal shortens the code
            fits = _SupportFit(stats, support, best, updates)
            bits = coder.totals(*fits.reduced(), one_by_one=fits.alone)
            move = _first_shorter(coder, best, (
                ([k for k in support if k != j], b, j) for j, b in zip(support, bits)
            ))  # fmt: skip
            if move is None:
                break
            support, best, dropped = move
            path.append(("drop", dropped, best.total))
    theta = solve_support(stats, support)
    return SparseResult(support, theta, best, {}, path)


def snap_constants(
    stats: Stats,
    result: SparseResult,
    *,
    epsilon: float,
    h_mean: float,
    n_library: int,
    temperature: float | None = None,
    snappable: list[bool] | None = None,
    free: FreeParameters = FreeParameters(),
) -> SparseResult:
    """Try each coefficient as the nearest simple rational; keep snaps that shorten the code.

    ``snappable[j]`` (by library index) limits the attempt to terms whose coefficients are
    meaningful constants (monomials, Fourier modes); amplitudes of data-placed bumps are not.
    """
    coder = _Coder(stats, n_library, epsilon, h_mean, temperature, free)
    support = result.support
    fixed: dict[int, float] = {}
    snapped: dict[int, tuple[int, int]] = {}
    best = result.code
    theta = result.theta
    order = np.argsort(-np.abs(theta))
    for i in order:
        j = support[i]
        if snappable is not None and not snappable[j]:
            continue
        current = solve_support(stats, support, fixed)
        value = current[i]
        guesses = set()
        for q in DENOMINATORS:
            frac = Fraction(round(value * q), q)
            guesses.add((frac.numerator, frac.denominator))
        options = []
        for num, den in guesses:
            trial_fixed = {**fixed, j: num / den}
            trial_snapped = {**snapped, j: (num, den)}
            th = solve_support(stats, support, trial_fixed)
            options.append((coder(support, th, trial_snapped).total, num, den, th))
        bits, num, den, th = min(options, key=lambda o: o[0])
        if bits < best.total - 1e-9:
            fixed[j] = num / den
            snapped[j] = (num, den)
            theta = th
            best = coder(support, th, snapped)
    return SparseResult(support, theta, best, snapped, result.path)
