"""Gradients through the dynamics (THEORY §3: the research notes' BUG, fixed).

Rollout ``x_0 = z``, ``x_{k+1} = Φ_θ(x_k) = x_k − η ∇E_θ(x_k)``, loss ``L = Σ_k ℓ_k(x_k)``.
With ``J_k = I − η H(x_k)`` and ``B_k = −η M(x_k)`` (``H = ∇²_x E``, ``M = ∂_θ ∇_x E``):

* adjoint (BPTT): ``λ_K = ∇ℓ_K``, ``λ_k = ∇ℓ_k + J_kᵀ λ_{k+1}``,
  ``dL/dθ = Σ_{k<K} B_kᵀ λ_{k+1}``  — :func:`adjoint_gradient`;
* forward sensitivity: ``S_{k+1} = J_k S_k + B_k``, ``dL/dθ = Σ_k S_kᵀ ∇ℓ_k`` —
  :func:`forward_sensitivity_gradient`;
* the notes' formula keeps only the last step's ``B``: exact for one step and for teacher-forced
  one-step losses, short by a factor ``K`` on ``E = ½θx²`` — :func:`notes_one_step_gradient`;
* at a minimum ``x* = argmin E_θ``: ``dx*/dθ = −H⁻¹M``, so ``dL/dθ = −Mᵀ H⁻¹ ∇ℓ(x*)`` — one
  linear solve with Hessian-vector products — :func:`equilibrium` (a differentiable argmin);
* equilibrium propagation: ``lim_{β→0} [∂_θE(x^β) − ∂_θE(x^{−β})] / (2β)`` with
  ``x^β = argmin E + βℓ`` — :func:`equilibrium_propagation_gradient`.

Everything here works on a flat parameter vector ``θ`` through ``energy_fn(θ, x)``, so the
recursions can be checked against autodiff and finite differences (the tests do).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from .._types import Array

EnergyFn = Callable[[Array, Array], Array]  # (θ, x) -> scalar
LossFn = Callable[[int, Array], Array]  # (k, x_k) -> scalar


def gd_rollout(energy_fn: EnergyFn, theta: Array, z: Array, eta: float, n_steps: int) -> Array:
    """States ``x_0 … x_K`` of gradient descent, shape ``(K + 1, d)``."""

    def step(x, _):
        x_next = x - eta * jax.grad(energy_fn, argnums=1)(theta, x)
        return x_next, x_next

    _, xs = jax.lax.scan(step, z, None, length=n_steps)
    return jnp.concatenate([z[None], xs])


def adjoint_gradient(
    energy_fn: EnergyFn, theta: Array, z: Array, eta: float, n_steps: int, loss_fn: LossFn
) -> Array:
    """``dL/dθ`` by the explicit adjoint (backward) recursion of THEORY §3."""
    xs = gd_rollout(energy_fn, theta, z, eta, n_steps)
    grad_x = jax.grad(energy_fn, argnums=1)

    def jt_vec(x, lam):  # J_kᵀ λ = λ − η H λ (H symmetric)
        return lam - eta * jax.jvp(lambda y: grad_x(theta, y), (x,), (lam,))[1]

    def bt_vec(x, lam):  # B_kᵀ λ = −η Mᵀ λ = −η ∂_θ ⟨∇_x E, λ⟩
        return -eta * jax.grad(lambda th: jnp.dot(grad_x(th, x), lam))(theta)

    lam = jax.grad(loss_fn, argnums=1)(n_steps, xs[n_steps])
    total = jnp.zeros_like(theta)
    for k in range(n_steps - 1, -1, -1):
        total = total + bt_vec(xs[k], lam)
        lam = jax.grad(loss_fn, argnums=1)(k, xs[k]) + jt_vec(xs[k], lam)
    return total


def forward_sensitivity_gradient(
    energy_fn: EnergyFn, theta: Array, z: Array, eta: float, n_steps: int, loss_fn: LossFn
) -> Array:
    """``dL/dθ`` by forward sensitivities ``S_k = dx_k/dθ``."""
    xs = gd_rollout(energy_fn, theta, z, eta, n_steps)
    grad_x = jax.grad(energy_fn, argnums=1)
    d, p = z.shape[0], theta.shape[0]
    sens = jnp.zeros((d, p))
    total = jnp.zeros(p)
    for k in range(n_steps + 1):
        total = total + sens.T @ jax.grad(loss_fn, argnums=1)(k, xs[k])
        if k == n_steps:
            break
        hess = jax.jacfwd(lambda y, k=k: grad_x(theta, y))(xs[k])
        mixed = jax.jacfwd(lambda th, k=k: grad_x(th, xs[k]))(theta)
        sens = (jnp.eye(d) - eta * hess) @ sens - eta * mixed
    return total


def notes_one_step_gradient(
    energy_fn: EnergyFn, theta: Array, z: Array, eta: float, n_steps: int, loss_fn: LossFn
) -> Array:
    """The research notes' formula ``(∂L/∂x_K) · (−η ∂²E/∂x∂θ)`` at the last step only.

    Exact for ``n_steps = 1``; misses every earlier step's effect otherwise.
    """
    xs = gd_rollout(energy_fn, theta, z, eta, n_steps)
    grad_x = jax.grad(energy_fn, argnums=1)
    lam = jax.grad(loss_fn, argnums=1)(n_steps, xs[n_steps])
    return -eta * jax.grad(lambda th: jnp.dot(grad_x(th, xs[n_steps - 1]), lam))(theta)


# -- differentiable argmin --------------------------------------------------------------------
def _newton_minimise(energy_fn: EnergyFn, theta, x0, n_newton: int, n_gd: int, eta: float):
    grad_x = jax.grad(energy_fn, argnums=1)

    def gd(x, _):
        return x - eta * grad_x(theta, x), None

    x, _ = jax.lax.scan(gd, x0, None, length=n_gd)

    def newton(x, _):
        g = grad_x(theta, x)
        h = jax.hessian(energy_fn, argnums=1)(theta, x)
        return x - jnp.linalg.solve(h, g), None

    x, _ = jax.lax.scan(newton, x, None, length=n_newton)
    return x


def equilibrium(
    energy_fn: EnergyFn,
    theta: Array,
    x0: Array,
    *,
    n_gd: int = 200,
    n_newton: int = 8,
    eta: float = 0.05,
    cg_tolerance: float = 1e-12,
) -> Array:
    """``x* = argmin_x E_θ(x)`` from ``x0``, differentiable in ``θ`` by the implicit function
    theorem: the backward pass solves ``H v = ḡ`` (conjugate gradients on Hessian-vector
    products, ``H ≻ 0`` at a minimum) and returns ``θ̄ = −Mᵀ v``.  ``x0`` gets no gradient (at
    convergence the minimum depends on the start only through its basin).

    Forward: ``n_gd`` gradient-descent steps of size ``eta`` then ``n_newton`` Newton steps.
    """

    @jax.custom_vjp
    def solve(theta, x0):
        return _newton_minimise(energy_fn, theta, x0, n_newton, n_gd, eta)

    def solve_fwd(theta, x0):
        x_star = solve(theta, x0)
        return x_star, (theta, x_star, x0)

    def solve_bwd(residuals, cotangent):
        theta, x_star, x0 = residuals
        grad_x = jax.grad(energy_fn, argnums=1)

        def hvp(v):
            return jax.jvp(lambda y: grad_x(theta, y), (x_star,), (v,))[1]

        operator = lx.FunctionLinearOperator(
            hvp, jax.ShapeDtypeStruct(x_star.shape, x_star.dtype), tags=lx.positive_semidefinite_tag
        )
        v = lx.linear_solve(
            operator, cotangent, solver=lx.CG(rtol=cg_tolerance, atol=cg_tolerance)
        ).value
        theta_bar = -jax.grad(lambda th: jnp.dot(grad_x(th, x_star), v))(theta)
        return theta_bar, jnp.zeros_like(x0)

    solve.defvjp(solve_fwd, solve_bwd)
    return solve(theta, x0)


def equilibrium_propagation_gradient(
    energy_fn: EnergyFn,
    theta: Array,
    x0: Array,
    loss_fn: Callable[[Array], Array],
    beta: float = 1e-4,
    **solver_options,
) -> Array:
    """Equilibrium propagation (Scellier & Bengio 2017), symmetric nudging:

    ``dL/dθ ≈ [∂_θE(x^β) − ∂_θE(x^{−β})] / (2β)``,  ``x^{±β} = argmin E_θ ± β ℓ``,

    which equals ``d ℓ(x*) / dθ`` up to ``O(β²)``.  Uses only equilibria and ``∂_θ E``: no
    backward pass through the dynamics.
    """
    x_free = jax.lax.stop_gradient(equilibrium(energy_fn, theta, x0, **solver_options))

    def nudged(b):
        def total(th, x):
            return energy_fn(th, x) + b * loss_fn(x)

        return jax.lax.stop_gradient(equilibrium(total, theta, x_free, **solver_options))

    dtheta = jax.grad(energy_fn, argnums=0)
    return (dtheta(theta, nudged(beta)) - dtheta(theta, nudged(-beta))) / (2.0 * beta)


def as_energy_fn(energy: eqx.Module) -> tuple[EnergyFn, Array]:
    """Flatten an energy module's arrays into ``θ`` and return ``(energy_fn(θ, x), θ)``."""
    params, static = eqx.partition(energy, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    def energy_fn(theta: Array, x: Array) -> Array:
        return eqx.combine(unravel(theta), static)(x)

    return energy_fn, flat
