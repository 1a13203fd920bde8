"""The energy interface.

An energy is an Equinox module mapping **one** state ``x`` (of shape ``state_shape``) to a
scalar ``E(x)``.  Everything else is derived, never hand-written per family:

* batched evaluation ``E(x)`` on ``(..., *state_shape)`` by ``vmap``;
* the gradient ``∇E(x)`` and force ``F(x) = −∇E(x)`` by ``grad``.

Energies form a vector space: ``e1 + e2`` is :class:`SumEnergy`, ``c * e`` is
:class:`ScaledEnergy`.

Every concrete energy can describe itself as a JSON-able ``config()`` and be rebuilt from it
(``from_config``), so models are saved as JSON plus an array file and loading runs no code.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

from .._types import Array, ArrayLike

_REGISTRY: dict[str, type[AbstractForceField]] = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by name from a saved config."""
    _REGISTRY[cls.__name__] = cls
    return cls


def field_from_config(config: dict[str, Any]) -> AbstractForceField:
    """Rebuild a force field or energy (with placeholder arrays) from ``config()`` output."""
    name = config.get("type")
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown energy type {name!r} in saved config; known types: {known}")
    return _REGISTRY[name].from_config(config)


BLOCK_ROWS = 1024  # states per compiled call from this many on (fewer: a power of two)


def block_rows(n: int) -> int:
    """The rows of each compiled call for ``n`` states: :data:`BLOCK_ROWS` from that many on,
    else the next power of two — so that states of any number share a few programs."""
    return BLOCK_ROWS if n >= BLOCK_ROWS else 1 << max(n - 1, 0).bit_length()


def _batch(fn: Callable[[Array], Array], x: ArrayLike, state_ndim: int) -> Array:
    """Apply a one-state function over all leading axes of ``x``.

    Outside a trace the states go through :func:`compiled_vmap` in blocks of
    :func:`block_rows` rows (the last one padded with copies of the first state): one program
    for every number of states from :data:`BLOCK_ROWS` on, not one per number — a fit
    evaluates its energy on the pairs, the snapshots and the held-out states, and a new
    data set of another size compiles nothing new.  Each state's value is computed as by
    one ``vmap`` over all of them."""
    if isinstance(x, jax.core.Tracer):
        lead = x.shape[: x.ndim - state_ndim]
        out = compiled_vmap(fn, x.reshape((-1, *x.shape[x.ndim - state_ndim :])))
        return out.reshape(lead + out.shape[1:])
    host = np.asarray(x)
    if not np.issubdtype(host.dtype, np.inexact):
        host = host.astype(float)
    if host.ndim < state_ndim:
        raise ValueError(
            f"expected a state with at least {state_ndim} axes, got shape {tuple(host.shape)}"
        )
    lead = host.shape[: host.ndim - state_ndim]
    flat = host.reshape((-1, *host.shape[host.ndim - state_ndim :]))
    n = flat.shape[0]
    if n == 0:
        out = compiled_vmap(fn, flat)
        return out.reshape(lead + out.shape[1:])
    rows = block_rows(n)
    padded = -n % rows
    if padded:
        flat = np.concatenate([flat, np.repeat(flat[:1], padded, axis=0)])
    blocks = [np.asarray(compiled_vmap(fn, flat[i : i + rows])) for i in range(0, n + padded, rows)]
    out = np.concatenate(blocks)[:n]
    return jax.device_put(out.reshape(lead + out.shape[1:]))


@eqx.filter_jit
def compiled_vmap(fn: Callable[[Array], Array], flat: Array) -> Array:
    """``vmap(fn)(flat)`` as one compiled program, cached by the module's structure and the
    shapes (a module's bound method is a pytree of its arrays): run eagerly, each primitive
    of ``fn`` compiled on its own the first time — a few tenths of a second per new energy.
    Static fields (a :class:`ShiftedEnergy`'s shift) are part of the key: a model with a new
    shift compiles its program anew."""
    return jax.vmap(fn)(flat)


def _value(energy: AbstractEnergy, x: Array) -> Array:
    return energy(x)


class AbstractForceField(eqx.Module):
    """A vector field ``F(x)`` on states: what dynamics move along.

    Every energy is a force field with ``F = −∇E``; non-gradient fields (rotations, general
    drifts) are force fields that are not energies.
    """

    state_ndim: ClassVar[int] = 1

    @abc.abstractmethod
    def force_single(self, x: Array) -> Array:
        """``F(x)`` for one state ``x`` of shape ``state_shape``."""

    def force(self, x: ArrayLike) -> Array:
        """``F(x)`` on ``(..., *state_shape)``."""
        return _batch(self.force_single, x, self.state_ndim)

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-able description of the structure (not the array values)."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: dict[str, Any]) -> AbstractForceField:
        """Rebuild the structure from ``config()`` with placeholder arrays."""


