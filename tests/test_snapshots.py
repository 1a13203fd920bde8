"""Snapshots without identities: optimal-transport couplings and the one-step fit on them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import iel
from iel.data import Snapshots
from iel.estimators.snapshots.onestep import (
    SnapshotOneStep,
    paired_transitions,
)
from iel.estimators.trajectories.noise_level import neighbour_difference_variance
from iel.selection.snapshot_pairs import (
    SNAPSHOT_AUTO_NOTE,
    SNAPSHOT_NETWORK,
    select_snapshot_pairs,
)
from iel.systems import simulate_system
from iel.transport.couplings import (
    couple,
    exact_plan,
)


def _snapshots(traj, rng):
    n = traj.n_trajectories
    xs = np.concatenate([traj.x[rng.permutation(n), k] for k in range(traj.n_times)])
    return Snapshots(xs, np.repeat(traj.t[0], n))


def test_exact_plan_is_the_optimal_assignment(rng):
    """For equal sizes the exact OT plan is the optimal assignment (checked with an
    independent solver) and the barycentric projection pairs each particle once."""
    a, b = rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 0.3
    plan = exact_plan(a, b)
    rows, cols = linear_sum_assignment(((a[:, None] - b[None]) ** 2).sum(-1))
    np.testing.assert_allclose(plan[rows, cols], 1 / 60)
    np.testing.assert_allclose(plan.sum(), 1.0)
    dest, how = couple(a, b)
    np.testing.assert_allclose(dest, b[cols])
    assert "exact optimal transport" in how


def test_unequal_sizes_use_the_barycentric_projection(rng):
    a, b = rng.normal(size=(30, 2)), rng.normal(size=(45, 2))
    plan = exact_plan(a, b)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 30)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 45)
    dest, _ = couple(a, b)
    np.testing.assert_allclose(dest, 30 * plan @ b)


def test_unequal_sizes_point_to_the_resampled_fit(rng):
    """Snapshots of different sizes cannot all be the same particles: the one-step fit says
    so and names the estimator for fresh samples; equal sizes get no such note."""
    sizes = (200, 150, 180)
    x = np.concatenate([rng.normal(size=(n, 2)) for n in sizes])
    model = SnapshotOneStep("poly:2").fit(iel.Snapshots(x, np.repeat([0.0, 0.1, 0.2], sizes)))
    notes = " ".join(model.model_.diagnostics["notes"])
    assert "different numbers of particles (200, 150, 180)" in notes
    assert "--resampled" in notes
    equal = SnapshotOneStep("poly:2").fit(iel.Snapshots(x[:400], np.repeat([0.0, 0.1], 200)))
    assert not any("different numbers" in n for n in equal.model_.diagnostics.get("notes", []))


def test_pairing_recovers_identities_for_a_monotone_step_map(rng):
    # τ∇²V ≺ I on [−4, 4]² for Styblinski–Tang with τ = 0.01: OT finds the true pairs
    traj = simulate_system("styblinski_tang", n=400, steps=5, dt=0.01, seed=3)
    pairs, _ = paired_transitions(_snapshots(traj, rng))
    x0, x1, _ = pairs.transitions()
    starts, ends = traj.x[:, :-1].reshape(-1, 2), traj.x[:, 1:].reshape(-1, 2)
    truth = {tuple(np.round(a, 12)): b for a, b in zip(starts, ends)}
    for a, b in zip(x0, x1):
        np.testing.assert_allclose(b, truth[tuple(np.round(a, 12))], atol=1e-12)


def test_true_pairs_separate_the_pairing_error_from_the_fit(rng):
    """Bohachevsky folds (τλmax(∇²V) up to 6.7): the optimal-transport pairing misses most
    particles, and the formula fitted on it is wrong.  ``fit_pairs`` on the true transitions
    — what a benchmark that knows the identities can offer — recovers the formula, and on the
    OT pairs it is the step ``fit`` takes (with ``pairing="transport"``; the registration
    that follows the folds is tested in test_registration.py)."""
    traj = simulate_system("bohachevsky", n=400, steps=2, dt=0.01, seed=5)
    data = _snapshots(traj, rng)
    spec = "poly:2+fourier:4:0.3183098861837907"  # holds 3πx and 4πy: the true family
    estimator = SnapshotOneStep(spec, pairing="transport")
    model = estimator.fit(data).model_
    ot_pairs = estimator.pairs_
    order = {tuple(np.round(z, 12)): i for i, z in enumerate(traj.x[:, 0])}
    first = [order[tuple(np.round(z, 12))] for z in ot_pairs.x[:400, 0]]
    wrong = np.mean(np.any(ot_pairs.x[:400, 1] != traj.x[first, 1], axis=1))
    assert wrong > 0.5  # the step folds: most of the pairing is wrong
    truth = iel.get_system("bohachevsky").energy
    states = rng.uniform(-3.5, 3.5, size=(500, 2))
    f_true = np.asarray(truth.force(states))

    def error(fitted):
        diff = np.asarray(fitted.force(states)) - f_true
        return np.sum(diff**2) / np.sum(f_true**2)

    assert error(model) > 0.05  # the folded pairing's formula is far off
    true_pairs = iel.Trajectories(traj.x, t=traj.t)
    assert error(estimator.fit_pairs(data, true_pairs)) < 1e-12
    again = estimator.fit_pairs(data, ot_pairs)
    np.testing.assert_allclose(np.asarray(again.force(states)), np.asarray(model.force(states)))


@pytest.mark.parametrize("name", ["styblinski_tang", "watershed", "sphere"])
def test_polynomial_potentials_recovered_from_snapshots(name, rng):
    traj = simulate_system(name, n=500, steps=5, dt=0.01, seed=4)
    model = SnapshotOneStep(select=select_snapshot_pairs).fit(_snapshots(traj, rng)).model_
    truth = iel.get_system(name).energy
    states = rng.uniform(-3.5, 3.5, size=(500, 2))
    f_true = np.asarray(truth.force(states))
    err = np.sum((np.asarray(model.force(states)) - f_true) ** 2) / np.sum(f_true**2)
    assert err < 1e-12
    assert model.data_kind == "snapshots" and "optimal transport" in model.diagnostics["coupling"]
    assert model.diagnostics["unexplained_motion_share"] < 1e-12
    assert SNAPSHOT_AUTO_NOTE in model.diagnostics["notes"]  # the report says what auto skips
    # an exact formula: the network is not fitted, and the report says so
    skipped = [n for n in model.diagnostics["notes"] if n.startswith("not fitted:")]
    assert skipped and SNAPSHOT_NETWORK in skipped[0], model.diagnostics["notes"]
    # OT pairs are gradient displacements (Brenier): the non-gradient test is not made
    assert model.diagnostics["gradient_system"] is None
    assert "Brenier" in model.diagnostics["gradient_system_note"]


def test_simulated_interacting_snapshots_move_by_the_mean_field():
    """``simulate_system(..., interaction=True)``: the system's energy is the pair energy of
    one system of all particles.  For sphere, ``W(r) = −10‖r‖²``, each particle moves by
    ``20(x_i − x̄)`` — the second snapshot is that step of the first, as a set; tracked, each
    particle's second state is its own step."""
    data = simulate_system("sphere", n=50, steps=1, dt=0.01, snapshots=True, interaction=True)
    first, second = data.populations()
    expected = first + 0.01 * 20 * (first - first.mean(axis=0))
    rows = lambda points: points[np.argsort(points[:, 0])]  # noqa: E731 (a set's rows, in order)
    np.testing.assert_allclose(rows(second), rows(expected), atol=1e-12)
    tracked = simulate_system("sphere", n=50, steps=1, dt=0.01, interaction=True)
    np.testing.assert_allclose(tracked.x[:, 1], tracked.x[:, 0] + 0.01 * 20 * (
        tracked.x[:, 0] - tracked.x[:, 0].mean(axis=0)), atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="independent runs"):
        simulate_system("sphere", n=10, steps=1, endpoints=True, interaction=True)
    with pytest.raises(ValueError, match="no energy"):
        simulate_system("rotation", n=10, steps=1, snapshots=True, interaction=True)


