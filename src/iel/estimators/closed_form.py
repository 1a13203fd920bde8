"""The one-step estimator in closed form, for energies linear in their parameters (THEORY §4).

Model: ``x_{k+1} = x_k − h_k ∇E_θ(x_k) + √(2 T h_k) ξ_k`` with ``E_θ = θᵀφ``.  Writing
``G_k = ∇φ(x_k)ᵀ`` (``d × p``), the negative log-likelihood

    ``Σ_k ‖Δx_k + h_k G_k θ‖² / (4 T h_k) + (d/2) Σ_k log(4π T h_k)``

is minimised by the normal equations ``(Σ_k h_k G_kᵀG_k) θ = −Σ_k G_kᵀ Δx_k`` and

    ``T̂ = Σ_k ‖Δx_k + h_k G_k θ̂‖² / h_k  /  (2 (K d − p))``.

All sums are accumulated in one pass over the data (in chunks, so memory stays bounded); the
residual sum comes from the same sums, ``Σ‖Δx‖²/h − 2θᵀb + θᵀAθ``, with no second pass.  The
system is solved after Jacobi scaling with a symmetric eigendecomposition, so features whose
gradients are (nearly) collinear on the data are reported rather than blowing up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.trajectories import Trajectories
from ..energies.features import AbstractFeatureLibrary, FeatureEnergy
from ..energies.quadratic import Quadratic
from ..energies.spec import EnergyFamily, parse_energy_spec
from ..model import FittedModel
from .base import (
    AbstractEstimator,
    data_range,
    identifiability_for_trajectories,
    shift_to_zero_min,
)

CHUNK = 16384


@dataclass(frozen=True)
class NormalEquations:
    """Sufficient statistics of the one-step likelihood for a linear energy."""

    gram: np.ndarray  # A = Σ w h GᵀG   (p, p)
    rhs: np.ndarray  # b = −Σ w GᵀΔx   (p,)
    sq_over_h: float  # Σ w ‖Δx‖²/h
    sum_dx: np.ndarray  # Σ w Δx   (d,)
    sum_h: float  # Σ w h
    n_rows: float  # Σ w · d  (scalar observations)


@eqx.filter_jit
def _accumulate(library: AbstractFeatureLibrary, x0, dx, h, w):
    p = library.n_features
    d = x0.shape[-1]

    def body(carry, inputs):
        gram, rhs, sq, sdx, sh = carry
        xs, dxs, hs, ws = inputs
        jac = jax.vmap(library.jacobian)(xs)  # (B, p, d)
        flat = jnp.swapaxes(jac, 1, 2).reshape(-1, p)  # (B·d, p)
        scale = jnp.repeat(ws * hs, d)  # (B·d,)
        gram = gram + flat.T @ (flat * scale[:, None])
        rhs = rhs - jnp.einsum("bpd,bd->p", jac, dxs * ws[:, None])
        safe_h = jnp.where(hs > 0, hs, 1.0)
        sq = sq + jnp.sum(ws * jnp.sum(dxs**2, axis=1) / safe_h)
        sdx = sdx + jnp.sum(dxs * ws[:, None], axis=0)
        sh = sh + jnp.sum(ws * hs)
        return (gram, rhs, sq, sdx, sh), None

    init = (
        jnp.zeros((p, p)),
        jnp.zeros(p),
        jnp.zeros(()),
        jnp.zeros(d),
        jnp.zeros(()),
    )
    out, _ = jax.lax.scan(body, init, (x0, dx, h, w))
    return out


def _chunked(arr: np.ndarray, chunk: int, fill: float = 0.0) -> np.ndarray:
    n = arr.shape[0]
    n_chunks = max(1, -(-n // chunk))
    pad = n_chunks * chunk - n
    if pad:
        arr = np.concatenate([arr, np.full((pad, *arr.shape[1:]), fill)])
    return arr.reshape((n_chunks, chunk, *arr.shape[1:]))


def normal_equations(
    library: AbstractFeatureLibrary,
    x0: np.ndarray,
    x1: np.ndarray,
    h: np.ndarray,
    weights: np.ndarray | None = None,
) -> NormalEquations:
    """Accumulate the sufficient statistics over transitions ``x0 → x1`` taking time ``h``."""
    k = x0.shape[0]
    chunk = min(CHUNK, max(k, 1))
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float)
    # padded rows carry zero weight, so they add nothing to any sum
    gram, rhs, sq, sdx, sh = _accumulate(
        library,
        jnp.asarray(_chunked(x0, chunk)),
        jnp.asarray(_chunked(x1 - x0, chunk)),
        jnp.asarray(_chunked(h, chunk, fill=1.0)),
        jnp.asarray(_chunked(w, chunk)),
    )
    return NormalEquations(
        np.asarray(gram),
        np.asarray(rhs),
        float(sq),
        np.asarray(sdx),
        float(sh),
        float(w.sum() * x0.shape[-1]),
    )


@dataclass(frozen=True)
class LinearSolution:
    theta: np.ndarray
    rank: int
    dropped: list[int]  # features with no gradient signal on the data
    condition: float


def solve_normal_equations(
    eq: NormalEquations, ridge: float = 0.0, rcond: float = 1e-13
) -> LinearSolution:
    """``(A + ridge·diag(A)) θ = b`` after Jacobi scaling; pseudo-inverse below ``rcond``."""
    gram, rhs = eq.gram, eq.rhs
    diag = np.diag(gram).copy()
    dropped = [int(i) for i in np.flatnonzero(diag <= 1e-300)]
    scale = np.where(diag > 1e-300, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
    scaled = gram * scale[:, None] * scale[None, :]
    scaled = scaled + ridge * np.diag((diag > 1e-300).astype(float))
    evals, evecs = np.linalg.eigh(scaled)
    top = evals.max() if evals.size else 0.0
    keep = evals > rcond * top
    inv = np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)
    theta_scaled = evecs @ (inv * (evecs.T @ (rhs * scale)))
    positive = evals[keep]
    condition = float(positive.max() / positive.min()) if positive.size else float("inf")
    return LinearSolution(theta_scaled * scale, int(keep.sum()), dropped, condition)


def residual_sum(eq: NormalEquations, theta: np.ndarray) -> float:
    """``Σ w ‖Δx + h G θ‖² / h`` from the sufficient statistics (clipped at 0)."""
    value = eq.sq_over_h - 2.0 * theta @ eq.rhs + theta @ eq.gram @ theta
    return max(float(value), 0.0)


def as_quadratic(energy: FeatureEnergy) -> Quadratic | None:
    """The fitted degree-2 polynomial as ``½(x−c)ᵀA(x−c)`` when its Hessian is PD."""
    d = energy.library.dim
    hessian = np.asarray(jax.hessian(energy)(jnp.zeros(d)))
    linear = np.asarray(jax.grad(energy)(jnp.zeros(d)))
    if np.linalg.eigvalsh(hessian).min() <= 0:
        return None
    centre = -np.linalg.solve(hessian, linear)
    return Quadratic.from_matrix(centre, 0.5 * (hessian + hessian.T))


NOISE_FREE_TOLERANCE = 1e-9


class OneStepClosedForm(AbstractEstimator):
    """Closed-form one-step fit of a linear energy family to trajectories.

    Args:
        energy: a spec string (``"poly:4"``, ``"poly:4+fourier:2"``, ``"rbf:50"``,
            ``"quadratic"``) or a feature library.
        ridge: Tikhonov weight on the Jacobi-scaled coefficients (0 = plain least squares).
        seed: seed for data-chosen parts of the library (RBF centres).
    """

    method = "onestep-closed-form"

    def __init__(self, energy: str | AbstractFeatureLibrary = "poly:4", ridge: float = 0.0, seed=0):
        self.energy = energy
        self.ridge = ridge
        self.seed = seed

    def _family(self, dim: int) -> EnergyFamily:
        if isinstance(self.energy, AbstractFeatureLibrary):
            return EnergyFamily(type(self.energy).__name__, dim, self.energy, (), False)
        family = parse_energy_spec(self.energy, dim)
        if not family.is_linear:
            raise ValueError(
                f"the closed-form estimator needs an energy linear in its parameters; "
                f"{self.energy!r} has a network term (use the likelihood estimator)"
            )
        return family

    def fit(self, data: Trajectories, weights: np.ndarray | None = None) -> OneStepClosedForm:
        if not isinstance(data, Trajectories):
            raise TypeError(f"OneStepClosedForm fits trajectories, got {type(data).__name__}")
        if len(data.state_shape) != 1:
            raise ValueError(
                f"the closed form needs vector states (N, T, d), got state shape {data.state_shape}"
            )
        start = time.perf_counter()
        x0, x1, h = data.transitions()
        states = data.observed_states()
        family = self._family(data.dim)
        library = family.library.adapt(states, seed=self.seed)
        eq = normal_equations(library, x0, x1, h, weights)
        sol = solve_normal_equations(eq, self.ridge)
        ss_res = residual_sum(eq, sol.theta)
        dof = max(eq.n_rows - sol.rank, 1.0)
        temperature = ss_res / (2.0 * dof)
        noise_free = ss_res <= NOISE_FREE_TOLERANCE * max(eq.sq_over_h, 1e-300)
        mean_v = eq.sum_dx / eq.sum_h
        ss_tot = eq.sq_over_h - eq.sum_h * float(mean_v @ mean_v)
        energy = shift_to_zero_min(FeatureEnergy(library, sol.theta), states)
        out_energy = energy
        notes = []
        if family.quadratic:
            quad = as_quadratic(energy)
            if quad is not None:
                out_energy = shift_to_zero_min(quad, states)
            else:
                notes.append("the fitted quadratic is not positive definite (a saddle or ridge)")
        if sol.dropped:
            names = [library.names()[i] for i in sol.dropped]
            notes.append(f"features with zero gradient on the data were dropped: {names}")
        if sol.rank < library.n_features - len(sol.dropped):
            notes.append(
                f"feature gradients are collinear on the data: rank {sol.rank} of "
                f"{library.n_features}; the minimum-norm solution is reported"
            )
        diagnostics = {
            "drift_r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            # rms of the increment residual per √time: √(2T) for Langevin data
            "residual_scale": float(np.sqrt(ss_res / max(eq.n_rows, 1))),
            "n_transitions": int(x0.shape[0]),
            "n_features": library.n_features,
            "rank": sol.rank,
            "condition_number": sol.condition,
            "noise_free": bool(noise_free),
            "notes": notes,
        }
        identifiability = identifiability_for_trajectories(noise_free)
        low, high = data_range(states)
        self.model_ = FittedModel(
            energy_module=out_energy,
            temperature=0.0 if noise_free else float(temperature),
            energy_spec=family.spec,
            method=self.method,
            data_kind=data.kind,
            time_convention="dx/dt = −∇E(x) (+ √(2T) dW/dt); t in the units of the data",
            diagnostics=diagnostics,
            identifiability=identifiability,
            data_low=low,
            data_high=high,
            stop_reason="closed form: exact minimiser of the one-step likelihood",
            fit_seconds=time.perf_counter() - start,
        )
        self.temperature_estimate_ = float(temperature)
        return self
