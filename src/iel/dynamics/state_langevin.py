"""Overdamped Langevin dynamics with a state-dependent diffusion ``D(x)`` (Euler–Maruyama, Itô).

Two drift conventions (``form``):

* ``"mobility"`` — the gradient flow with mobility ``D``:

      ``dx = [−D(x)∇E(x) + ∇·D(x)] dt + √(2D(x)) dW``,

  whose stationary law is ``π ∝ exp(−E)`` whatever ``D`` is (the zero-flux Fokker–Planck
  current ``−D(∇E π + ∇π)``): the temperature is absorbed into ``D``, and ``E`` is in units of
  ``kT``.  With ``D = T·I`` it is the constant-temperature Langevin of ``E/T``.
* ``"ito"`` — the drift is the force itself: ``dx = −∇E(x) dt + √(2D(x)) dW``.  ``E`` keeps the
  units of the drift, but its stationary law is no longer ``exp(−E/T)``.

The step: ``x' = x + h·b(x) + √(2h) L(x) ξ`` with ``L Lᵀ = D`` and ``b`` the drift above.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array
from ..energies.base import AbstractForceField
from .base import AbstractDynamics
from .diffusion_field import PolynomialDiffusion

DRIFT_FORMS = ("mobility", "ito")


class StateLangevin(AbstractDynamics):
    """Langevin dynamics with diffusion ``D(x)`` (module docstring).

    Args:
        diffusion: the :class:`PolynomialDiffusion` (or its description, as saved).
        form: ``"mobility"`` (stationary law ``exp(−E)``) or ``"ito"`` (drift ``−∇E``).
        temperature: the temperature the model reports: 1 for the mobility form (``E`` in units
            of ``kT``), the mean ``tr D/d`` over the data for the Itô form (a noise scale only).
    """

    diffusion: PolynomialDiffusion
    form: str = eqx.field(static=True)
    temperature: float = eqx.field(static=True)
    stochastic = True

    def __init__(
        self,
        diffusion: PolynomialDiffusion | dict,
        form: str = "mobility",
        temperature: float = 1.0,
    ):
        if isinstance(diffusion, dict):
            diffusion = PolynomialDiffusion.from_description(diffusion)
        if form not in DRIFT_FORMS:
            raise ValueError(
                f"the drift form must be one of {', '.join(DRIFT_FORMS)}, got {form!r}"
            )
        self.diffusion, self.form, self.temperature = diffusion, form, float(temperature)

    def drift(self, field: AbstractForceField, x: Array) -> Array:
        """``b(x)``: ``D(x)F(x) + ∇·D(x)`` (mobility) or ``F(x)`` (Itô), ``F = −∇E``."""
        force = field.force_single(x)
        if self.form == "ito":
            return force
        return self.diffusion.single(x) @ force + self.diffusion.divergence(x)

    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        noise = jax.random.normal(key, x.shape, dtype=x.dtype)
        return self.step_with_noise(field, x, noise, dt)

    def step_with_noise(
        self, field: AbstractForceField, x: Array, noise: Array, dt: float
    ) -> Array:
        kick = self.diffusion.noise_factor(x) @ noise
        return x + dt * self.drift(field, x) + jnp.sqrt(2.0 * dt) * kick

    def equation(self, gradient: bool = True) -> str:
        drift = "−∇E(x)" if gradient else "F(x)"
        if self.form == "ito":
            return f"dx = {drift} dt + √(2D(x)) dW ({self.diffusion.kind} D(x), Itô)"
        return (
            f"dx = [D(x)·({drift}) + ∇·D(x)] dt + √(2D(x)) dW ({self.diffusion.kind} D(x), "
            "Itô; stationary law exp(−E): E in units of kT)"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "form": self.form,
            "temperature": self.temperature,
            "diffusion": self.diffusion.describe(),
        }
