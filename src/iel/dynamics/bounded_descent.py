"""Gradient descent with a step bounded by the local curvature and slope."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class BoundedGradientDescent(AbstractDynamics):
    """``x_{k+1} = x_k − s ∇E(x_k)`` with ``s = min(η, ½/‖∇²E(x_k)‖_F, δ/‖∇E(x_k)‖)``.

    The step is at most ``η`` (``dt``), half the local curvature time where the energy is
    stiff (so it is stable there), and at most ``δ`` (``max_step``) long where it is steep.
    The Frobenius norm bounds the spectral one and is smooth in ``E``, so the step is
    differentiable in the energy's parameters: the descent a process of end states is modelled
    by (THEORY §6), and the one that finds minima and basins (:mod:`iel.basins`).  With
    ``η = ∞`` it is a curvature-limited descent that converges to the nearest minimum.
    """

    max_step: float
    needs_energy = True
    law = "x_(k+1) = x_k + s {drift}, s = min(η, ½/‖∇²E‖, δ/‖∇E‖)"

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        g = jax.grad(field)(x)
        stiffness = jnp.sqrt(jnp.sum(jax.hessian(field)(x) ** 2) + 1e-30)
        s = jnp.minimum(jnp.minimum(dt, 0.5 / stiffness),
                        self.max_step * jax.lax.rsqrt(jnp.sum(g * g) + 1e-30))  # fmt: skip
        return x - s * g
