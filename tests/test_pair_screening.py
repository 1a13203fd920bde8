"""Pairwise couplings chosen from the data (``pairs:K``): an additive fit's residual points to
the coupled coordinate pairs of a chain energy and to none of an additive one; the fitted
energy is exact, charged for its pairs, and saves and loads."""

import jax
import numpy as np

import iel
from iel.dynamics import GradientDescent, simulate
from iel.energies import ReferenceEnergy
from iel.energies.pair_monomials import PairMonomials
from iel.linear.pair_screening import screen_pairs
from iel.selection import select

DIM = 8


def _descent(name: str, seed: int = 0):
    energy = ReferenceEnergy(name, DIM)
    x0 = np.random.default_rng(seed).uniform(-2, 2, size=(150, DIM))
    return energy, simulate(energy, GradientDescent(), x0, 5, jax.random.PRNGKey(seed), 0.01)


def test_screening_finds_the_chain_of_a_neighbour_coupled_energy():
    """Watershed, ``Σ_i (x_i + x_i²(x_{i+1} + 4))/10``: couplings between neighbours only."""
    _, data = _descent("watershed")
    x0, dx, h = data.increments()
    chosen = screen_pairs(PairMonomials.placeholder(DIM, 3), x0, dx, h)
    assert chosen.screened and chosen.n_free_parameters == DIM - 1
    assert set(chosen.pairs) == {(i, i + 1) for i in range(DIM - 1)}
    _, additive = _descent("styblinski_tang")  # an additive quartic: nothing to couple
    none = screen_pairs(PairMonomials.placeholder(DIM, 4), *additive.increments())
    assert none.pairs == ()


def test_screened_pairs_fit_the_chain_exactly_and_are_charged(tmp_path):
    energy, data = _descent("watershed", seed=1)
    result = select(data, ("poly:3:1", "pairs:3"), prequential=False, collective=False)
    chosen = result.chosen
    assert chosen.spec == "pairs:3" and chosen.code.details["temperature"] < 1e-12
    assert chosen.n_parameters == len(chosen.support) + DIM - 1  # coefficients + pairs
    grid = np.random.default_rng(2).uniform(-2, 2, size=(300, DIM))
    truth = np.asarray(energy.force(grid))
    model = result.model
    np.testing.assert_allclose(np.asarray(model.force(grid)), truth, atol=1e-8)
    model.save(tmp_path / "chain")
    loaded = iel.load(tmp_path / "chain")
    np.testing.assert_array_equal(np.asarray(loaded.force(grid)), np.asarray(model.force(grid)))
