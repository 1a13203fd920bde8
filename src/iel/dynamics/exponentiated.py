"""Exponentiated gradient (mirror descent with the entropy mirror map) on the simplex."""

from __future__ import annotations

import jax

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class ExponentiatedGradient(AbstractDynamics):
    """``x_{k+1} = x_k ⊙ exp(−η ∇E(x_k)) / Z`` with ``Z`` normalising to the simplex.

    The descent sign: the research notes' ``exp(+∇E)`` ascends ``E``
    (``sign=+1`` reproduces it for comparison).  Its continuous limit is the replicator
    equation ``ẋ_i = −x_i(∂_iE − Σ_j x_j ∂_jE)``, a gradient flow in the Fisher–Rao metric.
    For a linear energy ``⟨x, c⟩`` from uniform, ``x_t = softmax(−ηt·c)`` exactly.
    States must be positive with entries summing to one.
    """

    sign: int = -1
    law = "x_(k+1) ∝ x_k ⊙ exp(η {drift}) on the simplex"

    def __check_init__(self):
        if self.sign not in (-1, 1):
            raise ValueError(
                f"sign must be -1 (descent) or +1 (the notes' ascent), got {self.sign}"
            )

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        # −∇E = F, so exp(−η∇E) = exp(ηF); computed in log space for stability
        logits = jax.numpy.log(x) - self.sign * dt * field.force_single(x)
        return jax.nn.softmax(logits)
