"""Closed-form one-step fit of a general (non-gradient) drift ``F(x) = W φ(x)``.

Each coordinate gets its own coefficients: ``W = (Σ_k Δx_k φ_kᵀ)(Σ_k h_k φ_k φ_kᵀ)⁻¹`` and
``T̂ = Σ_k ‖Δx_k − h_k W φ_k‖² / h_k / (2 (K d − d p))``.  The baseline an energy must beat:
with ``d·p`` parameters against the energy's ``p`` it can represent rotations, and it is what
PySINDy fits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ...data.trajectories import Trajectories
from ...energies.drift import FeatureDrift
from ...energies.spec import parse_energy_spec
from ..base import (
    AbstractEstimator,
    fitted_model,
)


@eqx.filter_jit
def _sums(library, x0, dx, h):
    phi = jax.vmap(library)(x0)  # (K, p)
    gram = phi.T @ (phi * h[:, None])
    cross = dx.T @ phi  # (d, p)
    sq = jnp.sum(jnp.sum(dx**2, axis=1) / h)
    return gram, cross, sq


@dataclass(eq=False)
class FreeDriftClosedForm(AbstractEstimator):
    """One-step least squares of a vector field on a feature library (spec or library)."""

    method = "free-drift-closed-form"

    features: str = "poly:3"
    ridge: float = 0.0
    seed: int = 0

    def fit(self, data: Trajectories) -> FreeDriftClosedForm:
        if not isinstance(data, Trajectories):
            raise TypeError(f"FreeDriftClosedForm fits trajectories, got {type(data).__name__}")
        start = time.perf_counter()
        x0, dx, h = data.increments()
        states = data.observed_states()
        library = self.features
        if isinstance(library, str):
            library = parse_energy_spec(library, data.dim).library
            if library is None:
                raise ValueError(f"{self.features!r} has no feature terms")
        library = library.adapt(states, seed=self.seed)
        sums = _sums(library, jnp.asarray(x0), jnp.asarray(dx), jnp.asarray(h))
        gram, cross, sq = (np.asarray(v) for v in sums)
        scale = 1.0 / np.sqrt(np.maximum(np.diag(gram), 1e-300))
        scaled = gram * scale[:, None] * scale[None, :] + self.ridge * np.eye(len(scale))
        weights = np.linalg.lstsq(scaled, (cross * scale[None, :]).T, rcond=1e-13)[0].T
        weights = weights * scale[None, :]
        ss_res = max(
            float(sq - 2 * np.sum(weights * cross) + np.sum((weights @ gram) * weights)), 0
        )
        rows = x0.shape[0] * data.dim
        temperature = ss_res / (2.0 * max(rows - weights.size, 1))
        self.model_ = fitted_model(
            data,
            FeatureDrift(library, weights),
            temperature=float(temperature),
            energy_spec=str(self.features),
            method=self.method,
            diagnostics={"residual_sum": ss_res, "n_parameters": int(weights.size)},
            identifiability={"drift": "F where the data go; no energy is assumed"},
            stop_reason="closed form",
            fit_seconds=time.perf_counter() - start,
            states=states,
        )
        return self
