"""The energy contract (STYLE practice 7), driven by the registries.

Cases come from two places, and together they must reach every energy type:

* every term of the grammar table in :mod:`iel.energies.spec`'s docstring, parsed with
  ``parse_energy_spec(example, dim).build(key, states)`` for ``dim`` 1 and 3;
* :data:`CONSTRUCTED`, one small constructor per type no spec builds.

Tests assert that every concrete :class:`~iel.energies.AbstractEnergy` (subclass walk), every
type in the save registry (``iel.energies.base._REGISTRY``, what ``load`` can rebuild) and every
concrete feature library is reached, so a new family without a case fails.  Per energy: ``E`` is
a scalar on one state and has shape ``(...)`` on ``(..., *state_shape)``; ``gradient`` equals
``jax.grad`` of ``E`` and central finite differences; ``force == −gradient``; ``E`` is jit-able
and not recompiled for new states or new parameter values of the same shapes; ``config()``
rebuilds the same energy through ``field_from_config``; ``formula()`` is a non-empty string.
"""

from __future__ import annotations

import functools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from contracts_support import (
    concrete_subclasses,
    grammar_examples,
    grammar_terms,
    missing_from_table,
)

import iel
from iel.energies import (
    AbstractEnergy,
    AbstractFeatureLibrary,
    AbstractForceField,
    CustomFeatures,
    ExpQuadratics,
    FeatureDrift,
    FeatureEnergy,
    HopfieldEnergy,
    MLPDrift,
    Monomials,
    ParticleEnergy,
    ProjectedEnergy,
    Quadratic,
    ReferenceEnergy,
    RotationField,
    ScaledEnergy,
    field_from_config,
)
from iel.energies.base import _REGISTRY, ShiftedEnergy
from iel.energies.features import EvenMonomials, join_library_parts, library_parts
from iel.energies.spec import SpecError, example_spec, parse_energy_spec

DIMS = (1, 3)
# grammar terms that need more than one coordinate: (name before ':', minimum dim)
MIN_DIM = {"pairs": 2}


def _states(dim: int, n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _perturbed(energy, seed: int = 1, scale: float = 0.3):
    """``energy`` with every floating-point array moved by ``scale·N(0, 1)``: zero-initialised
    coefficients (a freshly built family is flat) become a landscape worth differentiating."""
    params, static = eqx.partition(energy, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    moved = [jnp.asarray(np.asarray(a) + scale * rng.normal(size=a.shape), a.dtype) for a in leaves]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, moved), static)


def _from_spec(spec: str, dim: int) -> AbstractEnergy:
    """The family of ``spec`` built on data, its libraries placed on the data (``adapt``), and
    every parameter moved off its initial value."""
    states = _states(dim)
    family = parse_energy_spec(spec, dim)
    energy = family.build(jax.random.PRNGKey(0), states)
    if family.library is not None:
        adapted = family.library.adapt(states, seed=0)
        # as a fit leaves them: exponentiated quadratics refined (their config() presumes it)
        adapted = join_library_parts(
            ExpQuadratics(p.centres, p.matrices, refined=True) if isinstance(p, ExpQuadratics)
            else p for p in library_parts(adapted)
        )  # fmt: skip
        terms = energy.terms if isinstance(energy, iel.energies.SumEnergy) else (energy,)
        feature = FeatureEnergy(adapted)
        rest = tuple(t for t in terms if not isinstance(t, FeatureEnergy))
        energy = sum(rest, feature) if rest else feature
    return _perturbed(energy)


def _projected(dim):
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(dim, dim)))
    inner = _from_spec("poly:3", 1)
    return ProjectedEnergy(inner, q[:1])


def _even_monomials(dim):
    return _perturbed(FeatureEnergy(EvenMonomials(dim, 4)))


def _custom(dim):
    library = CustomFeatures(lambda x: jnp.stack([jnp.sum(x**2), jnp.sum(jnp.sin(x))]),
                             ["|x|^2", "sum sin x"], dim)  # fmt: skip
    return FeatureEnergy(library, jnp.array([0.7, -0.4]))


