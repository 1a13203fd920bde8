"""Polynomials with couplings only between chosen pairs of coordinates.

``φ = {x_j^k : k ≤ K} ∪ {x_i^a x_j^b : a, b ≥ 1, a + b ≤ K, (i, j) ∈ P}``: an additive
polynomial plus the pairwise monomials of the pairs ``P``.  In high dimension the full pairwise
library has ``O(d²)`` terms (3 875 at degree 3, d = 50) while a chain, a lattice or a sparse
network of couplings has ``O(d)`` pairs; :mod:`iel.estimators.pair_screening` chooses ``P``
from the data (``pairs:K`` in specs), and each chosen pair is charged in description lengths.
"""

from __future__ import annotations

import itertools

import equinox as eqx
import numpy as np

from .features import AbstractMonomialLibrary, _register_library


def pair_exponents(dim: int, degree: int, pairs) -> tuple[tuple[int, ...], ...]:
    """Additive powers of every coordinate, then the pairwise monomials pair by pair."""
    out = []
    for k in range(1, degree + 1):
        for j in range(dim):
            alpha = [0] * dim
            alpha[j] = k
            out.append(tuple(alpha))
    for i, j in pairs:
        for a, b in itertools.product(range(1, degree), repeat=2):
            if a + b <= degree:
                alpha = [0] * dim
                alpha[i], alpha[j] = a, b
                out.append(tuple(alpha))
    return tuple(out)


@_register_library
class PairMonomials(AbstractMonomialLibrary):
    """Additive powers up to ``degree`` plus the pairwise monomials of ``pairs``.

    Args:
        dim, degree: state dimension and total degree.
        pairs: coordinate pairs ``(i, j)``, ``i < j``.
        screened: whether ``pairs`` were chosen (a placeholder waits for
            :func:`iel.estimators.pair_screening.screen_pairs`).
    """

    dim: int = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    pairs: tuple[tuple[int, int], ...] = eqx.field(static=True)
    screened: bool = eqx.field(static=True)
    exponents: tuple[tuple[int, ...], ...] = eqx.field(static=True)

    def __init__(self, dim: int, degree: int, pairs=(), screened: bool = True):
        if dim < 2 or degree < 2:
            raise ValueError(f"PairMonomials needs dim ≥ 2 and degree ≥ 2, got {dim=}, {degree=}")
        pairs = tuple(sorted({(min(int(i), int(j)), max(int(i), int(j))) for i, j in pairs}))
        if any(i == j or i < 0 or j >= dim for i, j in pairs):
            raise ValueError(f"pairs must be two different coordinates in 0..{dim - 1}: {pairs}")
        self.dim, self.degree, self.pairs, self.screened = int(dim), int(degree), pairs, screened
        self.exponents = pair_exponents(self.dim, self.degree, pairs)

    @classmethod
    def placeholder(cls, dim: int, degree: int) -> PairMonomials:
        """Pairs still to be chosen from data."""
        return cls(dim, degree, (), screened=False)

    @property
    def n_free_parameters(self) -> int:
        """The chosen pairs (one each); 1 while unscreened, so that selection treats the
        family as one with parameters to fit."""
        return len(self.pairs) if self.screened else 1

    def pair_term_indices(self) -> list[int]:
        """Indices of the two-variable monomials (the terms that use the chosen pairs)."""
        return [int(i) for i in np.flatnonzero(self.feature_coordinates()[:, 1] >= 0)]

    def config(self):
        return {"type": "PairMonomials", "dim": self.dim, "degree": self.degree,
                "pairs": [list(p) for p in self.pairs], "screened": self.screened}  # fmt: skip

    @classmethod
    def from_config(cls, config):
        return cls(config["dim"], config["degree"], [tuple(p) for p in config["pairs"]],
                   bool(config.get("screened", True)))  # fmt: skip
