"""Which coordinate pairs interact: screening pairwise monomials against the current fit.

Start from the additive polynomial of degree ``K`` (no pairs) and repeat, at most ``rounds``
times, until the chosen pairs stop changing:

1. fit the current library (additive powers plus the chosen pairs' monomials, and the library
   parts beside them) in closed form
   and take its drift residual ``r_k = Δx_k/h_k − F̂(x_k)`` and level ``2T̂ = Σh‖r‖²/(Kd − p)``
   (floored at ``10⁻¹⁰`` of the steps' own level, for exact fits);
2. keep a chosen pair while dropping its monomials would raise the one-step loss
   ``Σ h‖r‖²`` by more than the bar below (``θ_Bᵀ((A⁻¹)_BB)⁻¹θ_B`` from the normal equations);
3. add the unchosen pairs whose best monomial ``m = x_i^a x_j^b`` alone would lower the loss
   by more than the bar, ``S_m = (Σ_k h_k ∇m·r_k)² / Σ_k h_k‖∇m‖²`` — ``∇m`` has only the
   components ``i`` and ``j``, so ``S`` for every pair comes from a few ``d × d`` products of
   ``K × d`` arrays of coordinate powers, no pairwise library is formed.

The bar: the data code falls by ``ΔRSS/(4T̂)`` nats, which must exceed the
``½ ln(Kd) + ln(d(d−1)/2)`` nats of one more coefficient and of the choice of the pair; at most
``max_pairs`` (default ``d``) pairs, the strongest first.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ..energies.features import (
    FeatureEnergy,
    join_library_parts,
)
from ..energies.pair_monomials import PairMonomials
from .normal_equations import (
    normal_equations,
    solve_normal_equations,
)

EXACT_LEVEL = 1e-10  # noise level floor, relative to the steps' own mean square h‖Δx/h‖²


def pair_scores(degree: int, x0: np.ndarray, residual: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``S[i, j]`` (upper triangle): the largest loss reduction one monomial of pair ``(i, j)``
    would bring on its own against the drift residual."""
    dim = x0.shape[1]
    powers = [x0**p for p in range(2 * degree + 1)]
    weighted = h[:, None] * residual
    best = np.zeros((dim, dim))
    for a, b in ((a, b) for a in range(1, degree) for b in range(1, degree) if a + b <= degree):
        # ∇(x_i^a x_j^b) = (a x_i^{a−1} x_j^b) e_i + (b x_i^a x_j^{b−1}) e_j
        numerator = a * (powers[a - 1] * weighted).T @ powers[b]
        numerator += b * (powers[a].T @ (powers[b - 1] * weighted))
        denominator = a**2 * (h[:, None] * powers[2 * a - 2]).T @ powers[2 * b]
        denominator += b**2 * (h[:, None] * powers[2 * a]).T @ powers[2 * b - 2]
        score = numerator**2 / np.maximum(denominator, 1e-300)
        best = np.maximum(best, np.triu(score, 1))
    return best


def _pair_blocks(library: PairMonomials) -> dict[tuple[int, int], list[int]]:
    columns = library.feature_coordinates()
    blocks: dict[tuple[int, int], list[int]] = {}
    for row in library.pair_term_indices():
        blocks.setdefault((int(columns[row, 0]), int(columns[row, 1])), []).append(row)
    return blocks


def screen_pairs(library, x0: np.ndarray, dx: np.ndarray, h: np.ndarray, others=(),
                 max_pairs: int | None = None, rounds: int = 4):  # fmt: skip
    """``library`` with its pairs chosen (module docstring); other libraries unchanged.
    ``others``: the library parts fitted beside it (additive bumps, say), included in every
    fit so that the pairs answer only for what those leave unexplained."""
    if not isinstance(library, PairMonomials) or library.screened:
        return library
    dim, degree = library.dim, library.degree
    limit = max_pairs or dim
    n_rows = dx.size
    choice_nats = 0.5 * math.log(n_rows) + math.log(dim * (dim - 1) / 2)
    steps_level = float(np.sum(dx**2 / h[:, None])) / n_rows
    chosen: list[tuple[int, int]] = []
    for _ in range(rounds):
        pairs = PairMonomials(dim, degree, chosen)
        current = join_library_parts((pairs, *others))
        eq = normal_equations(current, x0, dx, h)
        theta = solve_normal_equations(eq).theta
        drift = np.asarray(FeatureEnergy(current, jnp.asarray(theta)).force(x0))
        residual = dx / h[:, None] - drift
        noise = float(np.sum(h[:, None] * residual**2)) / max(n_rows - len(theta), 1)
        bar = 2 * max(noise, EXACT_LEVEL * steps_level) * choice_nats  # ΔRSS/(4T̂) > nats
        strength: dict[tuple[int, int], float] = {}
        if chosen:  # the loss increase of dropping each chosen pair's block
            inverse = np.linalg.pinv(eq.gram)
            for pair, rows in _pair_blocks(pairs).items():  # the pairs' part comes first
                block = theta[rows]
                strength[pair] = float(block @ np.linalg.pinv(inverse[np.ix_(rows, rows)]) @ block)
        scores = pair_scores(degree, x0, residual, h)
        i, j = np.triu_indices(dim, 1)
        for a, b, s in zip(i, j, scores[i, j]):
            if (int(a), int(b)) not in strength:
                strength[(int(a), int(b))] = float(s)
        ranked = sorted((p for p, s in strength.items() if s > bar), key=lambda p: -strength[p])
        new = sorted(ranked[:limit])
        if new == sorted(chosen):
            break
        chosen = new
    return PairMonomials(dim, degree, chosen)