def test_a_family_that_misses_the_force_leaves_motion_unexplained_and_says_so(rng):
    """Styblinski–Tang's quartic fitted with quadratics: the report gives the share of the
    paired displacements the drift leaves unexplained, ``Σ‖Δx − hF‖² / Σ‖Δx‖²`` (checked
    here by hand), and a note where it passes 5 %."""
    traj = simulate_system("styblinski_tang", n=300, steps=5, dt=0.01, seed=4)
    estimator = SnapshotOneStep("poly:2").fit(_snapshots(traj, rng))
    model = estimator.model_
    x0, dx, h = estimator.pairs_.increments()
    by_hand = np.sum((dx - h[:, None] * np.asarray(model.force(x0))) ** 2) / np.sum(dx**2)
    share = model.diagnostics["unexplained_motion_share"]
    assert share == pytest.approx(by_hand, rel=1e-9) and share > 0.05
    assert any("unexplained" in note for note in model.diagnostics["notes"])
    # a population that does not move: transport's rounding is no motion to explain
    still = traj.x[:, 0]
    resting = Snapshots(np.concatenate([still[rng.permutation(len(still))] for _ in range(3)]),
                        np.repeat([0.0, 0.01, 0.02], len(still)))  # fmt: skip
    quiet = SnapshotOneStep("poly:2").fit(resting).model_
    assert quiet.diagnostics["unexplained_motion_share"] == 0.0
    assert not any("unexplained" in note for note in quiet.diagnostics["notes"])


