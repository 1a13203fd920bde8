"""Priors on the unseen starting points of a minimising process (THEORY §6).

End states alone fix the minima of ``E``; which basin drew how many starts depends on where the
starts came from.  A prior ``z ~ p₀`` makes that explicit: a fitted energy must send a share of
the prior's mass into each basin equal to the share of end states found there.

Spec strings (``iel fit --prior``): ``"normal"`` (the default: independent normals with the end
states' mean and 1.5× their standard deviation per coordinate — starts are assumed to be spread
a little wider than where the process ended), ``"normal:MEAN:STD"`` and ``"uniform:LOW:HIGH"``
(the same scalars for every coordinate).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

DEFAULT_PRIOR = "normal"
DEFAULT_WIDENING = 1.5


@dataclass(frozen=True)
class NormalPrior:
    """Independent normals ``z_j ~ N(mean_j, std_j²)``."""

    mean: np.ndarray
    std: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.mean + self.std * rng.standard_normal((n, len(self.mean)))

    def log_density(self, z):
        """``log p₀(z)`` for ``z`` of shape ``(..., d)``."""
        u = (z - _lead(self.mean, z)) / _lead(self.std, z)
        return -0.5 * jnp.sum(u * u, axis=-1) - jnp.sum(jnp.log(self.std * np.sqrt(2 * np.pi)))

    def describe(self) -> str:
        return f"normal(mean={_fmt(self.mean)}, std={_fmt(self.std)})"


@dataclass(frozen=True)
class UniformPrior:
    """Independent uniforms ``z_j ~ U(low_j, high_j)`` (no density outside the box)."""

    low: np.ndarray
    high: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=(n, len(self.low)))

    def log_density(self, z):
        """``log p₀(z)`` for ``z`` of shape ``(..., d)`` (``−∞`` outside the box)."""
        inside = jnp.all((z >= _lead(self.low, z)) & (z <= _lead(self.high, z)), axis=-1)
        return jnp.where(inside, -jnp.sum(jnp.log(self.high - self.low)), -jnp.inf)

    def describe(self) -> str:
        return f"uniform(low={_fmt(self.low)}, high={_fmt(self.high)})"


StartPrior = NormalPrior | UniformPrior


def _lead(values: np.ndarray, z):
    """``values`` of shape ``(d,)`` shaped to broadcast against ``z`` of shape ``(..., d)``."""
    return jnp.asarray(values).reshape((1,) * (jnp.ndim(z) - 1) + (-1,))


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in np.ravel(values)) + "]"


def parse_prior(spec: str | StartPrior, ends: np.ndarray) -> StartPrior:
    """A prior from a spec string (module docstring) or an already built prior."""
    if isinstance(spec, (NormalPrior, UniformPrior)):
        if np.shape(getattr(spec, "mean", getattr(spec, "low", None)))[-1] != ends.shape[1]:
            raise ValueError(f"the prior on starts has the wrong dimension for {ends.shape[1]}-d "
                             "end states")  # fmt: skip
        return spec
    dim = ends.shape[1]
    parts = str(spec).split(":")
    name = parts[0]
    if name == "normal" and len(parts) == 1:
        std = DEFAULT_WIDENING * np.std(ends, axis=0)
        return NormalPrior(np.mean(ends, axis=0), np.maximum(std, 1e-6 * (1 + np.abs(std))))
    if name in ("normal", "uniform") and len(parts) == 3:
        try:
            a, b = float(parts[1]), float(parts[2])
        except ValueError:
            a = b = float("nan")
        if np.isfinite(a) and np.isfinite(b) and (b > 0 if name == "normal" else b > a):
            if name == "normal":
                return NormalPrior(np.full(dim, a), np.full(dim, b))
            return UniformPrior(np.full(dim, a), np.full(dim, b))
    raise ValueError(
        f"prior on starts: expected 'normal', 'normal:MEAN:STD' (STD > 0) or 'uniform:LOW:HIGH' "
        f"(LOW < HIGH), got {spec!r}"
    )