# Energy types no spec builds: one small constructor each, for a state dimension ``dim``.
CONSTRUCTED = {
    "Quadratic": lambda d: _perturbed(Quadratic.from_matrix(np.zeros(d), np.eye(d))),
    "ReferenceEnergy": lambda d: ReferenceEnergy("styblinski_tang", d),
    "HopfieldEnergy": lambda d: _perturbed(
        HopfieldEnergy.from_weights(np.zeros((d, d)), np.zeros(d), "tanh")
    ),  # fmt: skip
    "ParticleEnergy": lambda d: ParticleEnergy(_from_spec("poly:2", d), _from_spec("poly:2:1", d)),
    "ProjectedEnergy": _projected,
    "ScaledEnergy": lambda d: ScaledEnergy(_from_spec("poly:3", d), 2.5),
    "ShiftedEnergy": lambda d: ShiftedEnergy(_from_spec("mlp:4", d), -1.25),
    "SumEnergy": lambda d: _from_spec("poly:2", d) + _from_spec("mlp:4", d),
    "EvenMonomials": _even_monomials,  # a library no spec term builds
    "CustomFeatures": _custom,  # user code: not saveable, the other checks apply
}
# Non-gradient force fields (registered for saving, not energies): checked for shapes, jit
# and the config round trip only.
FORCE_FIELDS = {
    "FeatureDrift": lambda d: _perturbed(FeatureDrift(Monomials(d, 2))),
    "MLPDrift": lambda d: _perturbed(MLPDrift(d, (4,), jax.random.PRNGKey(0))),
    "RotationField": lambda d: RotationField(1.5),
}
FORCE_FIELD_DIMS = {"RotationField": (2,)}
# specs the table's rows imply but do not spell as terms: joined terms (a ConcatLibrary of two
# libraries; a library plus a network, a SumEnergy) and fourier's ``fit`` length
EXTRA_SPECS = ["poly:2+fourier:2", "rbf:3+mlp:4", "fourier:3:fit"]


def _energy_cases():
    cases = []
    plain = [example_spec(term) for term in grammar_terms()]
    for spec in plain:  # every term of the grammar in 1 and 3 dimensions …
        for dim in DIMS:
            if dim >= MIN_DIM.get(spec.split(":")[0], 1):
                cases.append(pytest.param(spec, dim, id=f"spec[{spec}]-d{dim}"))
    for spec in grammar_examples() + EXTRA_SPECS:  # … its optional parts and joined terms in 3
        if spec not in plain:
            cases.append(pytest.param(spec, 3, id=f"spec[{spec}]-d3"))
    for name in CONSTRUCTED:  # one dimension each: the spec cases already cover 1 and 3
        cases.append(pytest.param(name, 3, id=f"{name}-d3"))
    return cases


@functools.cache
def _build(case: str, dim: int) -> AbstractEnergy:
    return CONSTRUCTED[case](dim) if case in CONSTRUCTED else _from_spec(case, dim)


def _state_shape(energy, dim: int) -> tuple[int, ...]:
    return (4, dim) if energy.state_ndim == 2 else (dim,)


def _points(energy, dim: int, lead=(5,), seed: int = 3) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(*lead, *_state_shape(energy, dim)))
    if isinstance(energy, ReferenceEnergy):
        x = 0.8 * x  # where styblinski_tang is moderate
    return x


def _reached_types() -> dict[str, set[str]]:
    """Which energy classes and feature libraries the cases build (walking each tree)."""
    energies, libraries = set(), set()

    def visit(node):
        for leaf in jax.tree_util.tree_leaves(
            node, is_leaf=lambda v: isinstance(v, (AbstractEnergy, AbstractFeatureLibrary))
        ):
            if isinstance(leaf, AbstractEnergy):
                energies.add(type(leaf).__name__)
                for field in vars(leaf).values():
                    if isinstance(field, (AbstractEnergy, AbstractFeatureLibrary, tuple)):
                        visit(field)
            elif isinstance(leaf, AbstractFeatureLibrary):
                libraries.add(type(leaf).__name__)
                for part in library_parts(leaf):
                    if part is not leaf:
                        visit(part)

    for param in _energy_cases():
        case, dim = param.values
        visit(_build(case, dim))
    return {"energies": energies, "libraries": libraries}