def test_snapshots_through_the_cli(tmp_path):
    path = tmp_path / "st.npz"
    run = [sys.executable, "-m", "iel"]
    simulate = ["simulate", "styblinski_tang", "--n", "300", "--steps", "5", "--snapshots"]
    subprocess.run([*run, *simulate, "--out", str(path)], check=True, capture_output=True)
    proc = subprocess.run([*run, "fit", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "st.iel" / "report.json").read_text())
    assert report["data_kind"] == "snapshots"
    assert "0.500·x0^4" in report["formula"]
    assert report["diagnostics"]["pairing"]["kept"] in ("transport", "registration")
    pinned = subprocess.run([*run, "fit", str(path), "--pairing", "transport", "--out",
                             str(tmp_path / "t")], capture_output=True, text=True)  # fmt: skip
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["diagnostics"]["pairing"]["reason"] == "transport asked for"
    rollout = subprocess.run([*run, "fit", str(path), "--method", "rollout", "--steps", "5",
                              "--energy", "poly:4", "--out", str(tmp_path / "r")],
                             capture_output=True, text=True)  # fmt: skip
    assert rollout.returncode == 0, rollout.stdout + rollout.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["method"] == "snapshots-rollout-sinkhorn"
    # an interacting system, simulated and fitted: the report, and a landscape with a panel
    # for V and one for W
    particles = tmp_path / "sphere_w.npz"
    subprocess.run([*run, "simulate", "sphere", "--n", "100", "--steps", "5", "--snapshots",
                    "--interaction", "--out", str(particles)], check=True,
                   capture_output=True)  # fmt: skip
    inter = subprocess.run([*run, "fit", str(particles), "--energy", "poly:2", "--interaction",
                            "2", "--out", str(tmp_path / "w")],
                           capture_output=True, text=True)  # fmt: skip
    assert inter.returncode == 0, inter.stdout + inter.stderr
    report = json.loads((tmp_path / "w" / "report.json").read_text())
    assert "interaction even poly:2" in report["energy_spec"]
    assert (tmp_path / "w" / "landscape.png").stat().st_size > 0
    bad = subprocess.run([*run, "fit", str(path), "--coupling", "greedy", "--out",
                          str(tmp_path / "b")], capture_output=True, text=True)  # fmt: skip
    message = " ".join(bad.stdout.split())  # rich wraps long lines
    assert bad.returncode == 2 and "coupling must be one of" in message
    bad = subprocess.run([*run, "fit", str(path), "--pairing", "nearest", "--out",
                          str(tmp_path / "b")], capture_output=True, text=True)  # fmt: skip
    message = " ".join(bad.stdout.split())
    assert bad.returncode == 2 and "pairing must be one of" in message


