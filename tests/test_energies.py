"""Energies: gradients against finite differences, formulas, algebra, invariants."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import finite_difference_gradient

from iel.energies import (
    CustomFeatures,
    FeatureEnergy,
    Fourier,
    GaussianRBF,
    HopfieldEnergy,
    ICNNEnergy,
    MLPEnergy,
    Monomials,
    ParticleEnergy,
    Quadratic,
    ReferenceEnergy,
)
from iel.energies.reference import FUNCTIONS, JKONET_POTENTIALS


def _random_feature_energy(library, seed=0):
    theta = np.random.default_rng(seed).normal(size=library.n_features)
    return FeatureEnergy(library, theta, offset=0.3)


ENERGIES = {
    "quadratic": Quadratic.from_matrix([0.5, -1.0, 0.2], [[2, 0.3, 0], [0.3, 1, 0.1], [0, 0.1, 3]]),
    "monomials": _random_feature_energy(Monomials(3, 4)),
    "fourier": _random_feature_energy(Fourier(3, 2, 1.5)),
    "rbf": _random_feature_energy(GaussianRBF(np.random.default_rng(1).normal(size=(5, 3)), 0.8)),
    "sum_of_libraries": _random_feature_energy(Monomials(3, 2) + Fourier(3, 1)),
    "mlp": MLPEnergy(3, (16, 16), jax.random.PRNGKey(0)),
    "mlp_radial": MLPEnergy(3, (8,), jax.random.PRNGKey(4), radial=True),
    "icnn": ICNNEnergy(3, (16, 16), jax.random.PRNGKey(1)),
    "hopfield": HopfieldEnergy.from_weights(
        np.random.default_rng(2).normal(size=(3, 3)), [0.1, -0.2, 0.3], rho="sigmoid"
    ),
    "sum_and_scale": 2.0 * Quadratic.from_matrix(np.zeros(3), np.eye(3))
    + MLPEnergy(3, (8,), jax.random.PRNGKey(3)),
}


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_gradient_matches_finite_differences(name, rng):
    energy = ENERGIES[name]
    for _ in range(3):
        x = rng.normal(size=3)
        auto = np.asarray(energy.gradient(jnp.asarray(x)))
        fd = finite_difference_gradient(lambda v: energy(jnp.asarray(v)), x)
        np.testing.assert_allclose(auto, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_batched_evaluation_matches_single(name, rng):
    energy = ENERGIES[name]
    xs = rng.normal(size=(4, 5, 3))
    batched = np.asarray(energy.energy(xs))
    assert batched.shape == (4, 5)
    single = np.array([[float(energy(jnp.asarray(x))) for x in row] for row in xs])
    np.testing.assert_allclose(batched, single, rtol=1e-12)
    assert energy.gradient(xs).shape == (4, 5, 3)


@pytest.mark.parametrize("name", JKONET_POTENTIALS)
def test_reference_potentials_gradients(name, rng):
    energy = ReferenceEnergy(name, 2)
    # away from kinks of |.| and max(.,0)
    x = rng.uniform(0.3, 2.5, size=2) * np.array([1.0, -1.0]) + np.array([0.05, 0.02])
    auto = np.asarray(energy.gradient(jnp.asarray(x)))
    fd = finite_difference_gradient(lambda v: energy(jnp.asarray(v)), x)
    np.testing.assert_allclose(auto, fd, rtol=1e-5, atol=1e-6)


def test_reference_formulas_at_known_points():
    st = ReferenceEnergy("styblinski_tang", 2)
    x = np.array([-2.903534, -2.903534])  # global minimum, −39.166… per coordinate
    assert float(st(jnp.asarray(x))) == pytest.approx(-39.16617 * 2, rel=1e-5)
    assert float(ReferenceEnergy("sphere", 3)(jnp.ones(3))) == pytest.approx(-30.0)
    assert float(ReferenceEnergy("relu", 2)(jnp.array([1.0, -2.0]))) == pytest.approx(-50.0)
    assert float(ReferenceEnergy("flat", 2)(jnp.array([1.0, -2.0]))) == 0.0
    # rotational: θ = atan2(h2 + 5, h1 + 5); at the origin θ = π/4
    assert float(ReferenceEnergy("rotational", 2)(jnp.zeros(2))) == pytest.approx(
        -500 * (np.pi / 4 + np.pi)
    )
    dw = ReferenceEnergy("double_well", 1)
    assert float(dw(jnp.array([1.0]))) == 0.0 and float(dw(jnp.array([0.0]))) == 1.0
    mb = ReferenceEnergy("muller_brown", 2)
    # known minimum of the (unscaled) Müller–Brown potential: −146.70 at (−0.558, 1.442)
    assert float(mb(jnp.array([-0.558224, 1.441726]))) == pytest.approx(-14.66997, rel=1e-4)
    assert np.allclose(mb.gradient(jnp.array([-0.558224, 1.441726])), 0.0, atol=1e-3)
    tw = ReferenceEnergy("three_well", 1)
    for m in (-2.0, 0.0, 2.0):
        assert abs(float(tw.gradient(jnp.array([m]))[0])) < 1e-12
    for name in FUNCTIONS:
        dim = 2
        assert np.isfinite(float(ReferenceEnergy(name, dim)(jnp.array([0.3, -0.7]))))


def test_reference_potentials_any_dimension():
    for name in JKONET_POTENTIALS:
        e = ReferenceEnergy(name, 10)
        assert e.energy(np.ones((3, 10))).shape == (3,)
    with pytest.raises(ValueError, match="muller_brown needs dim exactly 2"):
        ReferenceEnergy("muller_brown", 3)


def test_formula_printer_on_known_coefficients():
    lib = Monomials(1, 4)
    assert lib.names() == ["x0", "x0^2", "x0^3", "x0^4"]
    energy = FeatureEnergy(lib, [0.0, -2.0, 0.0, 1.0])
    assert energy.formula() == "E(x) = −2.000·x0^2 + 1.000·x0^4"
    assert FeatureEnergy(lib, [0.5, 0, 0, 0]).formula(precision=1) == "E(x) = 0.5·x0"
    assert FeatureEnergy(lib).formula() == "E(x) = 0"
    lib2 = Monomials(2, 2)
    assert lib2.names() == ["x0", "x1", "x0^2", "x0*x1", "x1^2"]
    assert Fourier(1, 2).names() == ["sin(x0)", "sin(2*x0)", "cos(x0)", "cos(2*x0)"]
    mixed = FeatureEnergy(Monomials(1, 1) + Fourier(1, 1), [1.25, 0.0, -3.0])
    assert mixed.formula(2) == "E(x) = 1.25·x0 − 3.00·cos(x0)"


def test_monomials_values_and_count():
    lib = Monomials(3, 3)
    assert lib.n_features == 3 + 6 + 10
    x = jnp.array([2.0, -1.0, 0.5])
    values = dict(zip(lib.names(), np.asarray(lib(x))))
    assert values["x0^2*x1"] == pytest.approx(-4.0)
    assert values["x0*x1*x2"] == pytest.approx(-1.0)
    assert values["x2^3"] == pytest.approx(0.125)
    # gradient at zero is exact (no 0·∞ from powers)
    jac = np.asarray(lib.jacobian(jnp.zeros(3)))
    assert np.all(np.isfinite(jac)) and jac[0, 0] == 1.0


def test_quadratic_stays_positive_definite():
    q = Quadratic(jnp.zeros(2), jnp.array([[0.0, 0.0], [5.0, 0.0]]))  # singular factor
    assert np.linalg.eigvalsh(np.asarray(q.matrix)).min() > 0
    with pytest.raises(ValueError, match="positive definite"):
        Quadratic.from_matrix([0, 0], [[1, 0], [0, -1]])
    q = Quadratic.from_matrix([1.0, 2.0], [[2.0, 0.0], [0.0, 4.0]])
    assert float(q(jnp.array([1.0, 2.0]))) == 0.0
    assert float(q(jnp.array([2.0, 2.0]))) == pytest.approx(1.0)


def test_softplus_derivatives_are_the_logistic_and_its_derivative():
    """iel's softplus states its derivative as σ(x) = 1/(1 + e⁻ˣ): values and the first three
    derivatives equal the closed forms (σ, σ(1−σ), σ(1−σ)(1−2σ)) and jax.nn.softplus's own
    to rounding, with no overflow far out."""
    from iel.energies.neural import softplus

    x = jnp.array([-800.0, -30.0, -2.5, -1e-3, 0.0, 0.7, 3.0, 40.0, 800.0])
    s = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x), -700, 700)))
    first = jax.vmap(jax.grad(softplus))(x)
    second = jax.vmap(jax.grad(jax.grad(softplus)))(x)
    third = jax.vmap(jax.grad(jax.grad(jax.grad(softplus))))(x)
    np.testing.assert_allclose(softplus(x), jax.nn.softplus(x), rtol=1e-15)
    np.testing.assert_allclose(first, s, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(second, s * (1 - s), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(third, s * (1 - s) * (1 - 2 * s), rtol=1e-10, atol=1e-300)
    reference = jax.vmap(jax.grad(jax.grad(jax.nn.softplus)))(x)
    np.testing.assert_allclose(second, reference, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(np.asarray(third)))


def test_icnn_is_convex(rng):
    energy = ENERGIES["icnn"]
    a, b = rng.normal(size=(2, 200, 3))
    lam = rng.uniform(size=(200, 1))
    mid = np.asarray(energy.energy(lam * a + (1 - lam) * b))
    chord = lam[:, 0] * np.asarray(energy.energy(a)) + (1 - lam[:, 0]) * np.asarray(
        energy.energy(b)
    )
    assert np.all(mid <= chord + 1e-10)


def test_hopfield_weights_symmetric_zero_diagonal():
    h = ENERGIES["hopfield"]
    w = np.asarray(h.weights)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(np.diag(w), 0.0)
    # E(u) = ½Σu² − ½ρᵀWρ − bᵀρ, checked by hand
    u = np.array([0.2, -0.4, 1.1])
    r = 1 / (1 + np.exp(-u))
    expected = 0.5 * u @ u - 0.5 * r @ w @ r - np.array([0.1, -0.2, 0.3]) @ r
    assert float(h(jnp.asarray(u))) == pytest.approx(expected)


def test_particle_energy_forces(rng):
    one = Quadratic.from_matrix(np.zeros(2), np.eye(2))
    pair = _random_feature_energy(Monomials(2, 2) + GaussianRBF(np.zeros((1, 2)), 1.0), seed=4)
    energy = ParticleEnergy(one, pair)
    x = rng.normal(size=(4, 2))
    auto = np.asarray(energy.gradient(jnp.asarray(x)))
    fd = finite_difference_gradient(lambda v: energy(jnp.asarray(v)), x)
    np.testing.assert_allclose(auto, fd, rtol=1e-6, atol=1e-7)
    # mean-field convention: E = Σ V(x_i) + 1/(2n) Σ_{i≠j} W(x_i − x_j)
    manual = (
        sum(float(one(jnp.asarray(xi))) for xi in x)
        + sum(float(pair(jnp.asarray(x[i] - x[j]))) for i in range(4) for j in range(4) if i != j)
        / 8
    )
    assert float(energy(jnp.asarray(x))) == pytest.approx(manual)
    assert energy.energy(rng.normal(size=(3, 4, 2))).shape == (3,)


def test_particle_energy_forces_with_a_pair_energy_not_differentiable_at_zero(rng):
    """A particle does not interact with itself: a pair energy with a kink at 0 (``‖v‖``, as
    in holder_table's ``exp(|1 − ‖v‖/π|)``) must give finite forces, equal to the sum over
    the other particles."""

    class Distance(eqx.Module):
        def __call__(self, v):
            return jnp.linalg.norm(v)

    energy = ParticleEnergy(None, Distance())
    x = rng.normal(size=(5, 2))
    force = np.asarray(energy.gradient(jnp.asarray(x)))
    unit = (x[:, None] - x[None]) / (
        np.linalg.norm(x[:, None] - x[None], axis=-1)[..., None] + np.eye(5)[..., None]
    )
    np.testing.assert_allclose(force, unit.sum(axis=1) / 5, rtol=1e-12)


def test_energy_algebra(rng):
    a = ENERGIES["quadratic"]
    b = ENERGIES["mlp"]
    x = jnp.asarray(rng.normal(size=3))
    assert float((a + b)(x)) == pytest.approx(float(a(x)) + float(b(x)))
    assert float((3.0 * a)(x)) == pytest.approx(3 * float(a(x)))
    assert len((a + b + a).terms) == 3


def test_custom_features_shape_check_and_no_save():
    lib = CustomFeatures(lambda x: jnp.stack([x[0] ** 2, x[0] ** 4]), ["x^2", "x^4"], dim=1)
    energy = FeatureEnergy(lib, [-2.0, 1.0])
    assert energy.formula() == "E(x) = −2.000·x^2 + 1.000·x^4"
    with pytest.raises(TypeError, match="cannot be saved"):
        energy.config()
    with pytest.raises(ValueError, match="expected \\(3,\\)"):
        CustomFeatures(lambda x: x, ["a", "b", "c"], dim=1)


def test_rbf_adapt_places_centres_in_data(rng):
    x = np.concatenate([rng.normal(-3, 0.1, (500, 2)), rng.normal(3, 0.1, (500, 2))])
    lib = GaussianRBF.placeholder(2, 2).adapt(x)
    centres = np.sort(np.asarray(lib.centres)[:, 0])
    np.testing.assert_allclose(centres, [-3, 3], atol=0.05)


def test_monomials_with_a_cap_on_variables_per_term():
    """``poly:4:2`` keeps monomials in at most two variables: d univariate powers 1…4 plus,
    for each of the C(d, 2) pairs, the six exponent pairs with both ≥ 1 and total ≤ 4."""
    from iel.energies.features import library_from_config
    from iel.energies.spec import parse_energy_spec

    lib = parse_energy_spec("poly:4:2", 10).library
    assert lib.n_features == 10 * 4 + 45 * 6
    assert all(sum(e > 0 for e in alpha) <= 2 for alpha in lib.exponents)
    additive = parse_energy_spec("poly:4:1", 3).library
    assert additive.names() == ["x0", "x1", "x2", "x0^2", "x1^2", "x2^2", "x0^3", "x1^3",
                                "x2^3", "x0^4", "x1^4", "x2^4"]  # fmt: skip
    assert library_from_config(lib.config()).exponents == lib.exponents
    assert parse_energy_spec("poly:2:2", 4).library.exponents == Monomials(4, 2).exponents
    with pytest.raises(ValueError, match="max_vars"):
        Monomials(3, 4, 0)


def test_truncated_polynomial_fits_in_closed_form_where_moments_would_mislead():
    """``poly:2:1`` in 30 dimensions is small enough for the moment shortcut of full
    monomial libraries, whose plan assumes every monomial is present: it must not be used."""
    import iel
    from iel.estimators.trajectories.closed_form import OneStepClosedForm

    rng = np.random.default_rng(0)
    scales = rng.uniform(0.5, 2.0, size=30)
    x = np.empty((40, 4, 30))
    x[:, 0] = rng.normal(size=(40, 30))
    for k in range(3):  # gradient descent on E = Σ s_j x_j², step 0.01
        x[:, k + 1] = x[:, k] - 0.01 * 2 * scales * x[:, k]
    model = OneStepClosedForm("poly:2:1").fit(iel.Trajectories(x, dt=0.01)).model_
    terms = dict(model.energy_module.terms(1e-9))
    np.testing.assert_allclose([terms[f"x{j}^2"] for j in range(30)], scales, rtol=1e-8)


def test_truncated_exponents_match_filtering_the_full_library():
    from iel.energies.features import graded_exponents, truncated_exponents

    for dim, degree, cap in ((3, 4, 1), (4, 5, 2), (5, 4, 3)):
        full = graded_exponents(dim, degree)
        expected = tuple(a for a in full if sum(e > 0 for e in a) <= cap)
        assert truncated_exponents(dim, degree, cap) == expected
