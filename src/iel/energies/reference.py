"""Reference energies with known formulas: the JKOnet* potential suite and classic landscapes.

The fifteen potentials are exactly those of ``shared/BENCHMARKS.md`` §A (the formulas the
published JKOnet* code runs).  ``h₁, h₂`` are the means of the first ``⌊d/2⌋`` and of the
remaining coordinates (in 2-D simply ``v₁, v₂``).  Each is available in any dimension ``d ≥ 2``
(``d ≥ 1`` for the separable ones).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp

from .._types import Array
from .base import AbstractEnergy, AbstractForceField, register


def _halves(v: Array) -> tuple[Array, Array]:
    k = max(v.shape[0] // 2, 1)
    return jnp.mean(v[:k]), jnp.mean(v[k:])


def styblinski_tang(v):
    return 0.5 * jnp.sum(v**4 - 16 * v**2 + 5 * v)


def holder_table(v):
    h1, h2 = _halves(v)
    return 10 * jnp.abs(
        jnp.sin(h1) * jnp.cos(h2) * jnp.exp(jnp.abs(1 - jnp.linalg.norm(v) / jnp.pi))
    )


def flowers(v):
    return jnp.sum(v + 2 * jnp.sin(jnp.abs(v) ** 1.2))


def oakley_ohagan(v):
    return 5 * jnp.sum(jnp.sin(v) + jnp.cos(v) + v**2 + v)


def watershed(v):
    return jnp.sum(v[:-1] + v[:-1] ** 2 * (v[1:] + 4)) / 10


def ishigami(v):
    a, b = _halves(v)
    c = (a + b) / 2
    return jnp.sin(a) + 7 * jnp.sin(b) ** 2 + 0.1 * c**4 * jnp.sin(a)


def friedman(v):
    u = 2 * (v - 7)
    k = max(v.shape[0] // 2, 1)
    a = jnp.mean(u[:k])
    b = jnp.mean(u[k:]) / 2
    return (
        10 * jnp.sin(jnp.pi * a * b)
        + 20 * (a * jnp.sin(b) - 0.5) ** 2
        + 10 * (a * jnp.cos(b) - 1) ** 2
        + 0.1 * b * jnp.sin(a)
    ) / 100


def sphere(v):
    return -10 * jnp.sum(v**2)


def bohachevsky(v):
    h1, h2 = _halves(v)
    return 10 * (
        h1**2 + 2 * h2**2 - 0.3 * jnp.cos(3 * jnp.pi * h1) - 0.4 * jnp.cos(4 * jnp.pi * h2)
    )


def wavy_plateau(v):
    return jnp.sum(jnp.cos(jnp.pi * v) + 0.5 * v**4 - 3 * v**2 + 1)


def zigzag_ridge(v):
    a, b = v[:-1], v[1:]
    return jnp.sum((a - b) ** 2 + jnp.cos(a) * (a + b) + a**2 * b)


def double_exp(v):
    ones = jnp.ones_like(v)
    return 200 * (
        jnp.exp(-jnp.sum((v - 3 * ones) ** 2) / 20) + jnp.exp(-jnp.sum((v + 3 * ones) ** 2) / 20)
    )


def relu(v):
    return -50 * jnp.sum(jnp.maximum(v, 0.0))


def rotational(v):
    h1, h2 = _halves(v)
    return -500 * (jnp.arctan2(h2 + 5, h1 + 5) + jnp.pi)


def flat(v):
    return jnp.zeros((), dtype=v.dtype) * jnp.sum(v)


def double_well(v):
    """``Σ_j (x_j² − 1)²``: in 1-D ``x⁴ − 2x² + 1``, minima at ±1, barrier 1."""
    return jnp.sum((v**2 - 1) ** 2)


_MB_A = (-200.0, -100.0, -170.0, 15.0)
_MB_a = (-1.0, -1.0, -6.5, 0.7)
_MB_b = (0.0, 0.0, 11.0, 0.6)
_MB_c = (-10.0, -10.0, -6.5, 0.7)
_MB_x0 = (1.0, 0.0, -0.5, -1.0)
_MB_y0 = (0.0, 0.5, 1.5, 1.0)


def muller_brown(v):
    """The Müller–Brown potential scaled by 0.1 (barriers of a few units; BENCHMARKS §B)."""
    x, y = v[0], v[1]
    total = 0.0
    for A, a, b, c, x0, y0 in zip(_MB_A, _MB_a, _MB_b, _MB_c, _MB_x0, _MB_y0):
        dx, dy = x - x0, y - y0
        total = total + A * jnp.exp(a * dx**2 + b * dx * dy + c * dy**2)
    return 0.1 * total


def three_well(v):
    """``x⁶/6 − 5x⁴/4 + 2x²`` (summed over coordinates): minima at 0 and ±2, maxima at ±1."""
    return jnp.sum(v**6 / 6 - 1.25 * v**4 + 2 * v**2)


def rotated_double_well(v):
    """``(u² − 1)² + 2w²`` with ``(u, w)`` the coordinates rotated by 30°: an anisotropic,
    tilted double well with minima at ``±(cos 30°, sin 30°)``."""
    c, s = jnp.cos(jnp.pi / 6), jnp.sin(jnp.pi / 6)
    u = c * v[0] + s * v[1]
    w = -s * v[0] + c * v[1]
    return (u**2 - 1) ** 2 + 2 * w**2


JKONET_POTENTIALS = (
    "styblinski_tang",
    "holder_table",
    "flowers",
    "oakley_ohagan",
    "watershed",
    "ishigami",
    "friedman",
    "sphere",
    "bohachevsky",
    "wavy_plateau",
    "zigzag_ridge",
    "double_exp",
    "relu",
    "rotational",
    "flat",
)

FUNCTIONS = {
    name: globals()[name]
    for name in (
        *JKONET_POTENTIALS,
        "double_well",
        "muller_brown",
        "three_well",
        "rotated_double_well",
    )
}
_MIN_DIM = {
    "watershed": 2,
    "zigzag_ridge": 2,
    "muller_brown": 2,
    "rotated_double_well": 2,
    "holder_table": 2,
    "ishigami": 2,
    "friedman": 2,
    "bohachevsky": 2,
    "rotational": 2,
}
_FIXED_DIM = {"muller_brown": 2, "rotated_double_well": 2}


@register
class ReferenceEnergy(AbstractEnergy):
    """A named reference energy (see :data:`FUNCTIONS`) on ``R^dim``."""

    name: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __check_init__(self):
        if self.name not in FUNCTIONS:
            raise ValueError(f"unknown reference energy {self.name!r}; known: {sorted(FUNCTIONS)}")
        low = _MIN_DIM.get(self.name, 1)
        fixed = _FIXED_DIM.get(self.name)
        if self.dim < low or (fixed is not None and self.dim != fixed):
            want = f"exactly {fixed}" if fixed else f"at least {low}"
            raise ValueError(f"{self.name} needs dim {want}, got {self.dim}")

    def __call__(self, x: Array) -> Array:
        return FUNCTIONS[self.name](x)

    def formula(self, precision: int = 3) -> str:
        return f"E(x) = {self.name}(x)"

    def config(self) -> dict[str, Any]:
        return {"type": "ReferenceEnergy", "name": self.name, "dim": self.dim}

    @classmethod
    def from_config(cls, config):
        return cls(config["name"], config["dim"])


@register
class RotationField(AbstractForceField):
    """A non-gradient drift in 2-D, ``F(x) = −x + ω (−x₁, x₀)``: a stable spiral.

    Its Jacobian ``[[−1, −ω], [ω, −1]]`` is not symmetric, so no energy has ``F = −∇E``; least
    squares over energies returns only its gradient part ``−x``.
    """

    omega: float = eqx.field(static=True, default=2.0)

    def force_single(self, x: Array) -> Array:
        return -x + self.omega * jnp.stack([-x[1], x[0]])

    def config(self):
        return {"type": "RotationField", "omega": self.omega}

    @classmethod
    def from_config(cls, config):
        return cls(config["omega"])
