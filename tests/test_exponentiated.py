"""Fitting E from proportions moved by the exponentiated-gradient (multiplicative) update:
recovery of known energies, the gauge, temperature of logistic-normal steps, bad input, CLI."""

import json
import math

import jax
import numpy as np
import pytest

import iel
from iel.data.validation import DataError
from iel.dynamics import ExponentiatedGradient, GradientFlow, Langevin, simulate
from iel.energies.features import FeatureEnergy, Monomials
from iel.estimators.trajectories.mirror_descent import (
    ExponentiatedGradientClosedForm,
    centred_log_ratio,
    restricted_coefficients,
)

ETA = 0.05


def _energy(dim: int, degree: int, seed: int) -> FeatureEnergy:
    """A random polynomial energy with coefficients of order one."""
    library = Monomials(dim, degree)
    theta = np.random.default_rng(seed).normal(size=library.n_features)
    return FeatureEnergy(library, theta)


def _trajectories(energy, n: int, steps: int, seed: int, temperature: float = 0.0):
    starts = np.random.default_rng(seed + 100).dirichlet(np.ones(energy.dim), size=n)
    dynamics = ExponentiatedGradient(temperature=temperature)
    return simulate(energy, dynamics, starts, steps, jax.random.PRNGKey(seed), ETA)


def _coefficient_error(fitted, true, dim: int, degree: int) -> float:
    """max |ĉ − c| / max |c| over the gauge-free coefficients of E on the simplex."""
    _, c_true = restricted_coefficients(true, dim, degree)
    _, c_hat = restricted_coefficients(fitted, dim, degree)
    return float(np.max(np.abs(c_hat - c_true)) / np.max(np.abs(c_true)))


def test_restricted_coefficients_are_exact_and_blind_to_the_gauge():
    energy = _energy(3, 2, seed=0)
    names, coef = restricted_coefficients(energy, 3, 2)
    assert names == ["u0", "u1", "u0^2", "u0*u1", "u1^2"]

    # a function of the total and one vanishing on the simplex leave them unchanged
    def shifted(x):
        return energy.energy(x) + np.sum(x, -1) ** 3 + (np.sum(x, -1) - 1) * x[..., 0]

    np.testing.assert_allclose(restricted_coefficients(shifted, 3, 2)[1], coef, atol=1e-10)

    # and a real change on the simplex changes them
    def tilted(x):
        return energy.energy(x) + 1e-3 * x[..., 0]

    assert np.max(np.abs(restricted_coefficients(tilted, 3, 2)[1] - coef)) > 1e-4


@pytest.mark.parametrize(("dim", "degree"), [(3, 2), (4, 3)])
def test_noise_free_steps_recover_eta_e_exactly(dim, degree):
    worst = 0.0
    for seed in range(3):
        energy = _energy(dim, degree, seed)
        data = _trajectories(energy, n=20, steps=20, seed=seed)
        model = ExponentiatedGradientClosedForm(f"poly:{degree}").fit(data).model_
        worst = max(worst, _coefficient_error(model.energy_module, energy, dim, degree))
        assert model.diagnostics["noise_free"] and model.temperature == 0.0
        assert isinstance(model.dynamics, ExponentiatedGradient)
        assert "η·E" in model.identifiability["energy"]
        assert "f(Σx_i)" in model.identifiability["energy"]
    assert worst < 1e-8, worst


def test_logistic_normal_steps_recover_e_and_temperature():
    temperature = 0.01
    worst_coef = worst_t = 0.0
    for seed in range(3):
        energy = _energy(3, 2, seed)
        data = _trajectories(energy, n=200, steps=50, seed=seed, temperature=temperature)
        model = ExponentiatedGradientClosedForm("poly:2").fit(data).model_
        assert not model.diagnostics["noise_free"]
        worst_coef = max(worst_coef, _coefficient_error(model.energy_module, energy, 3, 2))
        worst_t = max(worst_t, abs(model.temperature / temperature - 1))
        assert model.dynamics.temperature == model.temperature
    assert worst_t < 0.10, worst_t
    assert worst_coef < 0.05, worst_coef


def _plus_total_terms(energy: FeatureEnergy) -> FeatureEnergy:
    """``E + (Σx)² + 3(Σx)³ + 2(Σx − 1)·x0`` in the cubic monomials: constant on the simplex."""
    library = Monomials(energy.dim, 3)
    index = {alpha: i for i, alpha in enumerate(library.exponents)}
    theta = np.zeros(library.n_features)
    for alpha, value in zip(energy.library.exponents, np.asarray(energy.theta)):
        theta[index[tuple(alpha)]] += value
    for alpha, i in index.items():
        n = sum(alpha)
        multinomial = math.factorial(n) / math.prod(math.factorial(a) for a in alpha)
        theta[i] += {2: 1.0, 3: 3.0}.get(n, 0.0) * multinomial
    x0 = tuple(int(j == 0) for j in range(energy.dim))
    theta[index[x0]] -= 2.0  # −2 x0
    for j in range(energy.dim):  # + 2 x0 x_j
        alpha = tuple(int(k == 0) + int(k == j) for k in range(energy.dim))
        theta[index[alpha]] += 2.0
    return FeatureEnergy(library, theta)