def test_interaction_energy_recovered_on_a_particle_system():
    import jax

    from iel.energies import FeatureEnergy, Monomials, ParticleEnergy
    from iel.energies.features import EvenMonomials

    one_body = FeatureEnergy(Monomials(2, 2), [0, 0, 0.5, 0, 0.5])  # ½|x|²
    pair = FeatureEnergy(EvenMonomials(2, 4), [0, 0, 0, -0.25, 0, -0.5, 0, -0.25])  # −|r|⁴/4
    truth = ParticleEnergy(one_body, pair)
    x0 = np.random.default_rng(0).normal(size=(1, 300, 2)) * 1.5
    traj = iel.simulate(truth, iel.GradientDescent(), x0, 5, jax.random.PRNGKey(0), 0.01)
    rng = np.random.default_rng(1)
    xs = np.concatenate([traj.x[0, k][rng.permutation(300)] for k in range(6)])
    model = iel.fit(Snapshots(xs, np.repeat(traj.t[0], 300)), "poly:2", interaction=4)
    fitted = model.energy_module
    np.testing.assert_allclose(np.asarray(fitted.pair.theta)[3:], [-0.25, 0, -0.5, 0, -0.25],
                               atol=1e-6)  # fmt: skip
    # quadratic V and W are confounded (the mean barely moves); their sum is identified
    quad = np.asarray(fitted.one_body.theta)[2:] + np.asarray(fitted.pair.theta)[:3]
    np.testing.assert_allclose(quad, [0.5, 0.0, 0.5], atol=1e-6)
    population = traj.x[0, 2]
    np.testing.assert_allclose(np.asarray(model.force(population)),
                               np.asarray(truth.force(population)), atol=1e-6)  # fmt: skip
    assert "confounded" in model.identifiability["energy"]


def test_interaction_alone_is_chosen_by_description_length_and_transfers(tmp_path):
    """Particles moved by a pair energy alone: with ``energy="auto"`` the shortest code keeps
    W without V, and its forces hold on another population (shifted and stretched).  Fitting
    V + W as well (``energy="poly:4"``) explains the training snapshots as closely, with
    cancelling V and W — its forces on the other population are wrong."""
    import jax

    from iel.energies import FeatureEnergy, ParticleEnergy
    from iel.energies.features import EvenMonomials

    pair = FeatureEnergy(EvenMonomials(2, 4), [1.0, 0, 1.0, -0.05, 0, -0.1, 0, -0.05])
    truth = ParticleEnergy(None, pair)  # |r|² − |r|⁴/20
    x0 = np.random.default_rng(0).uniform(-2, 2, size=(1, 300, 2))
    traj = iel.simulate(truth, iel.GradientDescent(), x0, 5, jax.random.PRNGKey(0), 0.01)
    rng = np.random.default_rng(1)
    snaps = Snapshots(np.concatenate([traj.x[0, k][rng.permutation(300)] for k in range(6)]),
                      np.repeat(traj.t[0], 300))  # fmt: skip
    other = 1.5 * np.random.default_rng(2).normal(size=(200, 2)) + np.array([1.0, -0.5])
    chosen = iel.fit(snaps, interaction=4)
    assert chosen.energy_spec == "interaction even poly:4"
    assert chosen.energy_module.one_body is None
    bits = chosen.diagnostics["interaction_codes_bits"]
    assert bits["W"] < min(bits["V + W"], bits["V"])
    np.testing.assert_allclose(np.asarray(chosen.force(other)), np.asarray(truth.force(other)),
                               atol=1e-5)  # fmt: skip
    chosen.save(tmp_path / "w")  # a particle energy without V saves and loads
    np.testing.assert_array_equal(np.asarray(iel.load(tmp_path / "w").force(other)),
                                  np.asarray(chosen.force(other)))  # fmt: skip
    both = iel.fit(snaps, "poly:4", interaction=4)
    assert "interaction_codes_bits" not in both.diagnostics
    on_data = np.asarray(both.force(traj.x[0, 2])) - np.asarray(truth.force(traj.x[0, 2]))
    off_data = np.asarray(both.force(other)) - np.asarray(truth.force(other))
    assert np.max(np.abs(on_data)) < 1e-3 < np.max(np.abs(off_data))


