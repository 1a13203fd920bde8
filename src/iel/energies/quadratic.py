"""The quadratic energy ``E(x) = ½ (x − c)ᵀ A (x − c) + e₀`` with ``A`` positive definite.

``A = L Lᵀ + ε I`` with ``L`` lower triangular, so every parameter value gives a positive
definite ``A`` (gradient-based fits cannot leave the family).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array
from .base import AbstractEnergy, register


@register
class Quadratic(AbstractEnergy):
    centre: Array
    cholesky_factor: Array
    offset: Array = eqx.field(default_factory=lambda: jnp.zeros(()), converter=jnp.asarray)
    jitter: float = eqx.field(static=True, default=1e-9)

    @classmethod
    def from_matrix(cls, centre, matrix) -> Quadratic:
        """Build from a centre and a symmetric positive-definite matrix ``A``."""
        matrix = np.asarray(matrix, dtype=float)
        centre = np.asarray(centre, dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {matrix.shape}")
        if centre.shape != (matrix.shape[0],):
            raise ValueError(f"centre must have shape ({matrix.shape[0]},), got {centre.shape}")
        if not np.allclose(matrix, matrix.T):
            raise ValueError("A must be symmetric")
        try:
            factor = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError as err:
            eig = np.linalg.eigvalsh(matrix)
            raise ValueError(
                f"A must be positive definite; its smallest eigenvalue is {eig.min():.3g}"
            ) from err
        return cls(jnp.asarray(centre), jnp.asarray(factor))

    @property
    def dim(self) -> int:
        return int(self.centre.shape[0])

    @property
    def matrix(self) -> Array:
        lower = jnp.tril(self.cholesky_factor)
        return lower @ lower.T + self.jitter * jnp.eye(self.dim)

    def __call__(self, x: Array) -> Array:
        r = x - self.centre
        return 0.5 * r @ (self.matrix @ r) + self.offset

    def formula(self, precision: int = 3) -> str:
        c = ", ".join(f"{v:.{precision}f}" for v in np.asarray(self.centre))
        rows = "; ".join(
            ", ".join(f"{v:.{precision}f}" for v in row) for row in np.asarray(self.matrix)
        )
        const = float(self.offset)
        tail = f" {'−' if const < 0 else '+'} {abs(const):.{precision}f}" if const else ""
        return f"E(x) = ½(x − c)ᵀA(x − c){tail}, c = [{c}], A = [{rows}]"

    def config(self):
        return {"type": "Quadratic", "dim": self.dim, "jitter": self.jitter}

    @classmethod
    def from_config(cls, config):
        d = config["dim"]
        return cls(jnp.zeros(d), jnp.eye(d), jnp.zeros(()), config.get("jitter", 1e-9))
