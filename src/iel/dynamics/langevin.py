"""Overdamped Langevin dynamics by Euler–Maruyama (the unadjusted Langevin algorithm, ULA)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class Langevin(AbstractDynamics):
    """``x_{k+1} = x_k + h F(x_k) + √(2 h T) ξ``,  ``ξ ~ N(0, I)``.

    Discretises ``dX = −∇E dt + √(2T) dW``, whose stationary law is ``π_T ∝ exp(−E/T)``; the
    Euler–Maruyama chain has an ``O(h)`` bias in its stationary law (MALA removes it).
    """

    temperature: float
    stochastic = True
    law = "dx = {drift} dt + √(2T) dW"

    def __check_init__(self):
        # (a traced temperature — learned inside a compiled loss — is not checked)
        if isinstance(self.temperature, (int, float)) and not self.temperature >= 0:
            raise ValueError(f"temperature must be ≥ 0, got {self.temperature}")

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        noise = jax.random.normal(key, x.shape, dtype=x.dtype)
        return self.step_with_noise(field, x, noise, dt)

    def step_with_noise(self, field: AbstractForceField, x: Array, noise: Array,
                        dt: float) -> Array:  # fmt: skip
        drift = x + dt * field.force_single(x)
        return drift + jnp.sqrt(2.0 * dt * self.temperature) * noise
