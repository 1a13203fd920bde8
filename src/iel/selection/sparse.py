"""Sparse formula search by description length, and snapping of constants.

Greedy forward–backward selection over the terms of a linear model: add the term that shortens
the two-part code most, then drop any term whose removal shortens it, until no move helps.  No
threshold is set by hand: a term stays only if the bits it saves in the data code exceed its
own cost.  Then each coefficient is tried as a simple rational ``p/q`` (the others refitted
given it); the snap is kept when the total code gets shorter.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .codes import CodeLength, Stats, two_part_linear

DENOMINATORS = (1, 2, 3, 4, 5, 6, 8, 10)


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


def forward_backward(
    stats: Stats,
    *,
    epsilon: float,
    h_mean: float,
    candidates: list[int] | None = None,
    temperature: float | None = None,
    max_terms: int | None = None,
    free: FreeParameters = FreeParameters(),
) -> SparseResult:
    """Greedy forward–backward search minimising the two-part code (``free``: nonlinear
    parameters charged when the support uses the terms fitted with them)."""
    p = stats.gram.shape[0]
    pool = list(range(p)) if candidates is None else list(candidates)
    coder = _Coder(stats, len(pool), epsilon, h_mean, temperature, free)
    support: list[int] = []
    best = coder(support, np.zeros(0))
    path = [("start", -1, best.total)]
    limit = max_terms or len(pool)
    while len(support) < limit:
        trials = []
        for j in pool:
            if j in support:
                continue
            s = sorted(support + [j])
            trials.append((coder(s, solve_support(stats, s)).total, j))
        if not trials:
            break
        bits, j = min(trials)
        if bits >= best.total - 1e-9:
            break
        support = sorted(support + [j])
        best = coder(support, solve_support(stats, support))
        path.append(("add", j, best.total))
        improved = True
        while improved and len(support) > 1:
            improved = False
            for i in list(support):
                s = [k for k in support if k != i]
                code = coder(s, solve_support(stats, s))
                if code.total < best.total - 1e-9:
                    support, best, improved = s, code, True
                    path.append(("drop", i, best.total))
                    break
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
