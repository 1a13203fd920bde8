"""The Hopfield / equilibrium-propagation energy of the research notes.

``E(u) = ½ Σ_i u_i² − ½ Σ_{i≠j} W_ij ρ(u_i) ρ(u_j) − Σ_i b_i ρ(u_i)``

with ``W`` symmetric and zero on the diagonal (Scellier & Bengio 2017, arXiv 1602.05179).
``W`` is stored through an unconstrained matrix ``V``: ``W = (V + Vᵀ)/2`` with the diagonal
removed, so every parameter value is a valid Hopfield network.  ``ρ`` is named by string:
``"hard_sigmoid"`` (``clip(u, 0, 1)``, the paper's choice), ``"sigmoid"`` or ``"tanh"``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array
from .base import AbstractEnergy, register

RHO = {
    "hard_sigmoid": lambda u: jnp.clip(u, 0.0, 1.0),
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
}


@register
class HopfieldEnergy(AbstractEnergy):
    raw_weights: Array
    bias: Array
    rho: str = eqx.field(static=True, default="sigmoid")

    def __check_init__(self):
        if self.rho not in RHO:
            raise ValueError(f"unknown rho {self.rho!r}; choose one of {sorted(RHO)}")
        n = self.bias.shape[0]
        if self.raw_weights.shape != (n, n):
            raise ValueError(f"weights must be ({n}, {n}), got {self.raw_weights.shape}")

    @classmethod
    def from_weights(cls, weights, bias, rho: str = "sigmoid") -> HopfieldEnergy:
        """From a symmetric ``W`` (its diagonal is ignored) and biases ``b``."""
        return cls(jnp.asarray(weights, float), jnp.asarray(bias, float), rho)

    @property
    def dim(self) -> int:
        return int(self.bias.shape[0])

    @property
    def weights(self) -> Array:
        w = 0.5 * (self.raw_weights + self.raw_weights.T)
        return w * (1.0 - jnp.eye(self.dim))

    def __call__(self, u: Array) -> Array:
        r = RHO[self.rho](u)
        return 0.5 * jnp.sum(u**2) - 0.5 * r @ (self.weights @ r) - self.bias @ r

    def formula(self, precision: int = 3) -> str:
        return (
            f"E(u) = ½Σu_i² − ½Σ_(i≠j) W_ij ρ(u_i)ρ(u_j) − Σ b_i ρ(u_i), "
            f"{self.dim} units, ρ = {self.rho}"
        )

    def config(self):
        return {"type": "HopfieldEnergy", "dim": self.dim, "rho": self.rho}

    @classmethod
    def from_config(cls, config):
        n = config["dim"]
        return cls(jnp.zeros((n, n)), jnp.zeros(n), config["rho"])
