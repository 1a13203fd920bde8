"""State-dependent diffusion ``D(x)`` from trajectories, the constant-temperature test, and the
energy fitted with that diffusion — all closed forms.

**D(x)** (Kramers–Moyal second moment).  For ``dx = b dt + √(2D) dW`` the drift residual
``r_k = Δx_k − h_k b(x_k)`` of a step of length ``h`` has ``E[r rᵀ | x] = 2h D(x)(1 + O(h))``, so
the local estimator ``Y_k = r_k r_kᵀ/(2h_k)`` regressed on a feature library gives ``D(x)``: one
linear least squares per component of ``D`` (the *MSD* estimator of stochastic force
inference, Frishman & Ronceray, PRX 10, 021009 (2020), which regresses a local diffusion
estimator on basis functions; PyDaddy does the same with polynomials).  Two refinements:

* the step model is the Euler chain, as everywhere in ``iel``: its step covariance is exactly
  ``2hD(x_k)``.  Continuous-time data have ``E[r rᵀ | x] ≈ 2hD(1 + h tr J(x)/d)`` for
  ``J = ∂b/∂x`` (Itô–Taylor, constant ``D``): a curvature-dependent ``O(h)`` factor that is
  not corrected (it would bias Euler-chain data the other way) — the effect threshold of the
  test below is there so that it is not read as state-dependent noise;
* measurement noise (observed ``x + σ ε``): ``Y_k`` is replaced by the *Vestergaard* estimator
  on two consecutive increments, ``[r_k r_kᵀ + r_{k−1} r_{k−1}ᵀ]/(4h) + [r_k r_{k−1}ᵀ +
  r_{k−1} r_kᵀ]/(2h)`` at the state between them, whose ``σ²`` terms cancel (Vestergaard,
  Blainey & Flyvbjerg, PRE 89, 022726 (2014); SFI's ``diffusion_method='Vestergaard'``).

The fit is :class:`~iel.dynamics.PolynomialDiffusion`: a symmetric matrix linear in the
coefficients, projected to eigenvalues ``≥ floor`` (``1 %`` of the mean level) — positive
definite by construction, closed form, and the projection is inactive wherever the data are.
(A log-link fit would be positive without projection but is iterative, and cannot take the
Vestergaard estimator, whose local values can be negative.)

**The constant-temperature test.**  On the residuals of a fit, the Gaussian likelihood of the
steps ``r_k ~ N(0, 2h D(x_k))`` under ``D(x)`` (scalar, a polynomial of degree 2 by default)
against ``D = T̂·I``: ``LR = 2(ℓ₁ − ℓ₀)``, ``χ²`` with ``q − 1`` degrees of freedom (``q``
coefficients of ``D``).  A constant temperature is *rejected* when ``p < 10⁻³`` **and** the
fitted noise level varies by more than 20 % across the data (ratio of its 95th to 5th
percentile over the states ``> 1.2``): with 10⁵ steps a 2 % variation is significant but
changes nothing a user would act on.  ``ΔAIC = LR − 2(q − 1)`` is reported too.

**The energy with D(x).**  With ``D`` known the drift is still linear in ``E = θᵀφ``
(``G = ∇φᵀ``), and the Gaussian step likelihood (covariance ``2hD``) is a weighted least squares:

* mobility form ``b = −DGθ + ∇·D``: ``(Σ h GᵀDG) θ = −Σ Gᵀ(Δx − h∇·D)`` (``D⁻¹`` cancels);
* Itô form ``b = −Gθ``: ``(Σ h GᵀD⁻¹G) θ = −Σ GᵀD⁻¹Δx``.

The fit alternates twice: drift → ``D`` from its residuals → energy with ``D`` → ``D`` again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

from ...data.trajectories import Trajectories
from ...dynamics.diffusion_field import (
    DIFFUSION_KINDS,
    PolynomialDiffusion,
    component_matrices,
    n_components,
)
from ...dynamics.state_langevin import DRIFT_FORMS, StateLangevin
from ...energies.exp_quadratics import free_parameter_count
from ...energies.features import AbstractFeatureLibrary, FeatureEnergy
from ...energies.spec import EnergyFamily
from ...linear.normal_equations import NormalEquations, residual_sum, solve_normal_equations
from ...model import FittedModel
from ..base import (
    AbstractEstimator,
    fitted_model,
    identifiability_for_trajectories,
    shift_to_zero_min,
)
from .closed_form import OneStepClosedForm

TEST_LEVEL = 1e-3  # p-value below which the LR test is significant
TEST_EFFECT = 1.2  # and the noise level must vary by more than 20 % (95th/5th percentile)
TEST_DEGREE = 2
TEST_MAX_TRANSITIONS = 50_000
FLOOR_FRACTION = 0.01
CHUNK = 4096


# -- the local estimator -------------------------------------------------------------------
def _drift_of(model: FittedModel):
    """``b(x)`` of a fitted model, one state ``(d,) -> (d,)``."""
    field, dynamics = model.energy_module, model.dynamics
    if isinstance(dynamics, StateLangevin):
        return lambda x: dynamics.drift(field, x)
    return field.force_single


@eqx.filter_jit
def _residuals(drift, x0, dx, h):
    """``r = Δx − h b(x)``."""
    return dx - h[:, None] * jax.vmap(drift)(x0)


def trajectory_rows(data: Trajectories) -> np.ndarray:
    """The trajectory of each transition, in the order of :meth:`Trajectories.increments`."""
    per = np.maximum(data.observed.sum(axis=1) - 1, 0)
    return np.repeat(np.arange(data.n_trajectories), per)


def local_diffusion(
    data: Trajectories,
    drift,
    *,
    estimator: str = "increments",
    max_transitions: int | None = None,
    seed: int = 0,
):
    """The states ``x_k`` and local estimates ``Y_k ≈ D(x_k)`` (``(K, d, d)``) with the step
    lengths and the residuals (module docstring).  ``estimator``: ``"increments"``
    (``r rᵀ/2h``) or ``"vestergaard"`` (two consecutive increments, measurement noise)."""
    x0, dx, h = data.increments()
    rows = trajectory_rows(data)
    if max_transitions is not None and len(x0) > max_transitions:
        keep = np.sort(np.random.default_rng(seed).choice(len(x0), max_transitions, False))
        if estimator == "vestergaard":  # keep pairs of consecutive steps together
            keep = np.unique(np.concatenate([keep, np.minimum(keep + 1, len(x0) - 1)]))
        x0, dx, h, rows = x0[keep], dx[keep], h[keep], rows[keep]
    r = np.asarray(_residuals(drift, jnp.asarray(x0), jnp.asarray(dx), jnp.asarray(h)))
    if estimator == "increments":
        y = np.einsum("ki,kj->kij", r, r) / (2.0 * h[:, None, None])
        return x0, y, h, r
    if estimator != "vestergaard":
        raise ValueError(f"estimator must be 'increments' or 'vestergaard', got {estimator!r}")
    x1 = x0 + dx
    pair = (rows[1:] == rows[:-1]) & np.all(np.isclose(x1[:-1], x0[1:]), axis=1)
    a, b = r[:-1][pair], r[1:][pair]
    hh = 0.5 * (h[:-1] + h[1:])[pair][:, None, None]
    outer = np.einsum("ki,kj->kij", a, a) + np.einsum("ki,kj->kij", b, b)
    cross = np.einsum("ki,kj->kij", a, b)
    y = outer / (4.0 * hh) + (cross + np.transpose(cross, (0, 2, 1))) / (2.0 * hh)
    return x0[1:][pair], y, h[1:][pair], b


def fit_diffusion(
    states: np.ndarray, y: np.ndarray, kind: str = "scalar", degree: int = 2
) -> PolynomialDiffusion:
    """Least squares of the local estimates ``Y_k`` on monomials of the scaled states, per
    component of ``D`` (``kind``), projected to eigenvalues ``≥ 1 %`` of the mean level."""
    d = states.shape[-1]
    m = n_components(kind, d)
    centre = states.mean(axis=0)
    scale = np.where(states.std(axis=0) > 0, states.std(axis=0), 1.0)
    p = math.comb(d + degree, d)  # monomials of degree 0..degree in d variables
    skeleton = PolynomialDiffusion(kind, degree, np.zeros((p, m)), centre, scale, 1.0)
    psi = np.asarray(jax.vmap(skeleton.features)(jnp.asarray(states)))  # (K, p)
    basis = component_matrices(kind, d)  # (m, d, d)
    # the component c of Y: ⟨B_c, Y⟩/⟨B_c, B_c⟩ (the trace/d for scalar, entries else)
    targets = np.einsum("cij,kij->kc", basis, y) / np.einsum("cij,cij->c", basis, basis)
    theta, *_ = np.linalg.lstsq(psi, targets, rcond=None)
    level = float(np.mean(np.trace(y, axis1=1, axis2=2)) / d)
    floor = FLOOR_FRACTION * level if level > 0 else 1e-12
    return PolynomialDiffusion(kind, degree, theta, centre, scale, floor)


# -- the test ------------------------------------------------------------------------------
def _gaussian_loglik(r: np.ndarray, h: np.ndarray, cov: np.ndarray) -> float:
    """``Σ log N(r_k; 0, 2h_k cov_k)`` for ``cov`` ``(K, d, d)``."""
    d = r.shape[-1]
    sign, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("ki,ki->k", r, np.linalg.solve(cov, r[..., None])[..., 0])
    return float(-0.5 * np.sum(logdet + d * np.log(4 * np.pi * h) + quad / (2 * h)))


def constant_temperature_test(
    data: Trajectories,
    model: FittedModel,
    *,
    degree: int = TEST_DEGREE,
    kind: str = "scalar",
    seed: int = 0,
) -> dict:
    """Is one temperature enough for these steps?  (module docstring)

    Returns ``{"constant_temperature": bool, "constant_temperature_test": {…}}``: the verdict
    (``False``: rejected) and its numbers (LR statistic, degrees of freedom, p-value, ΔAIC,
    the noise level's 95th/5th percentile ratio over the states, the thresholds)."""
    states, y, h, r = local_diffusion(
        data, _drift_of(model), max_transitions=TEST_MAX_TRANSITIONS, seed=seed
    )
    d = states.shape[-1]
    fitted = fit_diffusion(states, y, kind, degree)
    t_hat = float(np.mean(np.trace(y, axis1=1, axis2=2)) / d)
    eye = np.broadcast_to(np.eye(d), (len(r), d, d))
    cov1 = np.asarray(fitted(states))
    l0 = _gaussian_loglik(r, h, t_hat * eye)
    l1 = _gaussian_loglik(r, h, cov1)
    lr = max(2.0 * (l1 - l0), 0.0)
    df = max(int(fitted.theta.size) - 1, 1)
    p_value = float(gammaincc(df / 2.0, lr / 2.0))
    level = np.trace(np.asarray(fitted(states)), axis1=1, axis2=2) / d
    low, high = np.quantile(level, [0.05, 0.95])
    ratio = float(high / low) if low > 0 else float("inf")
    rejected = p_value < TEST_LEVEL and ratio > TEST_EFFECT
    return {
        "constant_temperature": not rejected,
        "constant_temperature_test": {
            "lr_statistic": lr,
            "degrees_of_freedom": df,
            "p_value": p_value,
            "delta_aic": lr - 2.0 * df,
            "noise_level_ratio_95_5": ratio,
            "temperature": t_hat,
            "alternative": f"{kind} D(x), polynomial of degree {degree}",
            "n_transitions": len(r),
            "threshold": f"rejected when p < {TEST_LEVEL:g} and the noise level's 95th/5th "
            f"percentile ratio over the states > {TEST_EFFECT:g}",
        },
    }


def constant_temperature_entries(data: Trajectories, model: FittedModel, seed: int = 0) -> dict:
    """The test as diagnostics entries (with a note when rejected); ``None`` with a reason
    when it does not apply (noise-free steps, non-vector states)."""
    if len(data.state_shape) != 1:
        return {
            "constant_temperature": None,
            "constant_temperature_note": "not tested: the test needs vector states",
        }
    if model.diagnostics.get("noise_free") or model.temperature <= 0:
        return {
            "constant_temperature": None,
            "constant_temperature_note": "not tested: the steps are noise-free",
        }
    entries = constant_temperature_test(data, model, seed=seed)
    if not entries["constant_temperature"]:
        numbers = entries["constant_temperature_test"]
        entries["notes"] = (
            *model.diagnostics.notes,
            f"one temperature does not explain the noise: its level varies "
            f"{numbers['noise_level_ratio_95_5']:.1f}× across the states (p = "
            f"{numbers['p_value']:.1e}); fit the diffusion D(x) with --diffusion scalar "
            "(or diagonal, full; Python: iel.fit(data, diffusion='scalar'))",
        )
    return entries


# -- the energy with D(x) ------------------------------------------------------------------
@eqx.filter_jit
def _weighted_chunk(library, diffusion, form: str, x0, dx, h):
    def one(x, d_x, hk):
        jac = library.jacobian(x)  # (p, d) = Gᵀ
        dmat = diffusion.single(x)
        safe_h = jnp.where(hk > 0, hk, 1.0)
        if form == "mobility":
            target = d_x - hk * diffusion.divergence(x)
            gram = hk * jac @ dmat @ jac.T
            rhs = -jac @ target
            weighted = jnp.linalg.solve(dmat, target)
        else:
            target = d_x
            weighted = jnp.linalg.solve(dmat, target)
            gram = hk * jac @ jnp.linalg.solve(dmat, jac.T)
            rhs = -jac @ weighted
        sq = jnp.where(hk > 0, target @ weighted / safe_h, 0.0)
        return gram, rhs, sq

    gram, rhs, sq = jax.vmap(one)(x0, dx, h)
    return gram.sum(0), rhs.sum(0), sq.sum()


def weighted_normal_equations(
    library: AbstractFeatureLibrary, diffusion: PolynomialDiffusion, form: str, x0, dx, h
) -> NormalEquations:
    """The normal equations of the step likelihood with covariance ``2hD(x)`` (module
    docstring), accumulated ``CHUNK`` transitions at a time; ``sq_over_h`` is
    ``Σ ỹᵀD⁻¹ỹ/h`` so that :func:`residual_sum` is the whitened residual."""
    p = library.n_features
    gram, rhs, sq = np.zeros((p, p)), np.zeros(p), 0.0
    for lo in range(0, len(x0), CHUNK):
        parts = [jnp.asarray(a[lo : lo + CHUNK]) for a in (x0, dx, h)]
        if len(parts[0]) < CHUNK and len(x0) > CHUNK:  # pad: one compiled shape
            pad = CHUNK - len(parts[0])
            parts = [jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]))]) for a in parts]
            parts[0] = parts[0].at[-pad:].set(jnp.asarray(x0[:1]))
        g, b, s = _weighted_chunk(library, diffusion, form, *parts)
        gram, rhs, sq = gram + np.asarray(g), rhs + np.asarray(b), sq + float(s)
    d = x0.shape[-1]
    return NormalEquations(
        gram, rhs, sq, dx.sum(0), float(h.sum()), float(len(x0) * d), float(np.log(h).sum())
    )


