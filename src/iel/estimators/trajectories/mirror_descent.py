"""The exponentiated-gradient (mirror-descent) step fitted in closed form, for proportions.

Model (:class:`~iel.dynamics.ExponentiatedGradient`): states on the simplex,
``x_{k+1} = x_k ⊙ exp(−h_k ∇E(x_k) + √(2 T h_k) ξ_k) / Z_k``.  Taking logs,
``log x_{k+1} − log x_k = −h_k ∇E(x_k) + √(2Th_k) ξ_k − log Z_k``, and the log-normaliser is
the same in every component; centring over components (``P = I − 11ᵀ/d``, the centred
log-ratio ``clr(x) = P log x``) removes it:

    ``Δy_k = clr(x_{k+1}) − clr(x_k) = −h_k P∇E(x_k) + √(2Th_k) P ξ_k``.

For ``E_θ = θᵀφ`` the step is linear in ``θ`` with the *centred* feature Jacobians
``G̃_k = P ∇φ(x_k)ᵀ``, so the one-step negative log-likelihood of this logistic-normal step is
the Euclidean one with ``(Δx, G)`` replaced by ``(Δy, G̃)`` and is minimised by the same normal
equations ``(Σ h G̃ᵀG̃) θ = −Σ G̃ᵀΔy`` (:mod:`iel.linear.normal_equations`), with

    ``T̂ = Σ_k ‖Δy_k + h_k G̃_k θ̂‖² / h_k  /  (2 (K (d − 1) − rank))``

(the residuals live in the ``d − 1`` dimensions orthogonal to ``(1, …, 1)``).

Identifiability: ``P∇E`` on the simplex is all the steps see, so ``E`` is determined only
through its values on the simplex, up to a constant: any function constant there — ``f(Σx)``,
or ``(Σx − 1)·g(x)`` — has a gradient along ``(1, …, 1)`` at the simplex and changes nothing.
The normal equations are singular along those directions of ``θ``; the minimum-norm solution
(after Jacobi scaling) is one representative.  Compare fits by
:func:`restricted_coefficients` (``E`` on the simplex in orthonormal coordinates of its
plane), which is the same for every representative.  Noise-free steps give only ``η·E``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ...data.trajectories import Trajectories
from ...data.validation import check_simplex
from ...dynamics import ExponentiatedGradient
from ...energies.base import AbstractEnergy
from ...energies.features import AbstractFeatureLibrary, FeatureEnergy, Monomials
from ...energies.spec import EnergyFamily, parse_energy_spec
from ...linear.normal_equations import normal_equations, residual_sum, solve_normal_equations
from ..base import (
    CONSTANT_CONVENTION,
    AbstractEstimator,
    fitted_model,
    shift_to_zero_min,
)
from .closed_form import NOISE_FREE_TOLERANCE


def centred_log_ratio(x: np.ndarray) -> np.ndarray:
    """``clr(x) = log x − mean_i log x_i`` along the last axis (positive ``x``)."""
    logs = np.log(np.asarray(x, dtype=float))
    return logs - logs.mean(axis=-1, keepdims=True)


def simplex_basis(dim: int) -> np.ndarray:
    """``(dim, dim − 1)``: an orthonormal basis of the simplex's plane ``{v: Σv_i = 0}`` (the
    Helmert contrasts); ``u = Vᵀ(x − 1/d)`` are Euclidean coordinates on the simplex."""
    basis = np.zeros((dim, dim - 1))
    for j in range(1, dim):
        basis[:j, j - 1] = 1.0 / j
        basis[j, j - 1] = -1.0
        basis[:, j - 1] /= np.linalg.norm(basis[:, j - 1])
    return basis


def restricted_coefficients(
    energy: Callable[[np.ndarray], Any], dim: int, degree: int, n_points: int = 400,
    seed: int = 0,
) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """The gauge-free coefficients of ``E`` on the simplex: ``E(1/d + V u)`` (``V`` from
    :func:`simplex_basis`) as a polynomial in the plane coordinates ``u`` of degree ``degree``,
    without its constant.  Exact (least squares on ``n_points`` interior points) for
    polynomial ``E`` of at most that degree; the same for every ``E`` differing by a function
    constant on the simplex.  ``energy``: an energy module (``E(x)`` of one state; energies
    of one structure share one compiled program) or a function of ``(M, dim)`` states.
    Returns ``(names in u0, u1, …, coefficients)``."""
    x = np.random.default_rng(seed).dirichlet(np.ones(dim), size=n_points)
    u = (x - 1.0 / dim) @ simplex_basis(dim)
    if isinstance(energy, AbstractEnergy):
        values = np.asarray(_values(energy, jnp.asarray(x)), dtype=float)
    else:
        values = np.asarray(energy(jnp.asarray(x)), dtype=float)
    library = Monomials(dim - 1, degree)
    exponents = np.asarray(library.exponents)  # (p, dim − 1)
    design = np.prod(u[:, None, :] ** exponents[None], axis=-1)
    design = np.concatenate([np.ones((n_points, 1)), design], axis=1)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    names = [name.replace("x", "u") for name in library.names()]
    return names, coef[1:]


@eqx.filter_jit
def _values(energy: AbstractEnergy, x: jax.Array) -> jax.Array:
    return jax.vmap(energy)(x)


class _CentredJacobians(eqx.Module):
    """``φ`` with centred Jacobians ``P∇φ(x)ᵀ``: only for accumulating normal equations.

    Not a feature library (its Jacobian is not the derivative of its features), so it does
    not subclass :class:`AbstractFeatureLibrary`: it offers what :func:`normal_equations` reads
    of one (``n_features``, ``jacobian``, ``feature_coordinates``) and nothing to save."""

    base: AbstractFeatureLibrary
    dim: int

    def __init__(self, base: AbstractFeatureLibrary):
        self.base = base
        self.dim = base.dim

    def __call__(self, x):
        return self.base(x)

    @property
    def n_features(self) -> int:
        return self.base.n_features

    def names(self) -> list[str]:
        return self.base.names()

    def jacobian(self, x):
        jac = self.base.jacobian(x)  # (p, d)
        return jac - jnp.mean(jac, axis=1, keepdims=True)

    def feature_coordinates(self):
        return None  # centring couples every coordinate


def _identifiability(noise_free: bool) -> dict[str, str]:
    energy = (
        "E only through its values on the simplex, up to an additive constant: adding any "
        "function constant on the simplex (any f(Σx_i), or (Σx_i − 1)·g(x)) changes no step, "
        "since its gradient there is along (1, …, 1), which the normaliser Z removes"
    )
    if noise_free:
        energy += "; noise-free steps determine only η·E (E in units of the stated time step)"
        temperature = "zero: no noise was found in the log-ratio steps (residuals at round-off)"
    else:
        temperature = (
            "T of logistic-normal steps, from the residual of the centred log-ratio steps "
            "(noise √(2ηT)·Pξ in log x)"
        )
    return {
        "energy": energy,
        "temperature": temperature,
        "gradient_region": "the centred gradient P∇E is determined only where the data go",
        "gauge": "coefficients are one representative (minimum norm) of the identified class; "
        "iel.estimators.trajectories.mirror_descent.restricted_coefficients is gauge-free",
        "constant": CONSTANT_CONVENTION,
    }


@dataclass(eq=False)
class ExponentiatedGradientClosedForm(AbstractEstimator):
    """Closed-form one-step fit of ``E`` to proportions moved by exponentiated gradient.

    Args:
        energy: a spec string of a family linear in its parameters (``"poly:3"``,
            ``"rbf:20"``, …) or a feature library.  Network families are refused.
        ridge: Tikhonov weight on the Jacobi-scaled coefficients.
        seed: seed for data-chosen parts of the library (RBF centres).
        temperature: fix ``T`` instead of estimating it (the estimate is kept in the
            diagnostics as ``estimated_temperature``).
    """

    method = "exponentiated-closed-form"

    energy: str | EnergyFamily | AbstractFeatureLibrary = "poly:3"
    ridge: float = 0.0
    seed: int = 0
    temperature: float | None = None

    def _family(self, dim: int) -> EnergyFamily:
        if isinstance(self.energy, AbstractFeatureLibrary):
            return EnergyFamily(type(self.energy).__name__, dim, self.energy, (), False)
        family = self.energy if isinstance(self.energy, EnergyFamily) else None
        family = family or parse_energy_spec(self.energy, dim)
        if not family.is_linear:
            raise ValueError(
                f"exponentiated-gradient fits need an energy linear in its parameters (poly, "
                f"rbf, fourier, …); {family.spec!r} has a network term, which is not supported "
                "for proportions yet"
            )
        return family

    def fit(self, data: Trajectories) -> ExponentiatedGradientClosedForm:
        if not isinstance(data, Trajectories):
            raise TypeError(
                f"exponentiated-gradient fits need trajectories of proportions, got "
                f"{type(data).__name__}"
            )
        if len(data.state_shape) != 1:
            raise ValueError(
                f"proportions must be vectors (N, T, d), got state shape {data.state_shape}"
            )
        start = time.perf_counter()
        states = data.observed_states()
        check_simplex(states, "trajectories (for --dynamics exponentiated)")
        x0, x1, h = data.transitions()
        x0 = x0 / x0.sum(axis=1, keepdims=True)  # within the tolerance: rounding only
        dy = centred_log_ratio(x1) - centred_log_ratio(x0)
        family = self._family(data.dim)
        library = family.library.adapt(states, seed=self.seed)
        eq = normal_equations(_CentredJacobians(library), x0, dy, h)
        sol = solve_normal_equations(eq, self.ridge)
        ss_res = residual_sum(eq, sol.theta)
        d = data.dim
        dof = max(x0.shape[0] * (d - 1) - sol.rank, 1)
        temperature = ss_res / (2.0 * dof)
        noise_free = ss_res <= NOISE_FREE_TOLERANCE * max(eq.sq_over_h, 1e-300)
        mean_v = eq.sum_dx / eq.sum_h
        ss_tot = eq.sq_over_h - eq.sum_h * float(mean_v @ mean_v)
        energy = shift_to_zero_min(FeatureEnergy(library, sol.theta), states)
        notes = []
        gauge = library.n_features - sol.rank
        if gauge:
            notes.append(
                f"{gauge} of the {library.n_features} feature directions are constant on the "
                "simplex or not seen by the data (the gauge): the minimum-norm representative "
                "is reported"
            )
        fixed = self.temperature
        dynamics = ExponentiatedGradient(
            temperature=float(fixed) if fixed is not None else
            0.0 if noise_free else float(temperature)
        )  # fmt: skip
        diagnostics = {
            "coordinates": "centred log-ratio clr(x) = log x − mean(log x)",
            "drift_r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "residual_scale": float(np.sqrt(ss_res / max(x0.shape[0] * (d - 1), 1))),
            "n_transitions": int(x0.shape[0]),
            "n_features": library.n_features,
            "rank": sol.rank,
            "condition_number": sol.condition,
            "noise_free": bool(noise_free),
            "notes": notes,
        }
        if fixed is not None:
            diagnostics.update(estimated_temperature=float(temperature), temperature_fixed=True)
        self.model_ = fitted_model(
            data,
            energy,
            dynamics=dynamics,
            energy_spec=family.spec,
            method=self.method,
            diagnostics=diagnostics,
            identifiability=_identifiability(bool(noise_free)),
            stop_reason="closed form: exact minimiser of the one-step log-ratio likelihood",
            fit_seconds=time.perf_counter() - start,
            states=states,
        )
        self.temperature_estimate_ = float(temperature)
        return self