def test_adding_a_function_constant_on_the_simplex_gives_the_same_fit():
    energy = _energy(3, 2, seed=4)
    gauged = _plus_total_terms(energy)
    x = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    assert np.max(np.abs(np.asarray(gauged.energy(x) - energy.energy(x)) - 4.0)) < 1e-12
    assert not np.allclose(gauged.gradient(x), energy.gradient(x))  # a different ∇E …
    a = _trajectories(energy, n=20, steps=30, seed=1)
    b = _trajectories(gauged, n=20, steps=30, seed=1)
    np.testing.assert_allclose(b.x, a.x, rtol=0, atol=1e-12)  # … moves nothing
    fit_a = ExponentiatedGradientClosedForm("poly:3").fit(a).model_
    fit_b = ExponentiatedGradientClosedForm("poly:3").fit(b).model_
    assert _coefficient_error(fit_a.energy_module, energy, 3, 3) < 1e-8
    assert _coefficient_error(fit_b.energy_module, gauged, 3, 3) < 1e-8
    states = a.observed_states()

    def centred(model):
        gradient = np.asarray(model.grad(states))
        return gradient - gradient.mean(-1, keepdims=True)

    np.testing.assert_allclose(centred(fit_b), centred(fit_a), atol=1e-8)


def test_proportions_are_checked_with_a_clear_error():
    data = _trajectories(_energy(3, 2, 0), n=5, steps=5, seed=0)
    x = np.array(data.x)
    x[2, 3] *= 1.1
    with pytest.raises(DataError, match=r"summing to one.*state 15 sums to 1\.1"):
        ExponentiatedGradientClosedForm("poly:2").fit(iel.Trajectories(x, dt=ETA))
    x = np.array(data.x)
    x[1, 0] = [0.5, 0.6, -0.1]
    with pytest.raises(DataError, match=r"positive proportions.*-0\.1 at state 6, component 2"):
        iel.fit(iel.Trajectories(x, dt=ETA), "poly:2", dynamics="exponentiated")
    with pytest.raises(ValueError, match="applies to trajectories"):
        iel.fit(iel.Samples(x[:, 0]), "poly:2", dynamics="exponentiated")
    with pytest.raises(ValueError, match="network term"):
        iel.fit(data, "mlp:8", dynamics="exponentiated")
    with pytest.raises(ValueError, match="dynamics must be one of"):
        iel.fit(data, "poly:2", dynamics="replicator")


def test_the_dynamics_option_forces_or_infers_the_operator():
    rng = np.random.default_rng(0)
    walks = np.cumsum(rng.normal(scale=0.1, size=(30, 40, 2)), axis=1)
    noisy = iel.Trajectories(walks, dt=0.01)
    auto = iel.fit(noisy, "poly:2")
    assert isinstance(auto.dynamics, Langevin) and auto.diagnostics["dynamics_option"] == "langevin"
    gd = iel.fit(noisy, "poly:2", dynamics="gd")
    assert isinstance(gd.dynamics, GradientFlow) and gd.temperature == 0.0
    assert gd.diagnostics["dynamics_option"] == "gd"
    assert gd.diagnostics["estimated_temperature"] == pytest.approx(auto.temperature)
    # proportions fitted as Euclidean descent say that the multiplicative update exists
    simplex = _trajectories(_energy(3, 2, 0), n=10, steps=10, seed=0)
    euclidean = iel.fit(simplex, "poly:2", dynamics="langevin")
    assert isinstance(euclidean.dynamics, Langevin)
    assert not any("exponentiated" in n for n in euclidean.diagnostics["notes"])
    inferred = iel.fit(simplex, "poly:2")
    assert any("--dynamics exponentiated" in n for n in inferred.diagnostics["notes"])


def test_cli_fits_saves_loads_and_simulates_on_the_simplex(tmp_path):
    from typer.testing import CliRunner

    from iel.cli import app

    energy = _energy(3, 2, seed=2)
    data = _trajectories(energy, n=100, steps=40, seed=2, temperature=0.01)
    iel.save_data(tmp_path / "shares.npz", data)
    out = tmp_path / "shares.iel"
    args = ["fit", tmp_path / "shares.npz", "--dynamics", "exponentiated", "-e", "poly:2"]
    result = CliRunner().invoke(app, [str(a) for a in [*args, "--out", out]])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["dynamics"]["type"] == "ExponentiatedGradient"
    assert report["diagnostics"]["dynamics_option"] == "exponentiated"
    assert report["method"] == "exponentiated-closed-form"
    assert report["temperature"] == pytest.approx(0.01, rel=0.1)
    model = iel.load(out)
    assert isinstance(model.dynamics, ExponentiatedGradient)
    assert model.dynamics.temperature == report["temperature"]
    assert model.step_size == pytest.approx(ETA)
    assert _coefficient_error(model.energy_module, energy, 3, 2) < 0.1
    starts = np.random.default_rng(9).dirichlet(np.ones(3), size=50)
    run = model.simulate(starts, 200, seed=3)
    assert np.all(run.x > 0) and np.max(np.abs(run.x.sum(-1) - 1)) < 1e-12
    # the noise is logistic-normal: clr steps scatter with variance 2ηT per contrast
    steps = np.diff(centred_log_ratio(run.x), axis=1)
    drift = -ETA * np.asarray(model.grad(run.x[:, :-1]))
    resid = steps - (drift - drift.mean(-1, keepdims=True))
    variance = np.sum(resid**2) / (resid.shape[0] * resid.shape[1] * 2)
    assert variance == pytest.approx(2 * ETA * model.temperature, rel=0.05)
    bad = np.array(data.x)
    bad[0, 0] = [0.2, 0.2, 0.2]
    np.savez(tmp_path / "bad.npz", x=bad, dt=ETA)
    result = CliRunner().invoke(
        app, ["fit", str(tmp_path / "bad.npz"), "--dynamics", "exponentiated"]
    )
    assert result.exit_code == 2 and "state 0 sums to 0.6" in result.output
