"""The one-step estimator (THEORY §4): recovery of known energies and temperatures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import iel
from iel.data import Trajectories
from iel.energies import CustomFeatures, FeatureEnergy, Monomials, Quadratic
from iel.estimators import OneStepClosedForm, OneStepLikelihood
from iel.systems import get_system, simulate_system

X2_X4 = CustomFeatures(lambda x: jnp.stack([x[0] ** 2, x[0] ** 4]), ["x0^2", "x0^4"], dim=1)


@pytest.fixture(scope="module")
def double_well_langevin():
    """THEORY §4's check: θ = (−2, 1) on (x², x⁴), T = 0.5, h = 0.01, 200 chains × 500 steps."""
    x0 = np.random.default_rng(0).normal(size=(200, 1))
    return simulate_system("double_well", n=200, steps=500, dt=0.01, temperature=0.5, x0=x0, seed=0)


def test_double_well_theta_within_one_percent_and_t_within_two(double_well_langevin):
    model = OneStepClosedForm(X2_X4).fit(double_well_langevin).model_
    theta = np.asarray(model.energy_module.theta)
    np.testing.assert_allclose(theta, [-2.0, 1.0], rtol=0.01)
    assert model.temperature == pytest.approx(0.5, rel=0.02)
    assert not model.diagnostics["noise_free"]
    assert model.identifiability["energy"].startswith("E up to an additive constant")


def test_default_polynomial_fit_on_double_well(double_well_langevin):
    model = iel.fit(double_well_langevin, "poly:4")
    terms = dict(model.energy_module.terms())
    assert terms["x0^4"] == pytest.approx(1.0, rel=0.02)
    assert terms["x0^2"] == pytest.approx(-2.0, rel=0.02)
    # the constant convention: min over the observed states is 0
    states = double_well_langevin.observed_states()
    assert float(np.min(model.energy(states))) == pytest.approx(0.0, abs=1e-12)


def test_noise_free_styblinski_tang_recovered_to_1e_8():
    data = simulate_system("styblinski_tang", n=1000, steps=5, dt=0.01, seed=0)
    model = iel.fit(data, "poly:4")
    names = model.energy_module.library.names()
    truth = {"x0": 2.5, "x1": 2.5, "x0^2": -8.0, "x1^2": -8.0, "x0^4": 0.5, "x1^4": 0.5}
    expected = np.array([truth.get(n, 0.0) for n in names])
    theta = np.asarray(model.energy_module.theta)
    assert np.linalg.norm(theta - expected) / np.linalg.norm(expected) < 1e-8
    assert model.temperature == 0.0 and model.diagnostics["noise_free"]
    assert "η·E" in model.identifiability["energy"]
    assert model.diagnostics["drift_r2"] == pytest.approx(1.0, abs=1e-10)


def test_noise_free_steps_identify_only_eta_times_e():
    data = simulate_system("styblinski_tang", n=500, steps=5, dt=0.01, seed=1)
    steps_only = Trajectories(data.x, dt=1.0)  # the user knows step counts, not η
    theta_phys = np.asarray(iel.fit(data, "poly:4").energy_module.theta)
    theta_steps = np.asarray(iel.fit(steps_only, "poly:4").energy_module.theta)
    np.testing.assert_allclose(theta_steps, 0.01 * theta_phys, rtol=1e-8, atol=1e-12)


def test_irregular_times_and_missing_observations():
    # gaps make steps of 2h, 3h, …: the one-step (Euler) estimator has an O(h) bias of about
    # E''(±1)·h/2 = 4h relative, so the base step is kept small
    fine = simulate_system(
        "double_well",
        n=200,
        steps=5000,
        dt=0.001,
        temperature=0.5,
        x0=np.random.default_rng(2).normal(size=(200, 1)),
        seed=2,
    )
    rng = np.random.default_rng(3)
    mask = rng.uniform(size=fine.x.shape[:2]) > 0.3
    mask[:, 0] = True
    x = np.where(mask[..., None], fine.x, np.nan)
    data = Trajectories(x, t=fine.t, mask=mask)
    assert len(np.unique(np.round(data.transitions()[2], 6))) > 3
    model = OneStepClosedForm(X2_X4).fit(data).model_
    np.testing.assert_allclose(np.asarray(model.energy_module.theta), [-2.0, 1.0], rtol=0.03)
    assert model.temperature == pytest.approx(0.5, rel=0.03)


