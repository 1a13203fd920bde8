"""Same particles or fresh samples: ``iel.fit`` decides from the snapshots which estimator
applies (:mod:`iel.selection.snapshot_regime`), says why, and can be told."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.data import Snapshots
from iel.selection.snapshot_regime import decide_regime


def ou_snapshots(n, temperature, dt, times=6, fresh=True, dim=1, spread=None, seed=0):
    """Ornstein–Uhlenbeck ``V = |x|²/2`` (Euler–Maruyama, 10 substeps per gap) from
    ``N(2, 0.1)`` (or centred with ``spread``); ``fresh``: each time a random half of the
    population, else every particle at every time (rows shuffled)."""
    rng = np.random.default_rng(seed)
    if spread is None:
        x = 2.0 + np.sqrt(0.1) * rng.standard_normal((n, dim))
    else:
        x = spread * rng.standard_normal((n, dim))
    xs = []
    for k in range(times):
        if k:
            for _ in range(10):
                h = dt / 10
                x = x - x * h + np.sqrt(2 * temperature * h) * rng.standard_normal(x.shape)
        xs.append(x[rng.choice(n, n // 2, replace=False)] if fresh else rng.permutation(x))
    return Snapshots(np.concatenate(xs), np.repeat(np.arange(times) * dt, [len(p) for p in xs]))


def _force_error(model, states):
    """Relative RMS error of the fitted force against the truth ``F = −x``."""
    force = np.asarray(model.force(states))
    return float(np.sqrt(np.mean((force + states) ** 2) / np.mean(states**2)))


@pytest.fixture(scope="module")
def fresh_ou():
    """The failure of issue 26: 3000 OU particles at T = 0.5, each snapshot a random half
    (the one-step OT fit read T = 0.024 from it, 20× too low, without a warning)."""
    return ou_snapshots(3000, 0.5, dt=0.1)


def test_fresh_samples_are_recognised_and_fitted_by_the_jko_condition(fresh_ou):
    model = iel.fit(fresh_ou, "quadratic")
    assert model.diagnostics["snapshot_regime"] == "fresh"
    assert model.method.startswith("snapshots-resampled-jko")
    assert model.temperature == pytest.approx(0.5, rel=0.1)
    assert _force_error(model, fresh_ou.x) < 0.2
    assert model.diagnostics["snapshot_regime_test"]["ratio"] > 1.0
    assert "independent samples" in model.diagnostics["method_reason"]


@pytest.mark.slow
def test_told_the_same_particles_it_pairs_fresh_samples_and_t_comes_out_far_too_low(fresh_ou):
    """The override is obeyed (and shows the failure it replaces; slow: the registration of
    fresh samples runs to its iteration limit)."""
    same = iel.fit(fresh_ou, "quadratic", regime="same")
    assert same.diagnostics["snapshot_regime"] == "same"
    assert "chosen by the caller" in same.diagnostics["snapshot_regime_reason"]
    assert same.temperature < 0.2


def test_the_cli_decides_and_writes_the_reason_to_the_report(fresh_ou, tmp_path):
    path = tmp_path / "ou.npz"
    np.savez(path, x=fresh_ou.x, t=fresh_ou.t)
    result = CliRunner().invoke(app, ["fit", str(path), "--kind", "snapshots", "--energy",
                                      "quadratic"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ou.iel" / "report.json").read_text())
    assert report["temperature"] == pytest.approx(0.5, rel=0.1)
    assert report["diagnostics"]["snapshot_regime"] == "fresh"
    assert "independent samples" in report["diagnostics"]["snapshot_regime_reason"]
    assert "fresh samples" in report["diagnostics"]["method_reason"]
    bad = CliRunner().invoke(app, ["fit", str(path), "--kind", "snapshots", "--regime", "both",
                                   "-o", str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code != 0 and "regime must be one of auto, same, fresh" in bad.output


def test_same_particles_are_recognised_and_fitted_as_before():
    """The same OU system seen as whole populations whose noise per step (0.063) is below
    the particles' spacing (the JKOnet* protocol, tests/test_snapshots.py): the same
    particles, paired by transport, T within 10 % and the force within 25 %."""
    data = ou_snapshots(600, 0.2, dt=0.01, times=4, fresh=False, dim=2, spread=1.5, seed=4)
    model = iel.fit(data, "poly:2")
    assert model.diagnostics["snapshot_regime"] == "same", model.diagnostics["method_reason"]
    assert model.diagnostics["snapshot_regime_test"]["ratio"] < 0.5
    assert model.method.startswith("snapshots-ot-onestep")
    assert model.temperature == pytest.approx(0.2, rel=0.1)
    assert _force_error(model, data.x) < 0.25


def test_noise_free_pairs_are_the_same_particles():
    traj = iel.simulate_system("styblinski_tang", n=300, steps=3, dt=0.01, seed=3)
    rng = np.random.default_rng(0)
    x = np.concatenate([traj.x[rng.permutation(300), k] for k in range(traj.n_times)])
    decision = decide_regime(Snapshots(x, np.repeat(traj.t[0], 300)), "poly:4")
    assert decision.regime == "same" and "noise-free" in decision.reason


def test_a_step_that_folds_is_still_the_same_particles():
    """Bohachevsky's ripples fold the step: transport pairs part of the particles wrongly and
    the residual is 0.75 of independent samples' — but it grows by half when the gap doubles,
    which independent samples' differences do not: the same particles (the one-step fit then
    registers the step, as before)."""
    x0 = np.random.default_rng(0).uniform(-4, 4, size=(1000, 2))
    traj = iel.simulate_system("bohachevsky", n=1000, steps=5, dt=0.01, dim=2, x0=x0)
    rng = np.random.default_rng(1)
    x = np.concatenate([traj.x[rng.permutation(1000), k] for k in range(traj.n_times)])
    decision = decide_regime(Snapshots(x, np.repeat(traj.t[0], 1000)))
    assert decision.regime == "same", decision.reason
    assert decision.statistics["ratio"] > 0.5 and decision.statistics["growth_with_gap"] > 1.15


def test_unequal_sizes_are_fresh_samples_and_hints_and_overrides_win(rng):
    sizes = (400, 300, 350)
    x = np.concatenate([rng.normal(size=(n, 1)) for n in sizes])
    t = np.repeat([0.0, 0.1, 0.2], sizes)
    decision = decide_regime(Snapshots(x, t))
    assert decision.regime == "fresh" and "(400, 300, 350)" in decision.reason
    assert decide_regime(Snapshots(x, t), regime="same").regime == "same"
    hinted = Snapshots(x, t, same_particles=True)
    assert decide_regime(hinted).regime == "same" and "same_particles=True" in (
        decide_regime(hinted).reason
    )
    assert decide_regime(hinted, regime="fresh").regime == "fresh"  # explicit beats the hint
    with pytest.raises(iel.data.DataError, match="same_particles: expected True, False or None"):
        Snapshots(x, t, same_particles="yes")
    with pytest.raises(ValueError, match="regime must be one of"):
        decide_regime(hinted, regime="both")


def test_the_hint_and_resampled_reach_the_fit(fresh_ou):
    hinted = Snapshots(fresh_ou.x, fresh_ou.t, same_particles=False)
    model = iel.fit(hinted, "quadratic")
    assert model.diagnostics["snapshot_regime"] == "fresh"
    assert "same_particles=False" in model.diagnostics["snapshot_regime_reason"]
    as_before = iel.fit(fresh_ou, "quadratic", resampled=True)  # the older name of "fresh"
    assert as_before.diagnostics["snapshot_regime"] == "fresh"
    assert as_before.temperature == pytest.approx(model.temperature, rel=1e-12)
    with pytest.raises(ValueError, match="contradicts regime='same'"):
        iel.fit(fresh_ou, "quadratic", resampled=True, regime="same")


@pytest.mark.slow  # ~25 s of CPU, mostly compiling the JKO fit's score matching
def test_a_fresh_sample_fit_in_many_dimensions_says_what_was_not_recovered():
    """In ten or more dimensions the JKO fit's report carries the benchmark's warning."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 10))
    data = iel.Snapshots(x, np.repeat([0.0, 0.1], 100), same_particles=False)
    model = iel.fit(data, energy="quadratic")
    assert model.diagnostics["snapshot_regime"] == "fresh"
    assert any("fresh samples in 10 dimensions" in n for n in model.diagnostics.notes)
