"""The contractive operators of THEORY §1: monotone descent, convergence order, stationary laws,
mirror descent, and simulation that stops cleanly when it diverges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid

import iel
from iel.dynamics import (
    MALA,
    ExponentiatedGradient,
    GradientDescent,
    GradientFlow,
    Langevin,
    SimulationDivergedError,
    simulate,
)
from iel.energies import FeatureEnergy, Monomials, Quadratic, ReferenceEnergy, RotationField

KEY = jax.random.PRNGKey(0)


def test_gradient_descent_decreases_energy_monotonically(rng):
    energy = ReferenceEnergy("styblinski_tang", 2)
    # on [−4, 4]² the Hessian is diag(6x² − 16) ≤ 80: L = 80, so η = 0.02 < 2/L = 0.025
    x0 = rng.uniform(-4, 4, size=(300, 2))
    traj = simulate(energy, GradientDescent(), x0, 200, KEY, 0.02)
    e = np.asarray(energy.energy(traj.x))
    assert np.all(np.diff(e, axis=1) <= 1e-12)
    assert np.all(e[:, -1] < e[:, 0] - 1e-6)


def test_gradient_descent_can_increase_energy_above_two_over_l():
    energy = Quadratic.from_matrix(np.zeros(1), [[10.0]])  # L = 10, 2/L = 0.2
    traj = simulate(energy, GradientDescent(), np.ones((1, 1)), 5, KEY, 0.25)
    e = np.asarray(energy.energy(traj.x))[0]
    assert np.all(np.diff(e) > 0)


def test_gradient_flow_matches_exact_solution():
    # ẋ = −A x on a quadratic: x(t) = exp(−tA) x0
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    energy = Quadratic.from_matrix(np.zeros(2), a)
    x0 = np.array([[1.0, -2.0]])
    traj = simulate(energy, GradientFlow(), x0, 4, KEY, 0.25)
    evals, evecs = np.linalg.eigh(a)
    exact = evecs @ np.diag(np.exp(-1.0 * evals)) @ evecs.T @ x0[0]
    np.testing.assert_allclose(traj.x[0, -1], exact, rtol=1e-7)


def test_gradient_descent_converges_to_gradient_flow_with_order_one(rng):
    energy = ReferenceEnergy("double_well", 1)
    x0 = rng.uniform(-1.5, 1.5, size=(20, 1))
    horizon = 0.5
    flow = simulate(energy, GradientFlow(), x0, 1, KEY, horizon).x[:, -1]
    errors = []
    etas = [0.01, 0.005, 0.0025, 0.00125]
    for eta in etas:
        steps = int(round(horizon / eta))
        gd = simulate(energy, GradientDescent(), x0, steps, KEY, eta, save_every=steps)
        errors.append(np.max(np.abs(gd.x[:, -1] - flow)))
    order = np.polyfit(np.log(etas), np.log(errors), 1)[0]
    assert 0.9 < order < 1.1, (errors, order)


def _boltzmann_cdf(energy, temperature):
    grid = np.linspace(-3.5, 3.5, 40001)
    density = np.exp(-np.asarray(energy.energy(grid[:, None])) / temperature)
    cdf = cumulative_trapezoid(density, grid, initial=0.0)
    return grid, cdf / cdf[-1]


def _ks(samples, grid, cdf):
    s = np.sort(samples)
    f = np.interp(s, grid, cdf)
    n = len(s)
    i = np.arange(1, n + 1)
    return max(np.max(i / n - f), np.max(f - (i - 1) / n))


def _long_run(dynamics, h, n, horizon=5.0, seed=1):
    energy = ReferenceEnergy("double_well", 1)
    x0 = np.random.default_rng(seed).normal(size=(n, 1))  # symmetric: both wells equally filled
    steps = int(round(horizon / h))
    traj = simulate(energy, dynamics, x0, steps, jax.random.PRNGKey(seed), h, save_every=steps)
    return traj.x[:, -1, 0]


def test_langevin_samples_boltzmann_law():
    energy = ReferenceEnergy("double_well", 1)
    grid, cdf = _boltzmann_cdf(energy, 0.5)
    n = 5000
    samples = _long_run(Langevin(0.5), 0.002, n)
    assert _ks(samples, grid, cdf) < 1.36 / np.sqrt(n)


def test_ks_grows_with_step_for_langevin_not_for_mala():
    energy = ReferenceEnergy("double_well", 1)
    grid, cdf = _boltzmann_cdf(energy, 0.5)
    n = 20000
    bound = 1.36 / np.sqrt(n)
    steps = [0.002, 0.01, 0.03]
    ula = [_ks(_long_run(Langevin(0.5), h, n), grid, cdf) for h in steps]
    mala = [_ks(_long_run(MALA(0.5), h, n), grid, cdf) for h in steps]
    assert ula[0] < ula[1] < ula[2], ula
    assert ula[2] > 2 * bound, ula
    assert max(mala) < bound, mala


def test_mala_acceptance_falls_with_step():
    energy = ReferenceEnergy("double_well", 1)
    mala = MALA(0.5)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2000, 1)))
    rates = []
    for h in (0.01, 0.1, 0.3):
        keys = jax.random.split(KEY, x.shape[0])
        _, acc = jax.vmap(lambda s, k, h=h: mala.step_with_acceptance(energy, s, k, h))(x, keys)
        rates.append(float(jnp.mean(acc)))
    assert rates[0] > rates[1] > rates[2] and rates[0] > 0.95


def test_exponentiated_gradient_on_linear_energy_is_softmax_annealing():
    c = np.array([0.3, -1.2, 0.7, 2.0, -0.1])
    energy = FeatureEnergy(Monomials(5, 1), c)  # E(p) = ⟨p, c⟩
    p0 = np.full((1, 5), 0.2)
    eta, steps = 0.05, 40
    traj = simulate(energy, ExponentiatedGradient(), p0, steps, KEY, eta)
    for k in (1, 10, 40):
        expected = np.asarray(jax.nn.softmax(-eta * k * jnp.asarray(c)))
        np.testing.assert_allclose(traj.x[0, k], expected, rtol=1e-13, atol=1e-15)


def test_the_notes_plus_sign_raises_energy():
    c = np.array([0.3, -1.2, 0.7])
    energy = FeatureEnergy(Monomials(3, 1), c)
    p0 = np.full((1, 3), 1 / 3)
    up = simulate(energy, ExponentiatedGradient(sign=+1), p0, 20, KEY, 0.1)
    down = simulate(energy, ExponentiatedGradient(), p0, 20, KEY, 0.1)
    e_up = np.asarray(energy.energy(up.x[0]))
    e_down = np.asarray(energy.energy(down.x[0]))
    assert np.all(np.diff(e_up) > 0) and np.all(np.diff(e_down) < 0)


def test_simulation_divergence_keeps_the_trajectory():
    energy = Quadratic.from_matrix(np.zeros(1), [[10.0]])
    x0 = np.array([[1.0], [0.0]])
    with pytest.raises(SimulationDivergedError) as info:
        simulate(energy, GradientDescent(), x0, 2000, KEY, 0.5, chunk_saves=100)
    err = info.value
    # |1 − 0.5·10| = 4 per step: overflows float64 after ~512 steps
    assert 500 < err.step < 520
    assert err.trajectory == 0
    assert np.isfinite(err.last_state).all()
    assert "trajectory 0" in str(err) and f"step {err.step}" in str(err)
    kept = err.trajectories
    assert kept is not None and np.isfinite(kept.x).all()
    # the saves before the blow-up that data may hold: x_k = (−4)^k up to 4^249 ≤ 1e150
    assert kept.n_times == 250 and np.abs(kept.x).max() <= 1e150
    np.testing.assert_allclose(kept.x[0, :5, 0], [1, -4, 16, -64, 256])


def test_simulate_checks_inputs():
    energy = ReferenceEnergy("double_well", 1)
    with pytest.raises(ValueError, match="multiple of save_every"):
        simulate(energy, GradientDescent(), np.zeros((2, 1)), 10, KEY, 0.1, save_every=3)
    with pytest.raises(ValueError, match="x0: expected shape"):
        simulate(energy, GradientDescent(), np.zeros((2, 1, 1)), 10, KEY, 0.1)
    with pytest.raises(ValueError, match="finite"):
        simulate(energy, GradientDescent(), np.array([[np.nan]]), 10, KEY, 0.1)
    with pytest.raises(TypeError, match="needs an energy"):
        simulate(RotationField(), MALA(1.0), np.zeros((2, 2)), 10, KEY, 0.1)


def test_simulate_records_times_and_shapes():
    energy = ReferenceEnergy("double_well", 1)
    traj = simulate(energy, Langevin(0.1), np.zeros(1), 100, KEY, 0.01, save_every=10)
    assert traj.x.shape == (1, 11, 1)
    np.testing.assert_allclose(traj.t[0], np.arange(11) * 0.1)


def test_langevin_on_particle_energy_runs():
    from iel.energies import ParticleEnergy

    energy = ParticleEnergy(Quadratic.from_matrix(np.zeros(2), np.eye(2)), None)
    traj = iel.simulate(energy, Langevin(0.2), np.zeros((3, 5, 2)), 20, KEY, 0.01)
    assert traj.x.shape == (3, 21, 5, 2)
