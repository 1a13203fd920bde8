"""Standard errors, intervals and the bootstrap (iel.linear.uncertainty, iel.estimators.bootstrap).

The coverage test simulates 200 independent double-well datasets at once (one Euler–Maruyama
run of all their trajectories), accumulates each dataset's normal equations in one pass
(``grouped_normal_equations``) and solves the 200 systems in one batched call.
"""

from __future__ import annotations

import json

import jax
import numpy as np
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.dynamics import Langevin, simulate
from iel.energies.features import Monomials
from iel.estimators.bootstrap import bootstrap_uncertainty
from iel.estimators.trajectories.closed_form import OneStepClosedForm
from iel.estimators.uncertainty import energy_band
from iel.linear.grouped import grouped_normal_equations
from iel.linear.normal_equations import normal_equations
from iel.linear.uncertainty import linear_intervals
from iel.systems import get_system

# x⁴ − 2x² + 1 in the poly:4 library (x, x², x³, x⁴)
TRUTH = np.array([0.0, -2.0, 0.0, 1.0])
TEMPERATURE = 0.5


def _repetitions(reps: int, n: int, steps: int, seed: int, dt: float = 0.01):
    """``reps`` double-well datasets of ``n`` trajectories, their batched intervals."""
    energy = get_system("double_well").energy
    rng = np.random.default_rng(seed)
    x0 = rng.choice([-1.0, 1.0], size=(reps * n, 1)) + 0.3 * rng.normal(size=(reps * n, 1))
    data = simulate(energy, Langevin(TEMPERATURE), x0, steps, jax.random.PRNGKey(seed), dt)
    x0s, dx, h = data.increments()
    group = np.repeat(np.arange(reps * n) // n, steps)
    eq = grouped_normal_equations(Monomials(1, 4), x0s, dx, h, group, reps)
    return linear_intervals(eq.gram, eq.rhs, eq.sq_over_h, eq.n_rows)


def test_closed_form_intervals_cover_the_double_well_coefficients_95_percent():
    fit = _repetitions(reps=200, n=10, steps=200, seed=3)
    covered = (fit.low <= TRUTH) & (fit.high >= TRUTH)  # (200, 4)
    per_term = covered.mean(axis=0)
    pooled = covered.mean()
    t_covered = np.mean(
        (fit.temperature_low <= TEMPERATURE) & (fit.temperature_high >= TEMPERATURE)
    )
    # the band on the pooled 800 intervals; each term and T within the binomial
    # band of 200 draws at 95 % (±3.3 standard deviations of √(0.95·0.05/200) = 1.5 %)
    assert 0.93 <= pooled <= 0.97, (pooled, per_term)
    assert np.all((per_term >= 0.90) & (per_term <= 1.0)), per_term
    assert 0.90 <= t_covered <= 1.0, t_covered
    # and the intervals are informative: the x⁴ coefficient (1) to about ±0.3
    assert np.median(fit.high[:, 3] - fit.low[:, 3]) < 0.6


def test_estimator_reports_intervals_matching_the_batched_solve():
    data = iel.simulate_system("double_well", n=20, steps=200, dt=0.01, temperature=0.5)
    model = OneStepClosedForm("poly:4").fit(data).model_
    unc = model.uncertainty
    assert [c["term"] for c in unc["coefficients"]] == Monomials(1, 4).names()
    x0, dx, h = data.increments()
    eq = normal_equations(Monomials(1, 4), x0, dx, h)
    fit = linear_intervals(eq.gram, eq.rhs, eq.sq_over_h, eq.n_rows)
    np.testing.assert_allclose([c["value"] for c in unc["coefficients"]], fit.theta, rtol=1e-8)
    np.testing.assert_allclose([c["stderr"] for c in unc["coefficients"]], fit.stderr, rtol=1e-8)
    assert unc["temperature"]["low"] < model.temperature < unc["temperature"]["high"]
    # Cov = 2T̂ A⁻¹ against an independent inverse
    np.testing.assert_allclose(
        fit.covariance, 2 * fit.temperature * np.linalg.inv(eq.gram), rtol=1e-6
    )
    # the band on E is zero at the anchor and grows outside the data
    anchor = np.asarray(unc["anchor"])
    band = energy_band(model, np.array([anchor, [0.0], [2.5]]))
    assert band[0] == 0.0 and 0 < band[1] < band[2]


def test_collinear_features_have_nan_stderr():
    # x1 = x0 on every state: ∇(x0·x1) = ½(∇x0² + ∇x1²), so the three quadratic terms are not
    # identified one by one (only combinations are); the linear terms still are
    data = iel.simulate_system("double_well", n=20, steps=100, dt=0.01, temperature=0.5)
    twin = iel.Trajectories(np.concatenate([data.x, data.x], axis=-1), t=data.t)
    model = OneStepClosedForm("poly:2").fit(twin).model_
    stderr = {c["term"]: c["stderr"] for c in model.uncertainty["coefficients"]}
    assert np.isfinite(stderr["x0"]) and np.isfinite(stderr["x1"]), stderr
    assert all(np.isnan(stderr[t]) for t in ("x0^2", "x0*x1", "x1^2")), stderr
    assert any("not identified" in n for n in model.uncertainty["notes"])


def test_bootstrap_agrees_with_the_analytic_stderr_and_is_reproducible():
    data = iel.simulate_system("double_well", n=60, steps=200, dt=0.01, temperature=0.5)
    model = OneStepClosedForm("poly:4").fit(data).model_
    boot = bootstrap_uncertainty(data, model, 300, seed=4)
    analytic = np.array([c["stderr"] for c in model.uncertainty["coefficients"]])
    resampled = np.array([c["stderr"] for c in boot["coefficients"]])
    np.testing.assert_allclose(resampled, analytic, rtol=0.2)
    again = bootstrap_uncertainty(data, model, 300, seed=4)
    assert again["coefficients"] == boot["coefficients"]
    assert boot["temperature"]["low"] < model.temperature < boot["temperature"]["high"]


def test_bootstrap_by_refitting_matches_the_grouped_shortcut():
    data = iel.simulate_system("double_well", n=15, steps=100, dt=0.01, temperature=0.5)
    model = OneStepClosedForm("poly:4").fit(data).model_
    fast = bootstrap_uncertainty(data, model, 8, seed=2)
    slow = bootstrap_uncertainty(
        data, model.replace(method="refitted"), 8, seed=2,
        refit=lambda d: OneStepClosedForm("poly:4").fit(d).model_,
    )  # fmt: skip
    # the same draws (multinomial counts vs picked indices differ), so compare spreads loosely
    for a, b in zip(fast["coefficients"], slow["coefficients"]):
        assert a["term"] == b["term"]
        assert 0.3 < a["stderr"] / b["stderr"] < 3.0


def test_report_round_trip_and_cli_bootstrap(tmp_path):
    data = iel.simulate_system("double_well", n=20, steps=100, dt=0.01, temperature=0.5)
    path = tmp_path / "dw.npz"
    np.savez(path, x=data.x, t=data.t)
    out = tmp_path / "dw.iel"
    result = CliRunner().invoke(
        app, ["fit", str(path), "--energy", "poly:4", "--out", str(out), "--bootstrap", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "± stderr" in result.output
    report = json.loads((out / "report.json").read_text())
    unc = report["uncertainty"]
    assert {"term", "value", "stderr", "low", "high"} <= set(unc["coefficients"][0])
    assert set(unc["temperature"]) == {"value", "low", "high"}
    assert unc["n_resamples"] == 20 and "analytic" in unc
    loaded = iel.load(out)
    assert loaded.uncertainty["coefficients"] == unc["coefficients"]