def test_temperature_recovered_on_an_ornstein_uhlenbeck_population():
    """Langevin on V = ½|x|² (an Ornstein–Uhlenbeck population, Gaussian at every time) at
    T = 0.2, seen only as unpaired snapshots: the drift comes back, and the temperature —
    which the plain pairing residual underestimates, since transport undoes the noise of
    particles that crossed — is recovered within 5 % after calibration."""
    import jax

    from iel.energies.features import FeatureEnergy, Monomials

    library = Monomials(2, 2)
    half_square = FeatureEnergy(library, [0.5 if n in ("x0^2", "x1^2") else 0.0
                                          for n in library.names()])  # fmt: skip
    rng = np.random.default_rng(4)
    x0 = rng.normal(0.0, 1.5, size=(1000, 2))
    traj = iel.simulate(half_square, iel.Langevin(0.2), x0, 5, jax.random.PRNGKey(4), 0.01)
    est = SnapshotOneStep("poly:2").fit(_snapshots(traj, rng))
    model = est.model_
    terms = dict(model.energy_module.terms())
    # 5 steps of h = 0.01: the drift moves particles 0.01·|x| per step against noise 0.06
    assert terms["x0^2"] == pytest.approx(0.5, rel=0.25) and terms["x1^2"] == pytest.approx(
        0.5, rel=0.25
    )
    assert model.temperature == pytest.approx(0.2, rel=0.05)
    raw = model.diagnostics["pairing_residual_temperature"]
    assert raw < 0.85 * 0.2  # the plain pairing residual is 20 % low here
    again = iel.fit(_snapshots(traj, rng), "poly:2", refinements=2)  # iel.fit passes it on
    assert "re-coupled" in again.diagnostics["coupling"]
    with pytest.raises(ValueError, match="rollout takes no .*refinements"):
        iel.fit(_snapshots(traj, rng), "poly:2", method="rollout", refinements=2)
    assert again.temperature == pytest.approx(0.2, rel=0.05)


def test_neighbour_differences_see_the_noise_past_a_smooth_mean(rng):
    """Residuals ``m(x) + σξ`` with a smooth ``m`` far larger than the noise: the mean square
    is mostly ``m``, the neighbour-difference statistic is the pure noise's (same points, same
    trimming) within 5 %; shapes that do not match are refused."""
    x = rng.uniform(-2.0, 2.0, size=(4000, 2))
    noise = 0.3 * rng.standard_normal(x.shape)
    smooth = np.stack([3.0 * np.sin(x[:, 0]), 2.0 * x[:, 0] * x[:, 1]], axis=1)
    pure = neighbour_difference_variance(x, noise)
    seen = neighbour_difference_variance(x, smooth + noise)
    assert np.mean((smooth + noise) ** 2) > 20 * 0.3**2
    assert seen == pytest.approx(pure, rel=0.05)
    assert 0.7 * 0.3**2 < pure < 0.3**2  # the trimmed tenth lowers the pure noise's statistic
    with pytest.raises(ValueError, match=r"both be \(n, d\)"):
        neighbour_difference_variance(x, noise[:, :1])
    with pytest.raises(ValueError, match="at least 2 points"):
        neighbour_difference_variance(x[:1], noise[:1])