class AbstractEnergy(AbstractForceField):
    """An energy ``E: state ↦ scalar``; subclasses implement ``__call__`` on one state."""

    @abc.abstractmethod
    def __call__(self, x: Array) -> Array:
        """``E(x)`` for one state ``x``; returns a scalar."""

    def gradient_single(self, x: Array) -> Array:
        return jax.grad(self.__call__)(x)

    def force_single(self, x: Array) -> Array:
        return -self.gradient_single(x)

    def energy(self, x: ArrayLike) -> Array:
        """``E`` on ``(..., *state_shape)``: returns shape ``(...)``."""
        # eqx.Partial, not the bound ``self.__call__``: Equinox does not wrap dunder methods,
        # so that one is a static argument, compared by value, and every new θ compiled anew
        return _batch(eqx.Partial(_value, self), x, self.state_ndim)

    def gradient(self, x: ArrayLike) -> Array:
        """``∇E`` on ``(..., *state_shape)``."""
        return _batch(self.gradient_single, x, self.state_ndim)

    def formula(self, precision: int = 3) -> str:
        """A readable formula; families without one name themselves."""
        return f"E(x) = {type(self).__name__}(…)"

    def __add__(self, other: AbstractEnergy) -> SumEnergy:
        if not isinstance(other, AbstractEnergy):
            return NotImplemented
        left = self.terms if isinstance(self, SumEnergy) else (self,)
        right = other.terms if isinstance(other, SumEnergy) else (other,)
        return SumEnergy(left + right)

    def __mul__(self, scale: float) -> ScaledEnergy:
        if not isinstance(scale, (int, float)):
            return NotImplemented
        return ScaledEnergy(self, float(scale))

    __rmul__ = __mul__


@register
class SumEnergy(AbstractEnergy):
    """``E(x) = Σ_k E_k(x)``."""

    terms: tuple[AbstractEnergy, ...]

    def __check_init__(self):
        if len(self.terms) == 0:
            raise ValueError("SumEnergy needs at least one term")
        ndims = {t.state_ndim for t in self.terms}
        if len(ndims) != 1:
            raise ValueError("cannot add energies on states of different rank")

    @property
    def state_ndim(self) -> int:  # type: ignore[override]
        return self.terms[0].state_ndim

    def __call__(self, x: Array) -> Array:
        return sum(term(x) for term in self.terms)

    def formula(self, precision: int = 3) -> str:
        parts = [t.formula(precision).removeprefix("E(x) = ") for t in self.terms]
        return "E(x) = " + " + ".join(f"[{p}]" for p in parts)

    def config(self) -> dict[str, Any]:
        return {"type": "SumEnergy", "terms": [t.config() for t in self.terms]}

    @classmethod
    def from_config(cls, config):
        return cls(tuple(field_from_config(c) for c in config["terms"]))


@register
class ScaledEnergy(AbstractEnergy):
    """``E(x) = c · E_0(x)`` with a fixed scale ``c``."""

    base: AbstractEnergy
    scale: float = eqx.field(static=True)

    @property
    def state_ndim(self) -> int:  # type: ignore[override]
        return self.base.state_ndim

    def __call__(self, x: Array) -> Array:
        return self.scale * self.base(x)

    def formula(self, precision: int = 3) -> str:
        inner = self.base.formula(precision).removeprefix("E(x) = ")
        return f"E(x) = {self.scale:.{precision}g}·[{inner}]"

    def config(self) -> dict[str, Any]:
        return {"type": "ScaledEnergy", "scale": self.scale, "base": self.base.config()}

    @classmethod
    def from_config(cls, config):
        return cls(field_from_config(config["base"]), float(config["scale"]))


@register
class ShiftedEnergy(AbstractEnergy):
    """``E(x) = E_0(x) + s`` with a fixed constant ``s`` (fixes the additive-constant
    convention of energies that have no constant of their own)."""

    base: AbstractEnergy
    shift: float = eqx.field(static=True)

    @property
    def state_ndim(self) -> int:  # type: ignore[override]
        return self.base.state_ndim

    def __call__(self, x: Array) -> Array:
        return self.base(x) + self.shift

    def formula(self, precision: int = 3) -> str:
        sign = "−" if self.shift < 0 else "+"
        return f"{self.base.formula(precision)} {sign} {abs(self.shift):.{precision}f}"

    def config(self) -> dict[str, Any]:
        return {"type": "ShiftedEnergy", "shift": self.shift, "base": self.base.config()}

    @classmethod
    def from_config(cls, config):
        return cls(field_from_config(config["base"]), float(config["shift"]))
