"""Metropolis-adjusted Langevin (MALA): exact Boltzmann sampling of ``exp(−E/T)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractEnergy
from .base import AbstractDynamics


class MALA(AbstractDynamics):
    """A Langevin proposal ``y = x − h∇E(x) + √(2hT) ξ`` accepted with probability

    ``min(1, exp(−(E(y) − E(x))/T) · q(x | y) / q(y | x))``,
    ``q(b | a) ∝ exp(−‖b − a + h∇E(a)‖² / (4hT))``.

    The chain leaves ``π_T ∝ exp(−E/T)`` exactly invariant for every step size ``h``.
    """

    temperature: float
    stochastic = True
    law = "dx = {drift} dt + √(2T) dW (Metropolis-adjusted steps)"
    needs_energy = True

    def __check_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"MALA needs a temperature > 0, got {self.temperature}")

    def step_with_acceptance(
        self, energy: AbstractEnergy, x: Array, key: Array, dt: float
    ) -> tuple[Array, Array]:
        """One step; also returns whether the proposal was accepted."""
        self.check_field(energy)
        k_prop, k_acc = jax.random.split(key)
        e_x, g_x = jax.value_and_grad(energy)(x)
        noise = jax.random.normal(k_prop, x.shape, dtype=x.dtype)
        y = x - dt * g_x + jnp.sqrt(2.0 * dt * self.temperature) * noise
        e_y, g_y = jax.value_and_grad(energy)(y)
        four_ht = 4.0 * dt * self.temperature
        log_q_forward = -jnp.sum((y - x + dt * g_x) ** 2) / four_ht
        log_q_backward = -jnp.sum((x - y + dt * g_y) ** 2) / four_ht
        log_ratio = -(e_y - e_x) / self.temperature + log_q_backward - log_q_forward
        accept = jnp.log(jax.random.uniform(k_acc, dtype=x.dtype)) < log_ratio
        return jnp.where(accept, y, x), accept

    def step(self, field: AbstractEnergy, x: Array, key: Array, dt: float) -> Array:
        return self.step_with_acceptance(field, x, key, dt)[0]
