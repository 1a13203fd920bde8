"""The dynamics contract (STYLE practice 7), run over every dynamics.

Every concrete :class:`iel.AbstractDynamics` (subclass walk) needs one entry in :data:`CASES`:
its settings and the states it works on (the exponentiated gradient moves on the simplex), and
a test fails for a dynamics without one.  Each is stepped on a quadratic energy: ``step`` is
pure (same key, same result; the input untouched), jit-able (one program for new states),
keeps shape and dtype; deterministic steps decrease ``E`` for a small step; stochastic steps
differ between keys; ``describe()`` is JSON and rebuilds the dynamics; ``iel.simulate`` runs
it and returns trajectories of the right shape.
"""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from contracts_support import concrete_subclasses, missing_from_table

import iel
from iel.energies import Quadratic

DIM = 3


def _euclidean(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM))


def _simplex(n: int, seed: int) -> np.ndarray:
    """Points inside the probability simplex (positive, summing to one)."""
    return np.random.default_rng(seed).dirichlet(np.ones(DIM), size=n)


# One row per dynamics: (settings, states it acts on, step size).
CASES = {
    "GradientDescent": ({}, _euclidean, 0.05),
    "BoundedGradientDescent": ({"max_step": 0.1}, _euclidean, 0.05),
    "GradientFlow": ({"rtol": 1e-8, "atol": 1e-10}, _euclidean, 0.05),
    "Langevin": ({"temperature": 0.5}, _euclidean, 0.05),
    "MALA": ({"temperature": 0.5}, _euclidean, 0.05),
    "ExponentiatedGradient": ({"sign": -1}, _simplex, 0.05),
    "StateLangevin": (
        {
            "diffusion": {
                "kind": "full",
                "degree": 1,
                "theta": [[0.5, 0.1, 0.0, 0.4, 0.0, 0.3]] + [[0.05, 0.0, 0.0, 0.0, 0.0, 0.0]] * 3,
                "centre": [0.0, 0.0, 0.0],
                "scale": [1.0, 1.0, 1.0],
                "floor": 0.01,
            },
            "form": "ito",  # drift −∇E, as the contract's mean-step check reads it
            "temperature": 0.5,
        },
        _euclidean,
        0.05,
    ),
}

DYNAMICS = concrete_subclasses(iel.AbstractDynamics)
COVERED = [c for c in DYNAMICS if c.__name__ in CASES]
# ½(x − c)ᵀA(x − c): anisotropic, centred off the origin and off the simplex's centre
MATRIX = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
ENERGY = Quadratic.from_matrix(np.array([0.5, -0.2, 0.1]), MATRIX)


@eqx.filter_jit
def _batch_step(dynamics, field, x, keys, dt):
    """One step of each state in ``x`` (the way simulations and fits batch states)."""
    return jax.vmap(lambda s, k: dynamics.step(field, s, k, dt))(x, keys)


def _ids(cls):
    return cls.__name__


def _make(cls):
    settings, states, dt = CASES[cls.__name__]
    return cls(**settings), states, dt


def test_every_dynamics_has_a_contract_case():
    assert len(DYNAMICS) >= 5, [c.__name__ for c in DYNAMICS]
    message = missing_from_table(DYNAMICS, CASES, "dynamics", "CASES in " + __name__)
    assert message is None, message