def test_quadratic_spec_returns_positive_definite_quadratic():
    a = np.array([[2.0, 0.6], [0.6, 1.0]])
    centre = np.array([0.5, -1.0])
    truth = Quadratic.from_matrix(centre, a)
    x0 = np.random.default_rng(4).normal(size=(300, 2))
    traj = iel.simulate(truth, iel.Langevin(0.3), x0, 400, jax.random.PRNGKey(4), 0.01)
    model = iel.fit(traj, "quadratic")
    assert isinstance(model.energy_module, Quadratic)
    np.testing.assert_allclose(np.asarray(model.energy_module.matrix), a, atol=0.08)
    np.testing.assert_allclose(np.asarray(model.energy_module.centre), centre, atol=0.05)
    assert model.temperature == pytest.approx(0.3, rel=0.03)


def test_ridge_shrinks_coefficients(double_well_langevin):
    plain = np.asarray(iel.fit(double_well_langevin, "poly:4").energy_module.theta)
    ridged = np.asarray(iel.fit(double_well_langevin, "poly:4", ridge=10.0).energy_module.theta)
    assert np.linalg.norm(ridged) < np.linalg.norm(plain)


def test_rank_deficient_library_is_reported():
    const = CustomFeatures(lambda x: jnp.stack([x[0] ** 2, 0.0 * x[0] + 1.0]), ["x^2", "1"], 1)
    data = simulate_system("double_well", n=20, steps=50, dt=0.01, temperature=0.5, seed=5)
    model = OneStepClosedForm(const).fit(data).model_
    assert any("zero gradient" in note for note in model.diagnostics["notes"])
    assert np.asarray(model.energy_module.theta)[1] == 0.0


def test_gradient_descent_of_a_rotation_is_not_explained():
    data = simulate_system("rotation", n=2000, steps=20, dt=0.01, seed=6)
    model = iel.fit(data, "poly:2", method="onestep")
    # the least-squares energy keeps the divergence (trace −2) of F = −x + 2(−x₁, x₀); the
    # rotation cannot be a gradient and is left in the residual, which looks like noise
    jac = np.asarray(model.force(np.eye(2)) - model.force(np.zeros((2, 2))))
    assert np.trace(jac) == pytest.approx(-2.0, abs=0.05)
    np.testing.assert_allclose(jac, jac.T, atol=1e-12)
    assert model.diagnostics["drift_r2"] < 0.5
    assert not model.diagnostics["noise_free"]


def test_closed_form_refuses_networks_and_other_data():
    data = simulate_system("double_well", n=5, steps=5, dt=0.01, temperature=0.5)
    with pytest.raises(ValueError, match="network term"):
        OneStepClosedForm("mlp:8").fit(data)
    with pytest.raises(TypeError, match="fits trajectories"):
        OneStepClosedForm("poly:2").fit(iel.Samples(np.zeros((4, 1))))
    with pytest.raises(ValueError, match="at least 10 end states, got 4"):
        iel.fit(iel.Endpoints(np.random.default_rng(0).normal(size=(4, 1))), "poly:2")