ENERGY_CASES = _energy_cases()


@pytest.fixture(scope="module")
def reached():
    return _reached_types()


# -- coverage: a new family, library or registered type without a case fails ----------------------
def test_grammar_table_is_found_and_every_term_parses():
    terms = grammar_terms()
    assert {"quadratic", "poly:K", "mlp:AxB…", "icnn:AxB…", "bumps:M"} <= set(terms), terms
    for term in terms:
        for dim in (2, 3):
            parse_energy_spec(example_spec(term), dim)  # raises SpecError if the table drifted


def test_terms_outside_the_grammar_are_refused():
    with pytest.raises(SpecError, match="not understood"):
        parse_energy_spec("wavelet:3", 2)
    with pytest.raises(SpecError):
        parse_energy_spec("poly:0", 2)


def test_every_energy_type_has_a_case(reached):
    classes = concrete_subclasses(AbstractEnergy)
    table = {name: None for name in reached["energies"]}
    message = missing_from_table(classes, table, "energy types", "CONSTRUCTED (or the grammar)")
    assert message is None, message


def test_every_feature_library_has_a_case(reached):
    classes = concrete_subclasses(AbstractFeatureLibrary)
    table = {name: None for name in reached["libraries"]}
    message = missing_from_table(classes, table, "feature libraries", "CONSTRUCTED")
    assert message is None, message


def test_every_registered_type_has_a_case(reached):
    covered = reached["energies"] | set(FORCE_FIELDS)
    missing = sorted(set(_REGISTRY) - covered)
    assert not missing, f"registered (saveable) types without a contract case: {missing}"
    fields = concrete_subclasses(AbstractForceField)
    unregistered = sorted(
        c.__name__ for c in fields if c.__name__ not in _REGISTRY and c is not CustomFeatures
    )
    assert not unregistered, (
        f"force fields that cannot be loaded (not @register-ed): {unregistered}"
    )


@pytest.mark.parametrize("dim", [1])
def test_terms_that_need_two_coordinates_say_so(dim):
    for name in MIN_DIM:
        term = next(t for t in grammar_terms() if t.split(":")[0] == name)
        with pytest.raises(ValueError, match="dim"):
            parse_energy_spec(example_spec(term), dim)