@pytest.mark.parametrize("cls", DYNAMICS, ids=_ids)
def test_dynamics_is_exported_by_iel(cls):
    assert getattr(iel, cls.__name__, None) is cls and cls.__name__ in iel.__all__


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_step_is_pure_jitable_and_keeps_shape(cls):
    dynamics, states, dt = _make(cls)
    x = jnp.asarray(states(1, seed=0)[0])
    before = np.array(x, copy=True)
    key = jax.random.PRNGKey(0)
    y = dynamics.step(ENERGY, x, key, dt)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.all(np.isfinite(np.asarray(y)))
    np.testing.assert_array_equal(np.asarray(x), before)  # the input is untouched
    np.testing.assert_array_equal(dynamics.step(ENERGY, x, key, dt), y)  # same key, same step

    @eqx.filter_jit
    def step(dynamics, field, x, key):
        return dynamics.step(field, x, key, dt)

    np.testing.assert_allclose(step(dynamics, ENERGY, x, key), y, rtol=1e-12, atol=1e-12)
    x2 = jnp.asarray(states(1, seed=1)[0])
    step(dynamics, ENERGY, x2, jax.random.PRNGKey(1))
    assert step._cached._cache_size() == 1  # new state and key: the same program
    if cls is iel.ExponentiatedGradient:
        assert np.all(np.asarray(y) > 0) and float(jnp.sum(y)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("cls", [c for c in COVERED if not c.stochastic], ids=_ids)
def test_deterministic_step_decreases_the_energy(cls):
    dynamics, states, dt = _make(cls)
    x = jnp.asarray(states(4, seed=2))
    keys = jax.random.split(jax.random.PRNGKey(0), len(x))
    y = _batch_step(dynamics, ENERGY, x, keys, dt)
    assert y.shape == x.shape
    assert np.all(np.asarray(ENERGY.energy(y)) < np.asarray(ENERGY.energy(x)))
    # deterministic: the key does not matter
    other = _batch_step(dynamics, ENERGY, x, keys[::-1], dt)
    np.testing.assert_array_equal(other, y)


@pytest.mark.parametrize("cls", [c for c in COVERED if c.stochastic], ids=_ids)
def test_stochastic_step_depends_on_the_key_only(cls):
    dynamics, states, dt = _make(cls)
    x = jnp.asarray(states(1, seed=3)[0])
    a = dynamics.step(ENERGY, x, jax.random.PRNGKey(1), dt)
    b = dynamics.step(ENERGY, x, jax.random.PRNGKey(2), dt)
    np.testing.assert_array_equal(dynamics.step(ENERGY, x, jax.random.PRNGKey(1), dt), a)
    assert not np.allclose(a, b)
    # with many keys the mean move follows the drift −∇E (up to the noise's spread)
    keys = jax.random.split(jax.random.PRNGKey(4), 4000)
    moves = _batch_step(dynamics, ENERGY, jnp.broadcast_to(x, (len(keys), DIM)), keys, dt) - x[None]
    drift = -dt * np.asarray(ENERGY.gradient(x))
    spread = np.sqrt(2 * dt * dynamics.temperature / len(keys))
    np.testing.assert_allclose(
        np.mean(np.asarray(moves), axis=0), drift, atol=5 * spread + 0.05 * dt
    )


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_describe_is_json_and_names_the_type(cls):
    dynamics, _, _ = _make(cls)
    described = dynamics.describe()
    assert described["type"] == cls.__name__
    assert json.loads(json.dumps(described)) == described
    for name, value in CASES[cls.__name__][0].items():
        assert described[name] == value


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_describe_lists_only_the_settings_and_rebuilds_the_dynamics(cls):
    dynamics, _, _ = _make(cls)
    settings = {k: v for k, v in dynamics.describe().items() if k != "type"}
    assert cls(**settings) == dynamics
    assert iel.dynamics.dynamics_from_description(dynamics.describe()) == dynamics


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_simulate_runs_the_dynamics(cls):
    dynamics, states, dt = _make(cls)
    x0 = states(4, seed=5)
    run = iel.simulate(ENERGY, dynamics, x0, 6, jax.random.PRNGKey(0), dt, save_every=2)
    assert isinstance(run, iel.Trajectories)
    assert run.x.shape == (4, 4, DIM)
    np.testing.assert_array_equal(run.x[:, 0], x0)
    np.testing.assert_allclose(run.t[0], dt * 2 * np.arange(4), rtol=1e-12)
    assert np.all(np.isfinite(run.x))
    # the same key gives the same run; its first saved state is two steps of `step`
    again = iel.simulate(ENERGY, dynamics, x0, 6, jax.random.PRNGKey(0), dt, save_every=2)
    np.testing.assert_array_equal(again.x, run.x)
    if not cls.stochastic:
        y = jnp.asarray(x0)
        keys = jax.random.split(jax.random.PRNGKey(0), len(x0))
        for _ in range(2):
            y = _batch_step(dynamics, ENERGY, y, keys, dt)
        np.testing.assert_allclose(run.x[:, 1], y, rtol=1e-9, atol=1e-12)