def test_spec_errors_are_clear():
    data = simulate_system("double_well", n=5, steps=5, dt=0.01, temperature=0.5)
    for spec, message in [
        ("poly", "not understood"),
        ("poly:x", "expected an integer"),
        ("poly:0", "positive integer"),
        ("", "empty energy spec"),
        ("mlp:64xq", "expected an integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            iel.fit(data, spec)


def test_likelihood_estimator_with_mlp_energy(double_well_langevin):
    est = OneStepLikelihood("mlp:32x32", steps=1500, batch_size=4096, learning_rate=1e-2)
    model = est.fit(double_well_langevin).model_
    truth = get_system("double_well").energy
    grid = np.linspace(-1.3, 1.3, 200)[:, None]
    f_true = np.asarray(truth.force(grid))
    err = np.sum((np.asarray(model.force(grid)) - f_true) ** 2) / np.sum(f_true**2)
    assert err < 0.05, err
    assert model.temperature == pytest.approx(0.5, rel=0.03)
    assert model.history["heldout_loss"] and model.stop_reason
    assert float(np.min(model.energy(double_well_langevin.observed_states()))) == pytest.approx(
        0.0, abs=1e-9
    )


def test_likelihood_training_of_a_linear_family_starts_and_stays_at_the_closed_form(
    double_well_langevin,
):
    """The feature part is warm-started from the closed form, which minimises the same loss:
    300 Adam steps at a real learning rate keep it there (to the minibatch noise), while the
    same training from θ = 0 only walks towards it (the x²/x⁴ valley is ill-conditioned)."""
    closed = iel.fit(double_well_langevin, "poly:4").energy_module
    target = np.asarray(closed.theta)
    warm = OneStepLikelihood("poly:4", steps=300, learning_rate=3e-2).fit(double_well_langevin)
    np.testing.assert_allclose(np.asarray(warm.energy_.theta), target, atol=0.05)
    start = FeatureEnergy(closed.library, jnp.zeros(closed.library.n_features))
    cold = OneStepLikelihood(start, steps=300, learning_rate=3e-2).fit(double_well_langevin)
    moved = np.linalg.norm(np.asarray(cold.energy_.theta) - target) / np.linalg.norm(target)
    assert 0.02 < moved < 0.3, moved  # trained (from 1.0), not already there
    assert len(cold.model_.history["step"]) > 10


def test_feature_energy_fit_matches_dense_least_squares(rng):
    """The one-pass normal equations equal a dense least-squares solve on the stacked rows."""
    data = simulate_system("rotated_double_well", n=30, steps=40, dt=0.01, temperature=0.2)
    lib = Monomials(2, 3)
    model = OneStepClosedForm(lib).fit(data).model_
    x0, x1, h = data.transitions()
    jac = np.asarray(jax.vmap(lib.jacobian)(jnp.asarray(x0)))  # (K, p, d)
    rows = (np.sqrt(h)[:, None, None] * np.swapaxes(jac, 1, 2)).reshape(-1, lib.n_features)
    target = (-(x1 - x0) / np.sqrt(h)[:, None]).reshape(-1)
    dense = np.linalg.lstsq(rows, target, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(model.energy_module.theta), dense, rtol=1e-9)
    resid = target - rows @ dense
    t_dense = resid @ resid / (2 * (rows.shape[0] - lib.n_features))
    assert model.temperature == pytest.approx(t_dense, rel=1e-9)
    assert isinstance(model.energy_module, FeatureEnergy)


@pytest.mark.parametrize("dim, degree", [(1, 4), (2, 6), (3, 3)])
def test_moment_path_equals_generic_gram(dim, degree, rng):
    """The data-moment shortcut for monomials gives the same normal equations as the generic
    per-transition Gram accumulation, with and without weights and a ragged last chunk."""
    from iel.linear.normal_equations import normal_equations

    lib = Monomials(dim, degree)
    n = 5000 + 17
    x0 = rng.uniform(-2, 2, size=(n, dim))
    dx = 0.01 * rng.normal(size=(n, dim))
    h = rng.uniform(0.005, 0.02, size=n)
    for weights in (None, rng.uniform(0, 2, size=n)):
        fast = normal_equations(lib, x0, dx, h, weights, use_moments=True)
        slow = normal_equations(lib, x0, dx, h, weights, use_moments=False)
        scale = np.abs(slow.gram).max()
        np.testing.assert_allclose(fast.gram, slow.gram, rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(fast.rhs, slow.rhs, rtol=1e-9, atol=1e-12 * scale)
        assert fast.sq_over_h == pytest.approx(slow.sq_over_h, rel=1e-12)
        assert fast.n_rows == slow.n_rows


def _compilations(run) -> int:
    """How many programs XLA compiles while ``run()`` runs (JAX's backend-compile events)."""
    import jax.monitoring

    events = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(events)


@pytest.mark.parametrize(("dim", "degree"), [(2, 6), (3, 4)])
def test_monomial_normal_equations_compile_nothing(dim, degree, rng):
    """The data moments of a monomial library are a few NumPy products per chunk: a snapshot
    fit's polynomial families (poly:2, 4, 6 on data of any size) add no compiled program (as
    jitted scans each degree, dimension and chunk shape compiled its own, about a second of a
    cold fit on two cores)."""
    from iel.linear.normal_equations import normal_equations

    n = 3001 + 7 * dim + degree  # a size no other test compiled for
    x0 = rng.uniform(-2, 2, size=(n, dim))
    dx, h = 0.01 * rng.normal(size=(n, dim)), np.full(n, 0.01)
    found = []
    assert _compilations(lambda: found.append(normal_equations(Monomials(dim, degree), x0, dx,
                                                                 h))) == 0  # fmt: skip
    assert found[0].gram.shape == (Monomials(dim, degree).n_features,) * 2


def test_an_energy_on_states_of_another_number_compiles_nothing_new(rng):
    """Energies, gradients and forces run in blocks of rows (``iel.energies.base``): after the
    first evaluation from BLOCK_ROWS states on, any other number of states (a fit's pairs,
    snapshots and held-out states; a new data set) reuses the program, and each state gets
    the value one ``vmap`` over all of them gives."""
    from iel.energies.base import BLOCK_ROWS
    from iel.energies.spec import parse_energy_spec

    energy = parse_energy_spec("mlp:16", 2).build(jax.random.PRNGKey(3))
    energy.force(rng.normal(size=(BLOCK_ROWS + 1, 2)))
    sizes = (BLOCK_ROWS, 2 * BLOCK_ROWS + 37, 5 * BLOCK_ROWS - 1)
    forces = []
    assert _compilations(lambda: forces.extend(energy.force(rng.normal(size=(n, 2)))
                                                for n in sizes)) == 0  # fmt: skip
    assert [f.shape for f in forces] == [(n, 2) for n in sizes]
    x = rng.normal(size=(3, 700, 2))  # leading axes kept; one padded block
    whole = jax.vmap(energy.force_single)(jnp.asarray(x.reshape(-1, 2))).reshape(3, 700, 2)
    np.testing.assert_allclose(np.asarray(energy.force(x)), np.asarray(whole), rtol=1e-14,
                               atol=1e-14)  # fmt: skip


def test_lbfgs_chunk_program_does_not_grow_with_the_parameter_arrays():
    """The L-BFGS chunk runs on the parameters flattened into one vector: a network's many
    arrays do not repeat the optimiser's and the line search's operations per array (on the
    tree the ``mlp:64`` chunk took 1.7 times as long to compile).  Six parameters in three
    arrays add only the flattening and the loss's own per-array terms to the program for six
    in one array: about 17 % (on the tree the optimiser's operations for three arrays added
    61 %)."""
    from iel.training import lbfgs_chunk_state, lbfgs_iterations

    def loss(params, target):
        leaves = jax.tree_util.tree_leaves(params)
        return sum(jnp.sum((w - target) ** 2 + w**4) for w in leaves)

    def program(params) -> str:
        state = lbfgs_chunk_state(params)
        chunk = jax.jit(lambda p, s: lbfgs_iterations(loss, 5, p, s, 1.0))
        return chunk.lower(params, state).as_text()

    one = program({"w": jnp.zeros(6)})
    three = program({"a": jnp.zeros(2), "b": jnp.zeros(2), "c": jnp.zeros(2)})
    assert len(three) < 1.3 * len(one), (len(three), len(one))


def test_auto_method_rule():
    from iel.auto import choose_method

    rng = np.random.default_rng(7)
    langevin = simulate_system("double_well", n=100, steps=300, dt=0.01, temperature=0.5, seed=7)
    assert choose_method(langevin, "poly:4")[0] == "onestep"
    exact = simulate_system("styblinski_tang", n=200, steps=5, dt=0.01, seed=7)
    assert choose_method(exact, "poly:4")[0] == "onestep"
    clean = simulate_system("double_well", n=100, steps=200, dt=0.01, seed=8)
    noisy = Trajectories(clean.x + 0.05 * rng.normal(size=clean.x.shape), dt=0.01)
    method, reason, options = choose_method(noisy, "poly:4")
    assert method == "rollout" and "observation noise" in reason and options["hidden_starts"]
    fine = simulate_system("double_well", n=100, steps=400, dt=0.005, seed=9)
    sparse = Trajectories(fine.x[:, ::20], dt=0.1)
    assert choose_method(sparse, "poly:4")[0] == "rollout"
    model = iel.fit(sparse, "poly:4", steps=1500)  # auto: rollout, recovers the double well
    # 10 model substeps of 0.01 against data made with steps of 0.005: a 1 % Euler mismatch
    assert dict(model.energy_module.terms())["x0^4"] == pytest.approx(1.0, abs=0.03)
    assert model.method == "rollout" and "method_reason" in model.diagnostics


def test_likelihood_estimator_on_noise_free_descent_reports_eta_e():
    """Trained for real (300 Adam steps at 3e-2) on noise-free descent: the steps are
    explained to rounding, T is reported as 0 and the energy is the double well's."""
    data = simulate_system("double_well", n=100, steps=50, dt=0.01, seed=13)
    model = OneStepLikelihood("poly:4", steps=300, learning_rate=3e-2).fit(data).model_
    assert model.temperature == 0.0 and model.diagnostics["noise_free"]
    assert "η·E" in model.identifiability["energy"]
    grid = np.linspace(-1.5, 1.5, 61)[:, None]
    truth = np.asarray(get_system("double_well").energy.force(grid))
    np.testing.assert_allclose(np.asarray(model.force(grid)), truth, atol=1e-6)


def test_full_batch_lbfgs_fits_a_network_far_better_than_adam_in_the_same_steps():
    """Noise-free descent on Styblinski–Tang seen as 1500 one-step pairs: 300 full-batch
    L-BFGS iterations (chunks of 25 in one scan each) fit a 32×32 energy network far closer
    than 300 Adam steps; the report counts iterations, not chunks."""
    data = simulate_system("styblinski_tang", n=300, steps=5, dt=0.01, seed=3)
    truth = get_system("styblinski_tang").energy
    states = np.random.default_rng(1).uniform(-3.5, 3.5, size=(2000, 2))
    f_true = np.asarray(truth.force(states))

    def error(optimiser):
        est = OneStepLikelihood("mlp:32x32", steps=300, optimiser=optimiser, patience=30)
        model = est.fit(data).model_
        f = np.asarray(model.force(states))
        return float(np.sum((f - f_true) ** 2) / np.sum(f_true**2)), model

    lbfgs, model = error("lbfgs")
    adam, _ = error("adam")
    assert lbfgs < 0.02 and lbfgs < adam / 5, (lbfgs, adam)
    assert all(step % 25 == 0 for step in model.history["step"])
    assert "L-BFGS iterations" in model.stop_reason
    with pytest.raises(ValueError, match="optimiser must be one of"):
        OneStepLikelihood("mlp:16", optimiser="sgd")


def test_a_radial_input_lets_a_small_network_follow_a_radial_energy_in_twelve_dimensions():
    """``E = 5 exp(ρ)``, ``ρ = √(1 + ‖x‖²/d)``, d = 12: with ``ρ`` as one more input
    (``mlp:8:radial``) a network of 8 units follows the force; from the twelve coordinates
    alone the same network, same steps, has to build ``‖x‖`` from squares and does not."""
    from iel.energies.neural import radial_input

    dim, rng = 12, np.random.default_rng(5)
    force = jax.jit(jax.vmap(jax.grad(lambda x: -5.0 * jnp.exp(radial_input(x)))))
    x0 = rng.uniform(-2, 2, size=(1500, dim))
    data = Trajectories(np.stack([x0, x0 + 0.01 * np.asarray(force(x0))], axis=1), dt=0.01)
    states = rng.uniform(-2, 2, size=(1000, dim))
    f_true = np.asarray(force(states))

    def error(spec):
        model = OneStepLikelihood(spec, steps=200, optimiser="lbfgs", patience=200).fit(data)
        f = np.asarray(model.model_.force(states))
        return float(np.sum((f - f_true) ** 2) / np.sum(f_true**2))

    radial, plain = error("mlp:8:radial"), error("mlp:8")
    assert radial < 1e-3 and plain > 20 * radial, (radial, plain)


def test_lbfgs_chunks_compile_once_from_a_fresh_state():
    """The first chunk starts from a fresh L-BFGS state, the later ones from its output: the
    chunk is traced for the first call only (a second trace would be a second compilation)."""
    from iel.training import (
        lbfgs_chunk_state,
        lbfgs_iterations,
    )

    traces = []

    def loss(params, target):
        traces.append(1)  # Python side effect: runs only while tracing
        return jnp.sum((params["w"] - target) ** 2) + jnp.sum(params["w"] ** 4)

    params = {"w": jnp.zeros(3)}
    state = lbfgs_chunk_state(params)
    target = jnp.array([1.0, -2.0, 0.5])
    params, state, _ = lbfgs_iterations(loss, 5, params, state, target)
    first = len(traces)
    for _ in range(3):
        params, state, value = lbfgs_iterations(loss, 5, params, state, target)
    assert first > 0 and len(traces) == first
    grad = 2 * (params["w"] - target) + 4 * params["w"] ** 3
    assert float(jnp.max(jnp.abs(grad))) < 1e-8  # and it did minimise


@pytest.mark.parametrize("energy", ["poly:4", "auto"])
def test_a_fixed_temperature_is_passed_in_and_the_estimate_kept(energy):
    data = iel.simulate_system("double_well", n=60, steps=200, dt=0.01, temperature=0.5, seed=4)
    free = iel.fit(data, energy)
    fixed = iel.fit(data, energy, temperature=0.3)
    assert fixed.dynamics == iel.Langevin(0.3) and fixed.temperature == 0.3
    assert fixed.diagnostics["temperature_fixed"] is True
    assert fixed.diagnostics["estimated_temperature"] == pytest.approx(free.temperature, rel=1e-12)
    assert abs(free.temperature - 0.5) < 0.05  # the estimate, not the fixed value
    x = np.linspace(-1.5, 1.5, 7)[:, None]
    np.testing.assert_allclose(np.asarray(fixed.grad(x)), np.asarray(free.grad(x)), rtol=1e-12)


def test_normal_equations_of_split_data_add_up_to_those_of_the_whole():
    """Chunks, files, devices and hosts combine their statistics by adding them."""
    from iel.energies.features import Monomials
    from iel.linear.normal_equations import normal_equations

    rng = np.random.default_rng(0)
    x, dx = rng.normal(size=(2, 1000, 2))
    h = rng.uniform(0.05, 0.2, 1000)
    for library in (Monomials(2, 4), Monomials(2, 3)):
        whole = normal_equations(library, x, dx, h, use_moments=False)
        parts = normal_equations(library, x[:300], dx[:300], h[:300], use_moments=False)
        parts = parts + normal_equations(library, x[300:], dx[300:], h[300:], use_moments=False)
        np.testing.assert_allclose(parts.gram, whole.gram, rtol=1e-12)
        np.testing.assert_allclose(parts.rhs, whole.rhs, rtol=1e-12, atol=1e-12)
        assert parts.n_rows == whole.n_rows == 2000
        assert np.isclose(parts.sum_log_h, whole.sum_log_h, rtol=1e-12)
    with pytest.raises(ValueError, match="different libraries"):
        whole + normal_equations(Monomials(2, 2), x, dx, h)
