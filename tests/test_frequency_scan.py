"""Fourier terms with a fitted length (``fourier:K:fit``): the frequency scan recovers a
lattice spacing, prefers the fundamental over its subharmonic aliases, is charged in the
description length, and a fitted model saves and loads with its length."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iel
from iel.dynamics import GradientDescent, Langevin, simulate
from iel.energies import FeatureEnergy
from iel.energies.features import ConcatLibrary, Fourier, Monomials
from iel.energies.spec import parse_energy_spec
from iel.linear.frequency_scan import scan_length_scale
from iel.selection import select
from iel.selection.families import (
    AUTO_FAMILIES,
    auto_families,
)

SPACING = 0.7  # lattice period: E contains cos(2πx/0.7), wavenumber 8.976


def _lattice_energy(dim: int, amplitude: float = 1.0) -> FeatureEnergy:
    """``E = Σ 0.2 x_j² + amplitude·cos(2π x_j / SPACING)``: a tilted-bowl optical lattice."""
    lib = ConcatLibrary((Monomials(dim, 2, 1), Fourier(dim, 1, SPACING / (2 * np.pi))))
    quad = [0.0] * dim + [0.2] * dim  # x_j then x_j² (additive monomials, degree order)
    return FeatureEnergy(lib, jnp.asarray(quad + [0.0] * dim + [amplitude] * dim))


def _transitions(energy, dynamics, n, steps, dt, seed):
    x0 = np.random.default_rng(seed).uniform(-3, 3, size=(n, energy.dim))
    data = simulate(energy, dynamics, x0, steps, jax.random.PRNGKey(seed), dt)
    return data, *data.increments()


def test_lattice_energy_terms_are_as_documented():
    energy = _lattice_energy(1)
    x = jnp.array([0.3])
    expected = 0.2 * 0.09 + np.cos(2 * np.pi * 0.3 / SPACING)
    np.testing.assert_allclose(float(energy(x)), expected, rtol=1e-12)


def test_scan_recovers_the_spacing_from_langevin_trajectories():
    energy = _lattice_energy(2)
    _, x0, dx, h = _transitions(energy, Langevin(0.5), 200, 100, 0.005, seed=1)
    lib = parse_energy_spec("poly:2+fourier:2:fit", 2).library
    fitted = scan_length_scale(lib, x0, dx, h)
    length = float(fitted.parts[1].length_scale)
    assert fitted.parts[1].fitted and fitted.parts[1].free_length
    # the fundamental, not its subharmonic 2·length (whose second harmonic is the same cosine)
    np.testing.assert_allclose(length, SPACING / (2 * np.pi), rtol=2e-3)


def test_noise_free_lattice_is_recovered_exactly_and_named_by_its_wavenumber():
    energy = _lattice_energy(1, amplitude=0.5)
    data, *_ = _transitions(energy, GradientDescent(), 100, 20, 0.01, seed=2)
    model = iel.fit(data, "poly:2+fourier:3:fit")
    grid = jnp.linspace(-3, 3, 101)[:, None]
    truth = jax.vmap(jax.grad(energy))(grid)
    np.testing.assert_allclose(np.asarray(model.force(grid)), -np.asarray(truth), atol=1e-6)
    wavenumber = 2 * np.pi / SPACING
    assert any(f"{wavenumber:.6g}*x0" in name for name in model.energy_module.library.names())


def test_auto_selects_the_periodic_family_with_the_spacing_charged():
    assert "poly:4+fourier:4:fit" in AUTO_FAMILIES == auto_families(3, free_parameters=False)
    assert "fourier:3:fit" in auto_families(5)  # alone from d = 4: the quartic is too large
    energy = _lattice_energy(2)
    data, *_ = _transitions(energy, Langevin(0.5), 100, 100, 0.005, seed=3)
    result = select(data, ("poly:4", "poly:4+fourier:4:fit"), prequential=False)
    assert result.model.energy_spec.endswith("poly:4+fourier:4:fit (sparse)"), (
        result.model.energy_spec
    )
    chosen = result.chosen
    assert chosen.code.details["free_parameters"] == 1  # the fitted length, charged
    assert chosen.n_parameters == len(chosen.support) + 1
    length = float(chosen.library.parts[1].length_scale)
    np.testing.assert_allclose(length, SPACING / (2 * np.pi), rtol=5e-3)
    assert "cos(" in chosen.formula, chosen.formula


def test_saved_model_keeps_its_fitted_length(tmp_path):
    energy = _lattice_energy(1)
    data, *_ = _transitions(energy, Langevin(0.2), 50, 50, 0.01, seed=4)
    model = iel.fit(data, "poly:2+fourier:1:fit", method="onestep")
    path = model.save(tmp_path / "lattice")
    loaded = iel.load(path)
    part = loaded.energy_module.library.parts[1]
    assert isinstance(part, Fourier) and part.free_length and part.fitted
    assert float(part.length_scale) == float(model.energy_module.library.parts[1].length_scale)
    x = jnp.linspace(-2, 2, 7)[:, None]
    np.testing.assert_array_equal(np.asarray(loaded.force(x)), np.asarray(model.force(x)))


def test_only_one_free_fourier_part_is_accepted():
    lib = ConcatLibrary((Fourier.placeholder(1, 2), Fourier.placeholder(1, 3)))
    x = np.zeros((4, 1))
    with pytest.raises(ValueError, match="at most one Fourier part"):
        scan_length_scale(lib, x, x, np.ones(4))


def test_non_finite_transitions_stop_the_scan_with_a_clear_message():
    lib = parse_energy_spec("fourier:2:fit", 1).library
    x = np.linspace(-1, 1, 20)[:, None]
    dx = np.full_like(x, np.nan)
    with pytest.raises(FloatingPointError, match="not finite at any wavenumber"):
        scan_length_scale(lib, x, dx, np.full(20, 0.01))


def test_compressed_scan_is_polished_on_every_transition_when_noise_free():
    """Above 20 000 transitions the scan runs on a 60 × 60 grid of cell means, whose error
    biases the wavenumber (about 2e-6 relative here); on nearly noise-free data it is polished
    again on every transition."""
    from iel.energies.reference import FUNCTIONS

    x = np.random.default_rng(0).uniform(-4, 4, size=(25_000, 2))
    grad = np.asarray(jax.vmap(jax.grad(FUNCTIONS["wavy_plateau"]))(jnp.asarray(x)))
    h = np.full(len(x), 0.01)
    lib = parse_energy_spec("poly:4+fourier:4:fit", 2).library
    fitted = scan_length_scale(lib, x, -h[:, None] * grad, h)
    np.testing.assert_allclose(float(fitted.parts[1].length_scale) * np.pi, 1.0, rtol=2e-7)