def parse_diffusion(spec: str) -> tuple[str, int]:
    """``"scalar"``, ``"diagonal:3"``, … → ``(kind, degree)`` (degree 2 by default)."""
    kind, _, degree = spec.partition(":")
    if kind not in DIFFUSION_KINDS:
        raise ValueError(
            f"diffusion must be 'constant', 'auto' or KIND[:DEGREE] with KIND one of "
            f"{', '.join(DIFFUSION_KINDS)}, got {spec!r}"
        )
    try:
        value = int(degree) if degree else TEST_DEGREE
    except ValueError:
        raise ValueError(f"the diffusion degree must be an integer, got {degree!r}") from None
    if value < 0:
        raise ValueError(f"the diffusion degree must be ≥ 0, got {value}")
    return kind, value


@dataclass(eq=False)
class DiffusionClosedForm(AbstractEstimator):
    """One-step fit of a linear energy together with a state-dependent diffusion ``D(x)``.

    Args:
        energy: a linear energy spec or library (as :class:`OneStepClosedForm`).
        diffusion: ``"scalar"``, ``"diagonal"`` or ``"full"``, with ``":DEGREE"`` (default 2).
        form: ``"mobility"`` (``dx = [−D∇E + ∇·D] dt + √(2D) dW``, stationary law
            ``exp(−E)``; ``E`` in units of ``kT``) or ``"ito"`` (``dx = −∇E dt + √(2D) dW``).
        estimator: ``"increments"``, ``"vestergaard"`` (measurement noise) or ``"auto"``
            (Vestergaard when the constant-temperature fit's residuals are anticorrelated,
            ``ρ₁ < −0.2``).
        seed: seed for data-chosen parts of the library.
    """

    method = "onestep-closed-form-diffusion"

    energy: str | EnergyFamily | AbstractFeatureLibrary = "poly:4"
    diffusion: str = "scalar"
    form: str = "mobility"
    estimator: str = "auto"
    seed: int = 0

    def fit(self, data: Trajectories) -> DiffusionClosedForm:
        start = time.perf_counter()
        kind, degree = parse_diffusion(self.diffusion)
        if self.form not in DRIFT_FORMS:
            raise ValueError(f"form must be one of {', '.join(DRIFT_FORMS)}, got {self.form!r}")
        probe = OneStepClosedForm(self.energy, seed=self.seed)
        constant = probe.fit(data).model_
        library = probe._family(data.dim).library.adapt(data.observed_states(), seed=self.seed)
        if free_parameter_count(library):
            raise ValueError(
                f"the fit with D(x) takes energies linear in their parameters with no free "
                f"(searched) parameters; {self.energy!r} has some (use poly:K, rbf:M, fourier:K)"
            )
        rho = _lag_one(data, constant)
        estimator = self.estimator
        if estimator == "auto":
            estimator = "vestergaard" if rho < -0.2 else "increments"
        x0, dx, h = data.increments()
        states = data.observed_states()
        model = constant
        for _ in range(2):
            xs, y, *_ = local_diffusion(data, _drift_of(model), estimator=estimator)
            diffusion = fit_diffusion(xs, y, kind, degree)
            eq = weighted_normal_equations(library, diffusion, self.form, x0, dx, h)
            sol = solve_normal_equations(eq)
            energy = shift_to_zero_min(FeatureEnergy(library, sol.theta), states)
            level = diffusion.mean_level(states)
            dynamics = StateLangevin(
                diffusion, self.form, 1.0 if self.form == "mobility" else level
            )
            model = constant.replace(energy_module=energy, dynamics=dynamics)
        whitened = residual_sum(eq, sol.theta) / (2.0 * max(eq.n_rows - sol.rank, 1.0))
        level_on_data = np.trace(np.asarray(diffusion(states)), axis1=1, axis2=2) / data.dim
        notes = [
            f"noise from {kind} D(x) (degree {degree}, {estimator} estimator); drift form "
            f"{self.form}"
            + (
                ": E is in units of kT (stationary law exp(−E)), the temperature is absorbed into D"
                if self.form == "mobility"
                else ""
            )
        ]
        if sol.rank < library.n_features:
            notes.append(
                f"feature gradients are collinear on the data: rank {sol.rank} of "
                f"{library.n_features}; the minimum-norm solution is reported"
            )
        diagnostics = {
            "n_transitions": int(x0.shape[0]),
            "n_features": library.n_features,
            "rank": sol.rank,
            "condition_number": sol.condition,
            "noise_free": False,
            "diffusion": {
                "kind": kind,
                "degree": degree,
                "form": self.form,
                "estimator": estimator,
                "residual_lag_one": rho,
                "floor": diffusion.floor,
                "level_min": float(level_on_data.min()),
                "level_max": float(level_on_data.max()),
                "level_mean": float(level_on_data.mean()),
                # ≈ 1 when D(x) has the right size: Σ rᵀD⁻¹r/(2h) per coordinate
                "whitened_noise": float(whitened),
                "constant_temperature_fit": constant.temperature,
            },
            "notes": notes,
        }
        self.model_ = fitted_model(
            data,
            energy,
            dynamics=dynamics,
            energy_spec=constant.energy_spec,
            method=self.method,
            diagnostics=diagnostics,
            identifiability={
                **identifiability_for_trajectories(False),
                "diffusion": "D(x) on the visited states (a polynomial, floored at 1 % of its "
                "mean level where the fit dips below it)",
            },
            stop_reason="closed form: D(x) from the squared increments, then the exact "
            "minimiser of the step likelihood with covariance 2hD(x) (two rounds)",
            fit_seconds=time.perf_counter() - start,
            states=states,
        )
        return self


def _lag_one(data: Trajectories, model: FittedModel) -> float:
    """Lag-one correlation of the one-step residuals along the trajectories."""
    x0, dx, h = data.increments()
    r = dx - h[:, None] * np.asarray(model.force(x0))
    rows = trajectory_rows(data)
    same = rows[1:] == rows[:-1]
    a, b = r[:-1][same], r[1:][same]
    if a.size < 10:
        return 0.0
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))
