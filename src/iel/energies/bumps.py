"""Sums of Gaussian bumps with learned amplitudes, centres and widths.

``E(x) = Σ_m a_m exp(−½ Σ_j ((x_j − c_mj) / s_mj)²)``

A compact nonlinear family, as metadynamics represents free-energy surfaces: a landscape with
a few wells and barriers needs a few bumps, where a fixed library needs hundreds of terms.
Widths are stored as logarithms so they stay positive.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._types import Array
from .base import AbstractEnergy, register
from .features import kmeans_centres


@register
class GaussianBumps(AbstractEnergy):
    amplitudes: Array  # (m,)
    centres: Array  # (m, d)
    log_widths: Array  # (m, d)

    def __check_init__(self):
        m, d = self.centres.shape
        if self.amplitudes.shape != (m,) or self.log_widths.shape != (m, d):
            raise ValueError(
                f"bumps: amplitudes ({m},), centres (m, d) and log_widths (m, d) must agree, got "
                f"{self.amplitudes.shape}, {self.centres.shape}, {self.log_widths.shape}"
            )

    @classmethod
    def from_data(cls, states: np.ndarray, n_bumps: int, seed: int = 0) -> GaussianBumps:
        """Centres by k-means on the data, widths from the spread, zero amplitudes."""
        states = np.asarray(states, float).reshape(-1, states.shape[-1])
        centres = kmeans_centres(states, n_bumps, seed=seed)
        spread = states.std(axis=0) + 1e-12
        width = spread * n_bumps ** (-1.0 / states.shape[1])
        return cls(
            jnp.zeros(n_bumps),
            jnp.asarray(centres),
            jnp.log(jnp.broadcast_to(jnp.asarray(width), centres.shape)),
        )

    @property
    def dim(self) -> int:
        return int(self.centres.shape[1])

    def __call__(self, x: Array) -> Array:
        z = (x[None, :] - self.centres) / jnp.exp(self.log_widths)
        return jnp.dot(self.amplitudes, jnp.exp(-0.5 * jnp.sum(z**2, axis=1)))

    def formula(self, precision: int = 3) -> str:
        terms = []
        for a, c, w in zip(
            np.asarray(self.amplitudes), np.asarray(self.centres), np.exp(self.log_widths)
        ):
            cs = ", ".join(f"{v:.{precision}g}" for v in c)
            ws = ", ".join(f"{v:.{precision}g}" for v in w)
            terms.append(f"{a:+.{precision}g}·bump(c=[{cs}], s=[{ws}])")
        return "E(x) = " + " ".join(terms) if terms else "E(x) = 0"

    def config(self):
        m, d = self.centres.shape
        return {"type": "GaussianBumps", "n_bumps": int(m), "dim": int(d)}

    @classmethod
    def from_config(cls, config):
        m, d = config["n_bumps"], config["dim"]
        return cls(jnp.zeros(m), jnp.zeros((m, d)), jnp.zeros((m, d)))
