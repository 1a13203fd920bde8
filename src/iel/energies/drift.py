"""Non-gradient drifts: general vector fields ``F(x)`` that need not be ``−∇E``.

These are the alternatives an energy is compared with: "is this a gradient system at all?"
(a general drift on the same features) and "is an energy a better model than a step
function?" (an MLP drift).  They are force fields, not energies.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array
from .base import AbstractForceField, register
from .features import AbstractFeatureLibrary, library_from_config
from .neural import _activation, mlp_apply, mlp_layers


@register
class FeatureDrift(AbstractForceField):
    """``F(x) = W φ(x)``: each coordinate of the drift its own combination of features."""

    library: AbstractFeatureLibrary
    weights: Array  # (d, p)

    def __init__(self, library: AbstractFeatureLibrary, weights=None):
        self.library = library
        shape = (library.dim, library.n_features)
        self.weights = jnp.zeros(shape) if weights is None else jnp.asarray(weights, float)
        if self.weights.shape != shape:
            raise ValueError(f"weights must have shape {shape}, got {self.weights.shape}")

    def force_single(self, x: Array) -> Array:
        return self.weights @ self.library(x)

    def config(self):
        return {"type": "FeatureDrift", "library": self.library.config()}

    @classmethod
    def from_config(cls, config):
        return cls(library_from_config(config["library"]))


@register
class MLPDrift(AbstractForceField):
    """``F(x) = MLP(x) ∈ R^d``: an unconstrained learned step ``x + h F(x)``."""

    layers: tuple[eqx.nn.Linear, ...]
    dim: int = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(self, dim: int, widths: Sequence[int], key: Array, activation: str = "softplus"):
        _activation(activation)
        self.layers = mlp_layers([dim, *widths, dim], key)
        self.dim, self.widths, self.activation = int(dim), tuple(widths), activation

    def force_single(self, x: Array) -> Array:
        return mlp_apply(self.layers, self.activation, x)

    def config(self):
        return {
            "type": "MLPDrift",
            "dim": self.dim,
            "widths": list(self.widths),
            "activation": self.activation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(config["dim"], config["widths"], jax.random.PRNGKey(0), config["activation"])
