"""Additive bumps: one-dimensional Gaussian bumps on each coordinate (a generalised additive
energy, ``E(x) = Σ_j g_j(x_j)``).

``φ_{j,i}(x) = exp(−(x_j − c_{j,i})² / (2σ_j²))`` for ``M`` centres ``c_{j,i}`` per coordinate,
placed on the quantiles ``(i + ½)/M`` of that coordinate's data, width ``σ_j`` their mean
spacing.  ``d·M`` features whose gradients each touch one coordinate: a flexible energy in
high dimension where ``d``-dimensional bumps would need a number of centres exponential in
``d``, for landscapes that are sums over coordinates of shapes no polynomial or Fourier series
of low order fits (kinks, ``|x|^a``, plateaus).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array
from .features import AbstractFeatureLibrary, _register_library, one_coordinate_features


@_register_library
class AdditiveRBF(AbstractFeatureLibrary):
    """``M`` one-dimensional Gaussian bumps per coordinate (``d·M`` features).

    Args:
        centres: ``(d, M)`` centres, row ``j`` on coordinate ``j``.
        widths: ``(d,)`` one width per coordinate.
    """

    centres: Array
    widths: Array
    dim: int = eqx.field(static=True)
    n_centres: int = eqx.field(static=True)

    def __init__(self, centres, widths):
        centres = jnp.asarray(centres, dtype=float)
        if centres.ndim != 2:
            raise ValueError(f"additive RBF centres must have shape (d, M), got {centres.shape}")
        widths = jnp.asarray(widths, dtype=float)
        if widths.shape != (centres.shape[0],):
            raise ValueError(
                f"additive RBF widths must have shape (d,) = ({centres.shape[0]},), got "
                f"{tuple(widths.shape)}"
            )
        self.centres, self.widths = centres, widths
        self.dim, self.n_centres = int(centres.shape[0]), int(centres.shape[1])

    @classmethod
    def placeholder(cls, dim: int, n_centres: int) -> AdditiveRBF:
        """Centres not yet placed: call :meth:`adapt` with data."""
        return cls(jnp.zeros((dim, n_centres)), jnp.ones(dim))

    @property
    def n_features(self) -> int:
        return self.dim * self.n_centres

    def __call__(self, x: Array) -> Array:
        z = (x[:, None] - self.centres.astype(x.dtype)) / self.widths.astype(x.dtype)[:, None]
        return jnp.exp(-0.5 * z**2).reshape(-1)  # coordinate-major: x0's bumps first

    def names(self) -> list[str]:
        return [f"rbf(x{j})_{i}" for j in range(self.dim) for i in range(self.n_centres)]

    def feature_coordinates(self) -> np.ndarray:
        return one_coordinate_features(np.repeat(np.arange(self.dim), self.n_centres))

    def adapt(self, x: np.ndarray, seed: int = 0) -> AdditiveRBF:
        """Centres on the quantiles ``(i + ½)/M`` of each coordinate; width their mean
        spacing (the coordinate's spread over ``M`` for a single centre)."""
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        levels = (np.arange(self.n_centres) + 0.5) / self.n_centres
        centres = np.quantile(x, levels, axis=0).T  # (d, M)
        if self.n_centres > 1:
            widths = (centres[:, -1] - centres[:, 0]) / (self.n_centres - 1)
        else:
            widths = np.std(x, axis=0)
        return AdditiveRBF(centres, np.maximum(widths, 1e-12))

    def config(self):
        return {"type": "AdditiveRBF", "dim": self.dim, "n_centres": self.n_centres}

    @classmethod
    def from_config(cls, config):
        return cls.placeholder(config["dim"], config["n_centres"])
