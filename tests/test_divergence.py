"""Divergence: a fit or a simulation that produces NaN or inf stops with a message naming the
step and what to change, and keeps the last finite state (the best finite parameters, the
trajectory up to the blow-up)."""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import iel
from iel import GradientDescent, Quadratic, SimulationDivergedError, simulate
from iel.estimators import Rollout
from iel.estimators.samples.hopfield import train_hopfield
from iel.estimators.trajectories.closed_form import OneStepClosedForm
from iel.systems import simulate_system
from iel.training import adam_step, run_training

KEY = jax.random.PRNGKey(0)


def _suggested_step(message: str) -> tuple[float, float]:
    """``(λ, dt)`` from '… largest curvature is λ … try dt ≤ dt'."""
    number = r"([0-9][0-9.e+-]*[0-9]|[0-9])"
    curvature = float(re.search(r"largest curvature is " + number, message).group(1))
    step = float(re.search(r"try dt ≤ " + number, message).group(1))
    return curvature, step


def test_stiff_step_names_step_time_and_the_stable_step():
    # gradient descent on ½ xᵀAx with eigenvalues 10 and 1: stable only for η < 2/10
    energy = Quadratic.from_matrix(np.zeros(2), [[10.0, 0.0], [0.0, 1.0]])
    x0 = np.array([[1.0, 1.0], [0.0, 0.5]])
    with pytest.raises(SimulationDivergedError) as info:
        simulate(energy, GradientDescent(), x0, 2000, KEY, 0.5, chunk_saves=100)
    err = info.value
    assert err.trajectory == 0 and f"step {err.step}" in str(err)
    assert f"t = {err.step * 0.5:g}" in str(err)
    curvature, step = _suggested_step(str(err))
    np.testing.assert_allclose(curvature, 10.0, rtol=1e-6)
    assert step <= 2 / 10.0
    kept = err.trajectories
    # x_k = (−4)^k: the saves up to the last within the data's magnitude bound are kept
    # (4^249 ≈ 3e149 ≤ 1e150 < 4^250)
    assert np.isfinite(kept.x).all() and kept.n_times == 250
    # the step it suggests is stable: the same run converges to the minimum
    calm = simulate(energy, GradientDescent(), x0, 2000, KEY, step, chunk_saves=100)
    assert np.abs(calm.x[:, -1]).max() < 1e-10


def test_fitted_model_simulate_stops_at_a_stiff_step():
    # noisy data: the model simulates by Euler–Maruyama (noise-free fits use a stable solver)
    data = simulate_system("double_well", n=30, steps=40, dt=0.01, temperature=0.05, seed=4)
    model = iel.fit(data, "poly:4", method="onestep")
    x0 = data.x[:5, 0]
    with pytest.raises(SimulationDivergedError) as info:
        model.simulate(x0, 3000, dt=3.0)
    err = info.value
    assert np.isfinite(err.last_state).all() and np.isfinite(err.trajectories.x).all()
    np.testing.assert_array_equal(err.trajectories.x[:, 0], x0)
    _, step = _suggested_step(str(err))
    stable = model.simulate(x0, 3000, dt=step)
    assert np.isfinite(stable.x).all()


def test_iel_simulate_reports_a_stiff_step_and_writes_nothing(tmp_path):
    out = tmp_path / "stiff.npz"
    run = subprocess.run(
        [sys.executable, "-m", "iel", "simulate", "double_well", "--dt", "2", "--steps", "400",
         "--n", "20", "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    message = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0 and not out.exists()
    assert "Traceback" not in message
    assert re.search(r"non-finite at step \d+ \(t = [0-9.e+]+\)", message), message
    assert "smaller --dt" in message
    _, step = _suggested_step(message)
    again = subprocess.run(
        [sys.executable, "-m", "iel", "simulate", "double_well", "--dt", str(step),
         "--steps", "400", "--n", "20", "-o", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert np.isfinite(iel.load_data(out).x).all()


def test_run_training_keeps_the_best_finite_parameters_when_the_loss_blows_up():
    # plain gradient descent on k·w²/2 with η·k = 3 > 2: |w| triples every step until inf
    k = 30.0
    optimiser = optax.sgd(0.1)
    step = adam_step(optimiser, lambda p: 0.5 * k * jnp.sum(p**2))
    scored = []

    def score(p, mean_loss):
        scored.append((np.asarray(p), mean_loss))
        return mean_loss

    w0 = jnp.asarray([1e-3, -2e-3])
    result = run_training(w0, optimiser.init(w0), step, lambda: (), score,
                          steps=2000, patience=10_000, eval_every=1)  # fmt: skip
    stopped = int(re.search(r"non-finite at step (\d+)", result.stop_reason).group(1))
    assert 300 < stopped < 700  # w doubles each step: 15·w² overflows near step 520
    assert np.isfinite(np.asarray(result.params)).all()
    assert len(scored) == stopped - 1  # every finite step was scored, the bad one was not
    best = int(np.argmin([s for _, s in scored]))
    np.testing.assert_array_equal(np.asarray(result.params), scored[best][0])
    assert f"kept the parameters of step {best + 1}" in result.stop_reason


def test_rollout_with_a_huge_learning_rate_keeps_finite_parameters():
    data = simulate_system("double_well", n=20, steps=20, dt=0.01, temperature=0.1, seed=3)
    model = Rollout("poly:4", learning_rate=30.0, steps=200, seed=0).fit(data).model_
    match = re.search(r"non-finite at step (\d+) .*kept the parameters of step (\d+)",
                      model.stop_reason)  # fmt: skip
    assert match, model.stop_reason
    assert "smaller learning rate" in model.stop_reason
    diverged, kept = int(match.group(1)), int(match.group(2))
    steps, losses = model.history["step"], model.history["heldout_loss"]
    assert steps[-1] < diverged and kept == steps[int(np.argmin(losses))]
    leaves = jax.tree_util.tree_leaves(model.energy_module)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in leaves)
    assert np.isfinite(model.diagnostics["rollout_mse"])


def test_closed_form_with_non_finite_coefficients_fails_clearly():
    rng = np.random.default_rng(5)
    # states of 1e60 pass the data's magnitude bound (1e150), but x⁴ · x⁴ in the normal
    # equations overflows
    x = np.cumsum(rng.normal(size=(10, 20, 1)), axis=1) * 1e60
    with pytest.raises(ValueError, match="non-finite values: .* are NaN or inf") as info:
        OneStepClosedForm("poly:4").fit(iel.Trajectories(x, dt=0.01))
    assert "rescale" in str(info.value)


def test_hopfield_training_keeps_the_last_finite_parameters():
    patterns = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 8))
    learned, info = train_hopfield(patterns, steps=30, learning_rate=1e100)
    match = re.search(r"non-finite at step (\d+) .*after (\d+) updates", info["stop_reason"])
    assert match, info["stop_reason"]
    bad, kept = int(match.group(1)), int(match.group(2))
    assert kept == bad - 2 and len(info["loss"]) == bad - 1
    assert np.isfinite(info["loss"]).all()
    # the same number of updates from the same start gives exactly those parameters
    again, _ = train_hopfield(patterns, steps=kept, learning_rate=1e100)
    np.testing.assert_array_equal(np.asarray(learned.raw_weights), np.asarray(again.raw_weights))
    assert np.isfinite(np.asarray(learned.raw_weights)).all()