def test_noise_is_simulated_on_enough_snapshot_pairs():
    """Equal gaps: the first pairs holding 5000 particles; unequal gaps: every pair (the
    pairing shrinks the noise differently)."""
    from iel.estimators.snapshots.temperature import calibration_pairs

    equal = np.full(4, 0.01)
    assert calibration_pairs([3000] * 4, equal) == [0, 1]
    assert calibration_pairs([1000] * 4, equal) == [0, 1, 2, 3]
    assert calibration_pairs([3000] * 4, np.array([0.01, 0.02, 0.01, 0.01])) == [0, 1, 2, 3]


def test_temperature_is_read_past_a_force_the_family_misses():
    """Langevin at T = 0.2 on ``½|x|² + 0.3 x₀⁴`` fitted with ``poly:2``: the quartic's force
    is left in the pairing residuals, which count it as noise (``residual_temperature`` 45 %
    high); the neighbour differences cancel it and ``T`` comes back within 5 %."""
    import jax

    from iel.energies.features import FeatureEnergy, Monomials

    library = Monomials(2, 4)
    coefficients = {"x0^2": 0.5, "x1^2": 0.5, "x0^4": 0.3}
    energy = FeatureEnergy(library, [coefficients.get(n, 0.0) for n in library.names()])
    rng = np.random.default_rng(5)
    x0 = rng.normal(0.0, 1.5, size=(1000, 2))
    traj = iel.simulate(energy, iel.Langevin(0.2), x0, 5, jax.random.PRNGKey(5), 0.01)
    model = SnapshotOneStep("poly:2").fit(_snapshots(traj, rng)).model_
    assert model.temperature == pytest.approx(0.2, rel=0.05)
    assert model.diagnostics["residual_temperature"] > 1.3 * 0.2
    assert model.diagnostics["force_misfit_share"] > 0.2


def test_snapshot_auto_takes_a_network_where_no_formula_explains(rng):
    """``relu`` (−50 Σ max(v, 0)): no family of monomials or bumps has the kink, so auto
    tries the small network (full-batch L-BFGS) and its code is shorter; its one-step force
    error on fresh particles is far below the best fixed family's."""
    traj = simulate_system("relu", n=500, steps=5, dt=0.01, seed=5)
    snaps = _snapshots(traj, rng)
    model = SnapshotOneStep(select=select_snapshot_pairs).fit(snaps).model_
    assert model.energy_spec == f"auto → {SNAPSHOT_NETWORK}"
    linear = SnapshotOneStep("poly:6+rbf:30").fit(snaps).model_
    truth = iel.get_system("relu").energy
    states = rng.uniform(-3.5, 3.5, size=(2000, 2))
    f_true = np.asarray(truth.force(states))

    def error(m):
        return np.mean(np.linalg.norm(np.asarray(m.force(states)) - f_true, axis=1))

    assert error(model) < 0.5 * error(linear), (error(model), error(linear))


def test_auto_on_pairs_needs_the_selection_passed_in(rng):
    """Selection sits above the estimators: SnapshotOneStep("auto") says what to pass."""
    x = rng.normal(size=(200, 2))
    snaps = iel.Snapshots(np.concatenate([x, 0.9 * x]), np.repeat([0.0, 0.1], 200))
    with pytest.raises(ValueError, match="select=iel.selection.select_snapshot_pairs"):
        SnapshotOneStep().fit(snaps)
    model = SnapshotOneStep(select=iel.selection.select_snapshot_pairs).fit(snaps).model_
    assert model.energy_spec.startswith("auto → ")
