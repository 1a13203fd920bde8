"""Collective variables: an energy of a few linear combinations of the coordinates,
``E(x) = g(Wx)``.  The subspace is found from the displacements (exactly without noise, within
a small angle with it), selection prefers the energy of the collective variables when the data
move along few directions, the force and temperature are recovered, and the model saves and
loads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iel
from iel.dynamics import GradientDescent, Langevin, simulate
from iel.energies import FeatureEnergy, ProjectedEnergy, ReferenceEnergy
from iel.energies.features import Monomials
from iel.selection import select
from iel.selection.collective import collective_subspace

DIM = 4


def _weights(seed: int = 0) -> np.ndarray:
    """Two orthonormal rows in general position in R^4."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((DIM, 2)))
    return q.T


def _two_variable_energy() -> ProjectedEnergy:
    """``g(u) = u0⁴ − 2u0² + 2u1² + ½u0u1`` of ``u = Wx``: a double well along u0."""
    lib = Monomials(2, 4)
    names = lib.names()
    coef = np.zeros(lib.n_features)
    for name, value in (("x0^4", 1.0), ("x0^2", -2.0), ("x1^2", 2.0), ("x0*x1", 0.5)):
        coef[names.index(name)] = value
    return ProjectedEnergy(FeatureEnergy(lib, jnp.asarray(coef)), _weights())


def _data(dynamics, n=100, steps=50, seed=0):
    energy = _two_variable_energy()
    x0 = np.random.default_rng(seed).uniform(-1.5, 1.5, size=(n, DIM))
    return energy, simulate(energy, dynamics, x0, steps, jax.random.PRNGKey(seed), 0.01)


def _principal_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Largest principal angle between the row spaces of ``a`` and ``b`` (radians)."""
    cosines = np.linalg.svd(a @ b.T, compute_uv=False)
    return float(np.arccos(np.clip(cosines.min(), -1.0, 1.0)))


def test_monomial_names_used_by_the_test_energy_exist():
    names = Monomials(2, 4).names()
    assert {"x0^4", "x0^2", "x1^2", "x0*x1"} <= set(names)


def test_subspace_is_exact_without_noise_and_close_with_it():
    _, clean = _data(GradientDescent(), n=40, steps=20)
    x0, dx, h = clean.increments()
    weights, spectrum = collective_subspace(dx, h)
    assert weights.shape == (2, DIM)
    assert _principal_angle(weights, _weights()) < 1e-7
    assert spectrum[2] < 1e-12  # the force-free directions carry nothing
    _, noisy = _data(Langevin(0.02))
    x0, dx, h = noisy.increments()
    weights, _ = collective_subspace(dx, h)
    assert weights.shape == (2, DIM)
    assert _principal_angle(weights, _weights()) < 0.1


def test_motion_along_every_coordinate_has_no_collective_variables():
    lib = Monomials(5, 4, 1)  # additive: Σ x_j⁴ − 2x_j², every coordinate moves
    names = lib.names()
    coef = np.zeros(lib.n_features)
    for j in range(5):
        coef[names.index(f"x{j}^4")], coef[names.index(f"x{j}^2")] = 1.0, -2.0
    energy = FeatureEnergy(lib, jnp.asarray(coef))
    x0 = np.random.default_rng(1).uniform(-1.5, 1.5, size=(40, 5))
    data = simulate(energy, GradientDescent(), x0, 20, jax.random.PRNGKey(1), 0.01)
    x0, dx, h = data.increments()
    # alike in every direction, the moment alone cannot tell motion from noise; a temperature
    # fitted in all coordinates (here: none) can
    weights, spectrum = collective_subspace(dx, h, temperature=0.0)
    assert weights is None
    assert spectrum[-1] > 0.1


def test_selection_picks_the_collective_energy_and_recovers_it_exactly(tmp_path):
    energy, data = _data(GradientDescent(), n=40, steps=20)
    # (iel.fit's auto runs this selection over more families; the JKOnet* suite runs it)
    model = select(data, ("poly:2", "poly:4"), prequential=False, search_free=False).model
    assert "collective:2" in model.energy_spec
    assert model.temperature == 0.0
    grid = np.random.default_rng(3).uniform(-1.5, 1.5, size=(200, DIM))
    truth = -np.asarray(energy.gradient(grid))
    np.testing.assert_allclose(np.asarray(model.force(grid)), truth, atol=1e-6)
    assert "u0" in model.formula and "with u0 = " in model.formula
    model.save(tmp_path / "collective")
    loaded = iel.load(tmp_path / "collective")
    np.testing.assert_array_equal(np.asarray(loaded.force(grid)), np.asarray(model.force(grid)))
    assert isinstance(loaded.energy_module, ProjectedEnergy)


def test_langevin_force_and_temperature_through_collective_variables():
    """Against the quartic in all four coordinates (which contains g(Wx) exactly but needs
    69 coefficients), the collective-variable energy has the shorter code."""
    energy, data = _data(Langevin(0.02))
    result = select(data, ("poly:4",), prequential=False)
    assert result.chosen.name.startswith("collective:2")
    assert result.chosen.code.total < min(c.code.total for c in result.candidates
                                          if c.kind == "energy")  # fmt: skip
    model = result.model
    grid = np.random.default_rng(4).uniform(-1.2, 1.2, size=(500, DIM))
    truth = -np.asarray(energy.gradient(grid))
    err = np.sum((np.asarray(model.force(grid)) - truth) ** 2) / np.sum(truth**2)
    assert err < 0.02
    assert model.temperature == pytest.approx(0.02, rel=0.05)


def test_projected_energy_rejects_more_rows_than_coordinates():
    with pytest.raises(ValueError, match=r"shape \(r, d\) with r ≤ d"):
        ProjectedEnergy(FeatureEnergy(Monomials(3, 2)), np.zeros((3, 2)))


def test_collective_variables_are_rotated_to_the_simplest_loadings():
    """Bohachevsky's energy of the two half-means in 6-D: the moment's eigenvectors mix the two
    sums by the sample's cross-correlation; varimax turns them back to u = (x0 + x1 + x2)/√3
    and (x3 + x4 + x5)/√3, and the formula reads so."""
    energy = ReferenceEnergy("bohachevsky", DIM + 2)
    x0 = np.random.default_rng(5).uniform(-4, 4, size=(200, DIM + 2))
    data = simulate(energy, GradientDescent(), x0, 5, jax.random.PRNGKey(5), 0.001)
    _, dx, h = data.increments()
    weights, _ = collective_subspace(dx, h)
    halves = np.kron(np.eye(2), np.ones(3)) / np.sqrt(3)
    order = np.argsort(np.argmax(np.abs(weights), axis=1))
    np.testing.assert_allclose(weights[order], halves, atol=1e-8)
    rows = [ProjectedEnergy(FeatureEnergy(Monomials(2, 2)), weights[order]).components()]
    assert rows == [["u0 = 0.577·(x0 + x1 + x2)", "u1 = 0.577·(x3 + x4 + x5)"]]
