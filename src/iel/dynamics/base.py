"""The dynamics interface: one pure step of a contractive operator.

``step(field, x, key, dt) -> x_next`` maps one state to the next.  It is pure and jit-able;
simulation, rollout losses and sampling all reuse it, so the operator a model was fitted with
is the one it simulates with.  ``dt`` is the step size (``η`` for gradient descent, ``h`` for
Langevin); states are single states, batching is by ``vmap``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx

from .._types import Array
from ..energies.base import AbstractEnergy, AbstractForceField


class AbstractDynamics(eqx.Module):
    """One step of a (possibly stochastic) dynamics driven by a force field."""

    stochastic: ClassVar[bool] = False
    needs_energy: ClassVar[bool] = False
    # the law of motion, with {drift} for −∇E(x) (or F(x) for a non-gradient field)
    law: ClassVar[str] = ""

    @abc.abstractmethod
    def step(self, field: AbstractForceField, x: Array, key: Array, dt: float) -> Array:
        """Advance one state ``x`` by one step of size ``dt``."""

    def step_with_noise(self, field: AbstractForceField, x: Array, noise: Array,
                        dt: float) -> Array:  # fmt: skip
        """The step with its standard normal draw ``noise`` (shape of ``x``) given instead of
        a key: the reparametrised step a rollout differentiates through, with the noise held
        fixed.  Deterministic dynamics ignore ``noise``."""
        if self.stochastic:
            raise NotImplementedError(
                f"{type(self).__name__} draws more than one normal per step: step it with a key"
            )
        return self.step(field, x, None, dt)

    def check_field(self, field: AbstractForceField) -> None:
        if self.needs_energy and not isinstance(field, AbstractEnergy):
            raise TypeError(
                f"{type(self).__name__} needs an energy (it evaluates E), got the non-gradient "
                f"field {type(field).__name__}"
            )

    def equation(self, gradient: bool = True) -> str:
        """The law of motion this step discretises, e.g. ``dx = −∇E(x) dt + √(2T) dW``."""
        return self.law.format(drift="−∇E(x)" if gradient else "F(x)")

    def describe(self) -> dict[str, Any]:
        """JSON-able description: the name and the settings."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            out[item.name] = float(value) if isinstance(value, float) else value
        return out
