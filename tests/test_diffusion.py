"""State-dependent diffusion D(x): recovery of a known D(x) and force, the constant-temperature
test (rejects multiplicative noise, passes one temperature), model.diffusion's contract, the
stationary law of the mobility-form simulator, save/load and the command line."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.dynamics import PolynomialDiffusion, StateLangevin, simulate
from iel.energies import FeatureEnergy, Monomials

# E = x⁴ − 2x² (in kT), D(x) = 0.5 (1 + x²)
DOUBLE_WELL = FeatureEnergy(Monomials(1, 4), jnp.array([0.0, -2.0, 0.0, 1.0]))
D_1D = PolynomialDiffusion("scalar", 2, [[0.5], [0.0], [0.5]], [0.0], [1.0], 1e-3)


def _data_1d(seed: int, n: int = 300, steps: int = 400, dt: float = 0.002):
    x0 = jnp.asarray(np.random.default_rng(seed).normal(size=(n, 1)))
    dynamics = StateLangevin(D_1D, "mobility")
    return simulate(DOUBLE_WELL, dynamics, x0, steps, jax.random.PRNGKey(seed), dt)


def _relative_errors(model, energy, diffusion, data):
    """max relative error of D on the central 96 % of the states, relative L2 of the force."""
    states = data.observed_states()
    low, high = np.quantile(states, [0.02, 0.98], axis=0)
    grid = np.random.default_rng(0).uniform(low, high, size=(400, states.shape[1]))
    true_d, fit_d = np.asarray(diffusion(grid)), np.asarray(model.diffusion(grid))
    d_error = np.max(
        np.linalg.norm(fit_d - true_d, axis=(1, 2)) / np.linalg.norm(true_d, axis=(1, 2))
    )
    f_true, f_fit = -np.asarray(energy.gradient(grid)), np.asarray(model.force(grid))
    f_error = np.linalg.norm(f_fit - f_true) / np.linalg.norm(f_true)
    return float(d_error), float(f_error)


def test_known_diffusion_1d_is_recovered_and_constant_temperature_rejected():
    data = _data_1d(seed=0)
    model = iel.fit(data, energy="poly:4", diffusion="scalar")
    assert isinstance(model.dynamics, StateLangevin)
    assert model.diagnostics["constant_temperature"] is False
    test = model.diagnostics["constant_temperature_test"]
    assert test["p_value"] < 1e-6 and test["noise_level_ratio_95_5"] > 2
    d_error, f_error = _relative_errors(model, DOUBLE_WELL, D_1D, data)
    assert d_error < 0.08, d_error
    assert f_error < 0.15, f_error
    assert model.temperature == 1.0  # mobility form: E in units of kT
    assert abs(model.diagnostics["diffusion"]["whitened_noise"] - 1.0) < 0.05


def test_known_diagonal_diffusion_2d():
    """E = ½(x0² + 2x1²) + x0⁴/4, D = diag(0.4(1 + x0²), 0.3(1 + x1)²-ish): a diagonal D(x)."""
    energy = FeatureEnergy(Monomials(2, 4), jnp.zeros(14))
    names = Monomials(2, 4).names()
    theta = np.zeros(14)
    theta[names.index("x0^2")] = 0.5
    theta[names.index("x1^2")] = 1.0
    theta[names.index("x0^4")] = 0.25
    energy = FeatureEnergy(Monomials(2, 4), jnp.asarray(theta))
    # components (D00, D11) over the features 1, x0, x1, x0², x0x1, x1²
    coefficients = np.zeros((6, 2))
    coefficients[0] = [0.4, 0.3]
    coefficients[3, 0] = 0.4  # D00 = 0.4 (1 + x0²)
    coefficients[2, 1] = 0.15  # D11 = 0.3 + 0.15 x1 + 0.1 x1²
    coefficients[5, 1] = 0.1
    diffusion = PolynomialDiffusion("diagonal", 2, coefficients, [0.0, 0.0], [1.0, 1.0], 1e-3)
    x0 = jnp.asarray(np.random.default_rng(3).normal(size=(300, 2)) * 0.7)
    data = simulate(energy, StateLangevin(diffusion), x0, 400, jax.random.PRNGKey(3), 0.002)
    model = iel.fit(data, energy="poly:4", diffusion="diagonal")
    d_error, f_error = _relative_errors(model, energy, diffusion, data)
    assert d_error < 0.12, d_error
    assert f_error < 0.25, f_error  # statistical: 240 time units of data (see the docs page)
    assert model.diagnostics["constant_temperature"] is False


@pytest.mark.parametrize("dim", [1, 2])
def test_constant_temperature_is_not_flagged(dim):
    """Worst of three seeds: Langevin data at one temperature pass the test."""
    worst_p, worst_ratio = 1.0, 1.0
    for seed in range(3):
        data = iel.simulate_system("double_well", n=200, steps=300, dt=0.01, temperature=0.5,
                                   seed=seed, dim=dim)  # fmt: skip
        model = iel.fit(data, energy="poly:4")
        assert model.diagnostics["constant_temperature"] is True, seed
        test = model.diagnostics["constant_temperature_test"]
        worst_p = min(worst_p, test["p_value"])
        worst_ratio = max(worst_ratio, test["noise_level_ratio_95_5"])
    assert worst_ratio < 1.2, worst_ratio
    # the thresholds are those the report states
    assert "p < 0.001" in test["threshold"]


def test_diffusion_auto_keeps_one_temperature_when_the_test_passes():
    data = iel.simulate_system("double_well", n=100, steps=300, dt=0.01, temperature=0.5, seed=4)
    model = iel.fit(data, energy="poly:4", diffusion="auto")
    assert model.diagnostics["constant_temperature"] is True
    assert isinstance(model.dynamics, iel.Langevin)
    x = np.zeros((3, 2, 1))
    np.testing.assert_allclose(model.diffusion(x), model.temperature * np.ones((3, 2, 1, 1)))


def test_diffusion_shape_contract_for_one_temperature():
    data = iel.simulate_system("double_well", n=50, steps=100, dt=0.01, temperature=0.5, seed=1,
                               dim=2)  # fmt: skip
    model = iel.fit(data, energy="poly:2")
    out = np.asarray(model.diffusion(np.zeros((4, 3, 2))))
    assert out.shape == (4, 3, 2, 2)
    np.testing.assert_allclose(out, np.broadcast_to(model.temperature * np.eye(2), out.shape))
    assert np.asarray(model.diffusion(np.zeros(2))).shape == (2, 2)


def test_state_langevin_stationary_law_is_exp_minus_e():
    """The mobility form with D(x) = 0.5(1 + x²) samples exp(−E): ⟨x²⟩ and P(|x| < 0.5)
    against quadrature (Euler bias at h = 0.002 is well below the tolerance)."""
    x0 = jnp.asarray(np.random.default_rng(7).choice([-1.0, 1.0], size=(2000, 1)))
    run = simulate(DOUBLE_WELL, StateLangevin(D_1D), x0, 3000, jax.random.PRNGKey(7), 0.002,
                   save_every=500)  # fmt: skip
    late = np.asarray(run.x[:, 2:]).reshape(-1)  # after time 2: mixed (barrier 1 kT)
    grid = np.linspace(-3, 3, 20001)
    weight = np.exp(-np.asarray(DOUBLE_WELL.energy(grid[:, None])))
    weight /= weight.sum()
    second = float(np.sum(weight * grid**2))
    inner = float(np.sum(weight[np.abs(grid) < 0.5]))
    assert abs(np.mean(late**2) - second) < 0.03, (np.mean(late**2), second)
    assert abs(np.mean(np.abs(late) < 0.5) - inner) < 0.015
    # a constant D at the same mean would sample the same law: the law is D-independent, but
    # the Itô form (no ∇·D) is not: it puts mass where D is small
    ito = simulate(DOUBLE_WELL, StateLangevin(D_1D, "ito"), x0, 3000, jax.random.PRNGKey(7),
                   0.002, save_every=500)  # fmt: skip
    assert np.mean(np.asarray(ito.x[:, 2:]) ** 2) < second - 0.04


def test_save_load_and_simulate_with_diffusion(tmp_path):
    data = _data_1d(seed=1, n=100, steps=200)
    model = iel.fit(data, energy="poly:4", diffusion="scalar:2")
    model.save(tmp_path / "m")
    loaded = iel.load_model(tmp_path / "m")
    x = np.linspace(-1.5, 1.5, 7)[:, None]
    np.testing.assert_allclose(loaded.diffusion(x), model.diffusion(x), rtol=1e-14)
    np.testing.assert_allclose(loaded.energy(x), model.energy(x), rtol=1e-12)
    assert loaded.dynamics == model.dynamics
    a = model.simulate(x, steps=20, seed=2)
    b = loaded.simulate(x, steps=20, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["dynamics"]["type"] == "StateLangevin"
    assert report["diagnostics"]["constant_temperature"] is False


def test_bad_diffusion_requests_are_refused():
    data = _data_1d(seed=2, n=20, steps=50)
    with pytest.raises(ValueError, match="KIND"):
        iel.fit(data, energy="poly:4", diffusion="cubic")
    with pytest.raises(ValueError, match="one-step"):
        iel.fit(data, energy="poly:4", diffusion="scalar", method="rollout")
    snaps = iel.simulate_system("double_well", n=50, steps=20, dt=0.01, temperature=0.5,
                                snapshots=True)  # fmt: skip
    with pytest.raises(ValueError, match="trajectories"):
        iel.fit(snaps, diffusion="scalar")


def test_cli_fit_with_diffusion_writes_the_verdict_and_the_figure(tmp_path):
    data = _data_1d(seed=5, n=100, steps=200)
    path = tmp_path / "walk.npz"
    np.savez(path, x=np.asarray(data.x), t=np.asarray(data.t))
    result = CliRunner().invoke(app, ["fit", str(path), "--energy", "poly:4",
                                      "--diffusion", "scalar"])  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = tmp_path / "walk.iel"
    report = json.loads((folder / "report.json").read_text())
    assert report["diagnostics"]["constant_temperature"] is False
    assert report["dynamics"]["form"] == "mobility"
    assert (folder / "landscape.png").stat().st_size > 0
    assert isinstance(iel.load_model(folder).dynamics, StateLangevin)
