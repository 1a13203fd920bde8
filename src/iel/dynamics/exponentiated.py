"""Exponentiated gradient (mirror descent with the entropy mirror map) on the simplex."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class ExponentiatedGradient(AbstractDynamics):
    """``x_{k+1} = x_k ⊙ exp(−η ∇E(x_k) + √(2ηT) ξ) / Z`` with ``Z`` normalising to the simplex.

    The descent sign: the research notes' ``exp(+∇E)`` ascends ``E``
    (``sign=+1`` reproduces it for comparison).  Its continuous limit is the replicator
    equation ``ẋ_i = −x_i(∂_iE − Σ_j x_j ∂_jE)``, a gradient flow in the Fisher–Rao metric.
    For a linear energy ``⟨x, c⟩`` from uniform, ``x_t = softmax(−ηt·c)`` exactly.
    States must be positive with entries summing to one.

    ``temperature`` (default 0: the deterministic update) adds Gaussian noise ``ξ ~ N(0, I)``
    to the logits: in centred log-ratio coordinates ``clr(x) = log x − mean(log x)`` the step is
    ``clr(x_{k+1}) = clr(x_k) − η P∇E(x_k) + √(2ηT) P ξ`` with ``P = I − 11ᵀ/d`` (a
    logistic-normal step).  Its stationary law is not ``exp(−E/T)`` in general.
    """

    sign: int = -1
    temperature: float = 0.0
    law = "x_(k+1) ∝ x_k ⊙ exp(η {drift}) on the simplex"

    def __check_init__(self):
        if self.sign not in (-1, 1):
            raise ValueError(
                f"sign must be -1 (descent) or +1 (the notes' ascent), got {self.sign}"
            )
        if isinstance(self.temperature, (int, float)) and not self.temperature >= 0:
            raise ValueError(f"temperature must be ≥ 0, got {self.temperature}")

    def _noisy(self) -> bool:
        return not (isinstance(self.temperature, (int, float)) and self.temperature == 0)

    def equation(self, gradient: bool = True) -> str:
        law = super().equation(gradient)
        if self._noisy():
            return law.replace("exp(η ", "exp(√(2ηT) ξ + η ")
        return law

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        if not self._noisy():
            return self.step_with_noise(field, x, None, dt)
        return self.step_with_noise(field, x, jax.random.normal(key, x.shape, dtype=x.dtype), dt)

    def step_with_noise(self, field: AbstractForceField, x: Array, noise: Array | None,
                        dt: float) -> Array:  # fmt: skip
        # −∇E = F, so exp(−η∇E) = exp(ηF); computed in log space for stability
        logits = jnp.log(x) - self.sign * dt * field.force_single(x)
        if noise is not None and self._noisy():
            logits = logits + jnp.sqrt(2.0 * dt * self.temperature) * noise
        return jax.nn.softmax(logits)
