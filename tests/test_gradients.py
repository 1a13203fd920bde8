"""Gradients through the dynamics (THEORY §3): the research notes' BUG and its fixes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import finite_difference_gradient

from iel.dynamics.gradients import (
    adjoint_gradient,
    as_energy_fn,
    equilibrium,
    equilibrium_propagation_gradient,
    forward_sensitivity_gradient,
    gd_rollout,
    notes_one_step_gradient,
)
from iel.energies import HopfieldEnergy


def _mlp_like_energy(theta, x):
    """A smooth non-quadratic energy with 4 parameters on R²."""
    a, b, c, d = theta
    return a * jnp.sum(x**4) / 4 + b * jnp.sum(x**2) / 2 + c * x[0] * x[1] + d * jnp.sin(x[0])


def _tracking_loss(targets):
    def loss(k, x):
        return jnp.sum((x - targets[k]) ** 2)

    return loss


def test_bptt_equals_adjoint_equals_forward_equals_finite_differences(rng):
    theta = jnp.array([0.8, -0.5, 0.3, 0.2])
    z = jnp.array([1.2, -0.7])
    eta, k_steps = 0.05, 12
    targets = jnp.asarray(rng.normal(size=(k_steps + 1, 2)))
    loss = _tracking_loss(targets)

    def total(th):
        xs = gd_rollout(_mlp_like_energy, th, z, eta, k_steps)
        return sum(loss(k, xs[k]) for k in range(k_steps + 1))

    bptt = np.asarray(jax.grad(total)(theta))
    adjoint = np.asarray(adjoint_gradient(_mlp_like_energy, theta, z, eta, k_steps, loss))
    forward = np.asarray(
        forward_sensitivity_gradient(_mlp_like_energy, theta, z, eta, k_steps, loss)
    )
    fd = finite_difference_gradient(lambda th: total(jnp.asarray(th)), np.asarray(theta))
    np.testing.assert_allclose(adjoint, bptt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward, bptt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bptt, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("k_steps", [1, 2, 5, 20])
def test_notes_one_step_formula_is_short_by_exactly_k_on_quadratic(k_steps):
    """E = ½θx²: x_K = (1 − ηθ)^K z, dx_K/dθ = −Kηz(1 − ηθ)^{K−1}; the notes' formula keeps
    only the last step's term, which is exactly 1/K of it."""

    def energy(th, x):
        return 0.5 * th[0] * jnp.sum(x**2)

    theta, z, eta = jnp.array([2.0]), jnp.array([1.5]), 0.1

    def loss(k, x):
        return jnp.where(k == k_steps, jnp.sum(x), 0.0)

    exact = -k_steps * eta * 1.5 * (1 - eta * 2.0) ** (k_steps - 1)
    bptt = float(jax.grad(lambda t: gd_rollout(energy, t, z, eta, k_steps)[k_steps, 0])(theta)[0])
    notes = float(notes_one_step_gradient(energy, theta, z, eta, k_steps, loss)[0])
    assert bptt == pytest.approx(exact, rel=1e-12)
    assert notes * k_steps == pytest.approx(exact, rel=1e-12)


def test_notes_formula_is_exact_for_teacher_forced_one_step_losses(rng):
    theta = jnp.array([0.8, -0.5, 0.3, 0.2])
    x_obs = jnp.asarray(rng.normal(size=(6, 2)))
    eta = 0.05

    def teacher_forced(th):
        step = jax.vmap(lambda x: x - eta * jax.grad(_mlp_like_energy, argnums=1)(th, x))
        return jnp.sum((step(x_obs[:-1]) - x_obs[1:]) ** 2)

    per_step = sum(
        notes_one_step_gradient(
            _mlp_like_energy,
            theta,
            x_obs[k],
            eta,
            1,
            lambda j, x, k=k: jnp.sum((x - x_obs[k + 1]) ** 2),
        )
        for k in range(5)
    )
    np.testing.assert_allclose(per_step, jax.grad(teacher_forced)(theta), rtol=1e-12)


def test_implicit_unrolled_and_analytic_agree_on_quartic():
    """E = x⁴/4 − θx: x* = θ^{1/3}, dx*/dθ = 1/(3x*²)."""

    def energy(th, x):
        return jnp.sum(x**4) / 4 - th[0] * x[0]

    theta, x0 = jnp.array([2.0]), jnp.array([1.0])
    x_star = float(2.0 ** (1 / 3))
    analytic = 1.0 / (3 * x_star**2)
    implicit = float(jax.grad(lambda t: equilibrium(energy, t, x0)[0])(theta)[0])
    unrolled = float(jax.grad(lambda t: gd_rollout(energy, t, x0, 0.1, 400)[-1, 0])(theta)[0])
    ep = float(equilibrium_propagation_gradient(energy, theta, x0, lambda x: x[0], beta=1e-3)[0])
    assert float(equilibrium(energy, theta, x0)[0]) == pytest.approx(x_star, rel=1e-14)
    assert implicit == pytest.approx(analytic, abs=1e-10)
    assert unrolled == pytest.approx(analytic, abs=1e-10)
    assert ep == pytest.approx(analytic, abs=1e-6)


def test_unrolled_gradient_converges_to_implicit_as_k_grows():
    def energy(th, x):
        return jnp.sum(x**4) / 4 - th[0] * x[0]

    theta, x0 = jnp.array([2.0]), jnp.array([0.5])
    implicit = float(jax.grad(lambda t: equilibrium(energy, t, x0)[0])(theta)[0])
    errors = [
        abs(float(jax.grad(lambda t, k=k: gd_rollout(energy, t, x0, 0.1, k)[-1, 0])(theta)[0])
            - implicit)
        for k in (5, 20, 80)
    ]  # fmt: skip
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-8


def test_equilibrium_propagation_matches_implicit_on_hopfield(rng):
    hop = HopfieldEnergy.from_weights(0.5 * rng.normal(size=(4, 4)), rng.normal(size=4), "sigmoid")
    energy_fn, theta = as_energy_fn(hop)
    target = jnp.asarray(rng.normal(size=4))

    def loss(x):
        return 0.5 * jnp.sum((x - target) ** 2)

    x0 = jnp.zeros(4)
    implicit = jax.grad(lambda th: loss(equilibrium(energy_fn, th, x0)))(theta)
    ep = equilibrium_propagation_gradient(energy_fn, theta, x0, loss, beta=1e-3)
    unrolled = jax.grad(lambda th: loss(gd_rollout(energy_fn, th, x0, 0.2, 600)[-1]))(theta)
    np.testing.assert_allclose(ep, implicit, atol=1e-6)
    np.testing.assert_allclose(unrolled, implicit, atol=1e-8)
    assert float(jnp.linalg.norm(implicit)) > 1e-3  # a real gradient, not a zero