# -- the contract, per energy --------------------------------------------------------------------
@pytest.mark.parametrize(("case", "dim"), ENERGY_CASES)
def test_energy_contract(case, dim):
    energy = _build(case, dim)
    assert isinstance(energy, AbstractEnergy)
    shape = _state_shape(energy, dim)
    x = _points(energy, dim)
    params, static = eqx.partition(energy, eqx.is_array)

    # jit-able: E on one state, and E and jax.grad(E) over a batch, in one program
    @jax.jit
    def single_values_gradients(params, x):
        e = eqx.combine(params, static)
        return e(x[0]), jax.vmap(e)(x), jax.vmap(jax.grad(e))(x)

    one, jit_values, auto = single_values_gradients(params, jnp.asarray(x))
    assert one.shape == () and one.dtype == jnp.float64

    # (...) on batches of any leading shape: E at each state and at its finite-difference
    # neighbours x ± εe_i, shape (5, 1 + 2·size), in one call
    probe, eps = _with_neighbours(x)
    table = np.asarray(energy.energy(probe))
    size = int(np.prod(shape))
    assert table.shape == (5, 1 + 2 * size) and np.all(np.isfinite(table))
    values = table[:, 0]
    np.testing.assert_allclose(values, jit_values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(values[0], one, rtol=1e-12, atol=1e-12)

    # gradient = jax.grad(E) = central finite differences; force = −gradient
    grad = np.asarray(energy.gradient(x.reshape(5, 1, *shape)))
    assert grad.shape == (5, 1, *shape)
    grad = grad.reshape(x.shape)
    np.testing.assert_allclose(grad, auto, rtol=1e-10, atol=1e-10)
    fd = ((table[:, 1 : 1 + size] - table[:, 1 + size :]) / (2 * eps)).reshape(x.shape)
    scale = max(1.0, float(np.max(np.abs(grad))))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(np.asarray(energy.force(x)), -grad, rtol=1e-13, atol=1e-13)

    # no recompilation: new states, and new parameter values of the same shapes and statics
    single_values_gradients(params, jnp.asarray(x) + 0.1)
    moved = eqx.partition(_perturbed(energy, seed=7, scale=0.01), eqx.is_array)[0]
    single_values_gradients(moved, jnp.asarray(x))
    assert single_values_gradients._cache_size() == 1

    text = energy.formula()
    assert isinstance(text, str) and text.strip()


def _with_neighbours(x, eps=1e-5):
    """States ``x`` (shape ``(n, *state)``) followed by ``x + εe_i`` then ``x − εe_i`` for each
    coordinate: shape ``(n, 1 + 2·size, *state)``."""
    x = np.asarray(x, dtype=float)
    state = x.shape[1:]
    size = int(np.prod(state))
    steps = eps * np.eye(size).reshape(size, *state)
    out = np.concatenate([x[:, None], x[:, None] + steps[None], x[:, None] - steps[None]], axis=1)
    return out, eps


@pytest.mark.parametrize(("case", "dim"), ENERGY_CASES)
def test_energy_config_round_trip(case, dim):
    energy = _build(case, dim)
    if _holds_code(energy):
        with pytest.raises(TypeError, match="cannot be saved"):
            energy.config()
        return
    _check_config_round_trip(energy)


def _holds_code(field) -> bool:
    leaves = jax.tree_util.tree_leaves(
        field, is_leaf=lambda v: isinstance(v, AbstractFeatureLibrary)
    )
    found = [leaf for leaf in leaves if isinstance(leaf, AbstractFeatureLibrary)]
    return any(isinstance(p, CustomFeatures) for lib in found for p in library_parts(lib))


def _check_config_round_trip(field):
    """Structure from ``config()`` through ``field_from_config``, arrays transplanted (what
    :func:`iel.load_model` does): the same type, the same config and the same module."""
    config = field.config()
    json.dumps(config)  # JSON-able
    skeleton = field_from_config(config)
    assert type(skeleton) is type(field)
    assert skeleton.config() == config
    params, static = eqx.partition(skeleton, eqx.is_array)
    old = jax.tree_util.tree_leaves(params)
    new = jax.tree_util.tree_leaves(eqx.filter(field, eqx.is_array))
    assert [a.shape for a in old] == [b.shape for b in new]
    treedef = jax.tree_util.tree_structure(params)
    rebuilt = eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)
    # the same module: the same class, the same static fields (what the code computes with) and
    # the same arrays, hence the same values, with nothing to compile
    assert bool(eqx.tree_equal(rebuilt, field)), (rebuilt, field)


@pytest.mark.parametrize(
    ("name", "dim"),
    [
        pytest.param(n, d, id=f"{n}-d{d}")
        for n in FORCE_FIELDS
        for d in FORCE_FIELD_DIMS.get(n, DIMS)
    ],
)
def test_force_field_contract(name, dim):
    field = FORCE_FIELDS[name](dim)
    assert isinstance(field, AbstractForceField) and not isinstance(field, AbstractEnergy)
    x = np.random.default_rng(5).normal(size=(2, 3, dim))
    forces = np.asarray(field.force(x))
    assert forces.shape == (2, 3, dim) and np.all(np.isfinite(forces))
    single = np.asarray(field.force_single(jnp.asarray(x[0, 0])))
    np.testing.assert_allclose(forces[0, 0], single, rtol=1e-12, atol=1e-12)
    params, static = eqx.partition(field, eqx.is_array)
    jitted = jax.jit(lambda p, x: jax.vmap(eqx.combine(p, static).force_single)(x))
    np.testing.assert_allclose(jitted(params, x[0]), forces[0], rtol=1e-12, atol=1e-12)
    jitted(params, x[1])
    assert jitted._cache_size() == 1
    _check_config_round_trip(field)
