"""Gradient flow ``ẋ = −∇E(x)``, solved with an adaptive Runge–Kutta method (Diffrax)."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics


class GradientFlow(AbstractDynamics):
    """Exact (to tolerance) flow of ``ẋ = F(x)`` over a time ``dt``.

    Uses Diffrax's Tsit5 with a PID step-size controller; ``dE/dt = −‖∇E‖²`` along the flow.
    Gradient descent with step ``η`` is its explicit Euler step, first order in ``η``.
    """

    law = "dx/dt = {drift}"

    rtol: float = eqx.field(static=True, default=1e-8)
    atol: float = eqx.field(static=True, default=1e-10)
    max_steps: int = eqx.field(static=True, default=4096)

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        term = diffrax.ODETerm(lambda t, y, args: field.force_single(y))
        solution = diffrax.diffeqsolve(
            term,
            diffrax.Tsit5(),
            t0=0.0,
            t1=dt,
            dt0=None,
            y0=x,
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            throw=False,
        )
        # a failed solve (too many steps, blow-up) returns NaN so simulate() stops and reports it
        ok = solution.result == diffrax.RESULTS.successful
        y1 = solution.ys[-1]
        return jnp.where(ok, y1, jnp.nan)
