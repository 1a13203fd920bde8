"""Gradient descent ``x ← x − η ∇E(x)``: the explicit Euler step of gradient flow."""

from __future__ import annotations

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class GradientDescent(AbstractDynamics):
    """``x_{k+1} = x_k + η F(x_k)`` with ``F = −∇E`` (``η = dt``).

    Decreases ``E`` monotonically when ``η < 2/L`` for an ``L``-smooth energy.
    """

    law = "x_(k+1) = x_k + η {drift}"

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        return x + dt * field.force_single(x)
