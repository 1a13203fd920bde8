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

from ...data.trajectories import Trajectories
from ...energies.base import SumEnergy
from ...energies.exp_quadratics import free_parameter_count
from ...energies.features import (
    AbstractFeatureLibrary,
    FeatureEnergy,
)
from ...energies.quadratic import Quadratic
from ...energies.spec import (
    EnergyFamily,
    parse_energy_spec,
)
from ...linear.normal_equations import (
    NormalEquations,
    normal_equations,
    residual_sum,
    solve_normal_equations,
)
from ...linear.processes import normal_equations_over_processes
from ...linear.varpro import refine_free_parameters
from ...mdl.codes import (
    Stats,
    null_code,
    two_part_linear,
)
from ...parallel.processes import check_same_on_all_processes, process_max, process_sum
from ..base import (
    AbstractEstimator,
    fitted_model,
    identifiability_for_trajectories,
    shift_to_zero_min,
    with_fixed_temperature,
)
from ..uncertainty import closed_form_uncertainty, uncertainty_with_noise_check


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


@dataclass(eq=False)
class OneStepClosedForm(AbstractEstimator):
    """Closed-form one-step fit of a linear energy family to trajectories.

    Args:
        energy: a spec string (``"poly:4"``, ``"poly:4+fourier:2"``, ``"rbf:50"``,
            ``"quadratic"``) or a feature library.
        ridge: Tikhonov weight on the Jacobi-scaled coefficients (0 = plain least squares).
        seed: seed for data-chosen parts of the library (RBF centres).
        temperature: fix ``T`` instead of estimating it (the estimate is kept in the
            diagnostics as ``estimated_temperature``); the coefficients do not depend on it.
    """

    method = "onestep-closed-form"

    energy: str | EnergyFamily | AbstractFeatureLibrary = "poly:4"
    ridge: float = 0.0
    seed: int = 0
    temperature: float | None = None

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
            raise TypeError(
                f"OneStepClosedForm fits trajectories, got {type(data).__name__} "
                "(trajectories on disk, a TrajectoryStore: StreamedClosedForm)"
            )
        if len(data.state_shape) != 1:
            raise ValueError(
                f"the closed form needs vector states (N, T, d), got state shape {data.state_shape}"
            )
        start = time.perf_counter()
        x0, dx, h = data.increments()
        states = data.observed_states()
        family = self._family(data.dim)
        library = family.library.adapt(states, seed=self.seed)
        # free parameters (exponentiated quadratics): variable projection, then the amplitudes
        library = refine_free_parameters(library, states, x0, dx, h, weights, seed=self.seed)
        # several processes (iel.distributed): each holds a share of the transitions; the
        # features must agree and the sums add up
        check_same_on_all_processes(lambda: repr(library.config()), "the features")
        eq = normal_equations_over_processes(normal_equations(library, x0, dx, h, weights))
        n_transitions = int(process_sum(x0.shape[0]))
        scale = process_max(float(np.max(np.abs(states))) if states.size else 0.0)
        model = self._model(data, family, library, eq, states, n_transitions, scale, start,
                            weights)  # fmt: skip
        self.model_ = with_fixed_temperature(model, self.temperature)
        return self

    def _model(self, data, family: EnergyFamily, library: AbstractFeatureLibrary,
               eq: NormalEquations, states: np.ndarray, n_transitions: int, scale: float,
               start: float, weights: np.ndarray | None = None):  # fmt: skip
        """The fitted model from the normal equations (sums over every transition), with
        ``states`` (all observed states, or a sample) fixing the additive constant, and
        ``scale`` (``max |x|`` over the data) the code's precision ``1e-8·scale``; the
        temperature is not yet fixed."""
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
            "n_transitions": n_transitions,
            "n_features": library.n_features,
            "rank": sol.rank,
            "condition_number": sol.condition,
            "noise_free": bool(noise_free),
            "notes": notes,
        }
        epsilon = 1e-8 * (scale or 1.0)  # as iel.selection: 1e-8 of max |x|
        diagnostics.update(_code_lengths(eq, sol.theta, data.dim, epsilon, library))
        identifiability = identifiability_for_trajectories(noise_free)
        model = fitted_model(
            data,
            out_energy,
            temperature=0.0 if noise_free else float(temperature),
            energy_spec=family.spec,
            method=self.method,
            diagnostics=diagnostics,
            identifiability=identifiability,
            stop_reason="closed form: exact minimiser of the one-step likelihood",
            fit_seconds=time.perf_counter() - start,
            states=states,
        )
        caveats = _interval_caveats(weights, self.ridge, out_energy is not energy, library)
        uncertainty = closed_form_uncertainty(eq, energy, states, notes=caveats)
        if isinstance(data, Trajectories):  # the lag-one check reads the residuals again
            uncertainty = uncertainty_with_noise_check(uncertainty, data, model)
        else:
            uncertainty = {**uncertainty, "notes": [
                *uncertainty["notes"], "streamed data: the lag-one check for measurement noise "
                "(a second pass over the residuals) was not run"]}  # fmt: skip
        model = model.replace(uncertainty=uncertainty)
        self.temperature_estimate_ = float(temperature)
        return model


def _interval_caveats(weights, ridge: float, converted: bool, library) -> list[str]:
    """What the closed-form intervals (:mod:`iel.linear.uncertainty`) do not account for."""
    notes = []
    if weights is not None:
        notes.append("weighted fit: the intervals treat the weights as counts of transitions")
    if ridge > 0:
        notes.append(f"ridge {ridge:g}: the intervals are those of the unpenalised fit")
    if converted:
        notes.append("intervals are on the polynomial's terms; the formula shows it as a "
                     "quadratic form (centre and precision)")  # fmt: skip
    if free_parameter_count(library):
        notes.append("intervals are conditional on the fitted free parameters (frequencies, "
                     "centres) of the library")  # fmt: skip
    return notes


def _code_lengths(
    eq: NormalEquations, theta: np.ndarray, d: int, epsilon: float, library=None
) -> dict:
    """Two-part code of the dense fit and the null code, in bits (see iel.selection.codes);
    free parameters of ``library`` (variable projection) are coded as in ``bic_code``."""

    stats = Stats(eq.gram, eq.rhs, eq.sq_over_h, eq.n_rows, d * eq.sum_log_h)
    h_mean = eq.sum_h * d / max(eq.n_rows, 1e-300)  # Σ w h / Σ w
    active = np.flatnonzero(theta != 0)
    free = 0 if library is None else free_parameter_count(library)
    code = two_part_linear(stats, active, theta[active], n_library=0, epsilon=epsilon,
                           h_mean=h_mean, free_parameters=free)  # fmt: skip
    return {
        "code_length_bits": code.total,
        "null_code_bits": null_code(stats, epsilon, h_mean).total,
        "code_epsilon": epsilon,
    }


def warm_started_energy(
    spec: str, dim: int, states: np.ndarray, key, seed: int, data: Trajectories | None
):
    """An initial energy of family ``spec`` on ``R^dim``: data-chosen features placed on
    ``states``, networks initialised from ``key``, and the linear part set to the closed-form
    one-step fit of ``data`` when given.  Returns ``(energy, spec)``."""

    family = parse_energy_spec(spec, dim)
    if family.library is not None:
        family = family.with_library(family.library.adapt(states, seed))
    energy = family.build(key, states)
    if family.library is not None and data is not None:
        linear = OneStepClosedForm(family.library).fit(data).energy_
        if isinstance(energy, SumEnergy):
            energy = eqx.tree_at(lambda e: e.terms[0], energy, linear)
        else:
            energy = linear
    return energy, family.spec
