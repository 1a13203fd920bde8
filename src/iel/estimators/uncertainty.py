"""``model.uncertainty``: standard errors and intervals of a fit, and the band on ``E(x)``.

Closed-form (linear) one-step fits get exact intervals from their normal equations
(:mod:`iel.linear.uncertainty`: ``Cov θ̂ = 2T̂ A⁺``, Student-t intervals with the residual
degrees of freedom, the scaled χ² interval on ``T``).  Other fits get percentile intervals from
the bootstrap (:mod:`iel.estimators.bootstrap`).  Both are kept as one JSON-ready mapping:

* ``coefficients``: ``[{term, value, stderr, low, high}]`` by library term (the names in
  :meth:`~iel.energies.FeatureEnergy.formula`); a NaN ``stderr`` marks a term the data do not
  identify;
* ``temperature``: ``{value, low, high}``;
* ``level`` (0.95), ``method``, ``notes``, and for the band on ``E``: ``covariance`` (of the
  listed terms), ``anchor`` (the observed state of lowest fitted energy) and ``gauge``.

The band is the standard deviation of ``E(x) − E(x*)`` at the anchor ``x*``: the additive
constant of ``E`` is not identified, so the band is of energy differences from the minimum
the data show (zero there, growing where the data are sparse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from ..data.trajectories import Trajectories
from ..energies.features import FeatureEnergy
from ..linear.normal_equations import NormalEquations, normal_equations
from ..linear.uncertainty import LEVEL, energy_std, linear_intervals
from ..model import FittedModel

GAUGE = "E(x) − E(x*), x* the observed state of lowest fitted energy (the band is 0 there)"
# residuals this anticorrelated at lag one are measurement noise (auto's rollout rule)
NOISY_LAG_ONE = -0.2
MAX_RESIDUALS = 200_000  # transitions the lag-one check and the gauge point look at, at most


def lag_one_correlation(
    data: Trajectories, model: FittedModel, max_transitions: int = MAX_RESIDUALS
) -> float:
    """Correlation of consecutive one-step residuals ``Δx − h F(x)`` along trajectories:
    0 for Langevin noise, −½ for pure measurement noise, positive for a smooth misfit.

    Above ``max_transitions`` it is measured on a fixed random set of whole trajectories
    (and their leading steps when one trajectory alone is longer): the correlation of
    ``2·10⁵`` residual pairs has a standard error of about ``0.002``, and the force is not
    evaluated on every state of a large data set a second time."""
    x, obs, t = data.x, data.observed, data.t
    n, steps = obs.shape
    if n * (steps - 1) > max_transitions:
        keep = max(max_transitions // (steps - 1), 1)
        rows = np.sort(np.random.default_rng(0).choice(n, keep, replace=False))
        span = min(steps, max_transitions + 1)
        x, obs, t = x[rows, :span], obs[rows, :span], t[rows, :span]
    drift = np.asarray(model.force(np.nan_to_num(x[:, :-1])))
    resid = np.diff(x, axis=1) - drift * np.diff(t, axis=1)[..., None]
    both = obs[:, :-2] & obs[:, 1:-1] & obs[:, 2:]
    a, b = resid[:, :-1][both], resid[:, 1:][both]
    if a.size < 10:
        return 0.0
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def anchor_state(energy, states: np.ndarray) -> np.ndarray:
    """The observed state of lowest energy (the gauge point of the band on ``E``); of a fixed
    random sample of ``MAX_RESIDUALS`` states when there are more."""
    flat = np.asarray(states, dtype=float).reshape(-1, states.shape[-1])
    flat = flat[np.all(np.isfinite(flat), axis=1)]
    if len(flat) > MAX_RESIDUALS:  # a gauge point: any fixed state serves; the lowest of a sample
        flat = flat[np.random.default_rng(0).choice(len(flat), MAX_RESIDUALS, replace=False)]
    values = np.asarray(energy.energy(flat))  # compiled blocks: no program per size
    return flat[int(np.argmin(values))]


def closed_form_uncertainty(
    eq: NormalEquations,
    energy: FeatureEnergy,
    states: np.ndarray,
    *,
    support: Sequence[int] | None = None,
    notes: Sequence[str] = (),
    level: float = LEVEL,
) -> dict[str, Any]:
    """The uncertainty mapping (module docstring) of a closed-form fit with normal equations
    ``eq`` and fitted ``energy``; ``support``: the terms estimated (a selected sparse formula;
    default all), the others being fixed at 0."""
    names = energy.library.names()
    support = np.arange(len(names)) if support is None else np.asarray(support, dtype=int)
    gram = eq.gram[np.ix_(support, support)]
    fit = linear_intervals(gram, eq.rhs[support], eq.sq_over_h, eq.n_rows, level=level)
    coefficients = [
        {"term": names[i], "value": float(v), "stderr": float(s), "low": float(lo),
         "high": float(hi)}
        for i, v, s, lo, hi in zip(support, fit.theta, fit.stderr, fit.low, fit.high)
    ]  # fmt: skip
    notes = list(notes)
    if not np.all(np.isfinite(fit.stderr)):
        unidentified = [names[i] for i, s in zip(support, fit.stderr) if not np.isfinite(s)]
        notes.append(f"not identified by these data (stderr NaN): {unidentified}")
    return {
        "method": "closed form: Cov θ = 2T̂·A⁺ (Langevin increments); Student-t intervals with "
        f"{fit.dof:.0f} residual degrees of freedom; scaled χ² interval on T",
        "level": level,
        "coefficients": coefficients,
        "temperature": {
            "value": float(fit.temperature),
            "low": float(fit.temperature_low),
            "high": float(fit.temperature_high),
        },
        "dof": float(fit.dof),
        "covariance": fit.covariance.tolist(),
        "anchor": anchor_state(energy, states).tolist(),
        "gauge": GAUGE,
        "notes": notes,
    }


def with_closed_form_uncertainty(model: FittedModel, data: Trajectories) -> FittedModel:
    """``model`` (a one-step closed-form fit of ``data`` with a :class:`FeatureEnergy`, dense or
    a selected sparse formula) with its :attr:`~iel.model.FittedModel.uncertainty`; models of
    other energies come back unchanged.  Intervals of a selected formula are conditional on its
    support (the selection is not redone), which the notes say."""
    energy = model.energy_module
    if not isinstance(energy, FeatureEnergy) or not isinstance(data, Trajectories):
        return model
    x0, dx, h = data.increments()
    eq = normal_equations(energy.library, x0, dx, h)
    support = np.flatnonzero(np.asarray(energy.theta) != 0)
    notes = []
    if len(support) < energy.library.n_features:
        notes.append(
            "intervals are conditional on the selected terms (the selection of the formula is "
            "not part of them; --bootstrap does not redo it either)"
        )
    uncertainty = closed_form_uncertainty(
        eq, energy, data.observed_states(), support=support, notes=notes
    )
    return model.replace(uncertainty=uncertainty_with_noise_check(uncertainty, data, model))


def uncertainty_with_noise_check(
    uncertainty: dict[str, Any], data: Trajectories, model: FittedModel
) -> dict[str, Any]:
    """``uncertainty`` with a note when the one-step residuals are strongly anticorrelated at
    lag one (measurement noise: Euler differences then mix noise into the drift and the
    closed-form intervals are too narrow and off-centre)."""
    if model.temperature <= 0:
        return uncertainty
    rho = lag_one_correlation(data, model)
    uncertainty = {**uncertainty, "lag_one_correlation": rho}
    if rho < NOISY_LAG_ONE:
        uncertainty["notes"] = [
            *uncertainty["notes"],
            f"one-step residuals are anticorrelated at lag one (ρ₁ = {rho:.2f}): the states "
            "carry measurement noise, which the closed-form intervals do not model (they are "
            "too narrow); use a rollout fit with --bootstrap",
        ]
    return uncertainty


def energy_band(model: FittedModel, x: np.ndarray) -> np.ndarray | None:
    """Standard deviation of ``E(x) − E(x*)`` (module docstring) on ``x`` (``(..., d)``) from
    the coefficient covariance in ``model.uncertainty``; ``None`` when the model carries none
    (not a closed-form fit of a feature energy)."""
    unc = model.uncertainty
    if not unc or "covariance" not in unc:
        return None
    energy = model.energy_module
    if not isinstance(energy, FeatureEnergy):
        return None
    names = energy.library.names()
    index = {n: i for i, n in enumerate(names)}
    support = [index[c["term"]] for c in unc["coefficients"]]
    x = np.asarray(x, dtype=float)
    flat = jax.device_put(x.reshape(-1, x.shape[-1]))
    features = np.asarray(jax.vmap(energy.library)(flat))[:, support]
    anchor = np.asarray(energy.library(jax.device_put(np.asarray(unc["anchor"]))))[support]
    std = energy_std(features, anchor, np.asarray(unc["covariance"], dtype=float))
    return std.reshape(x.shape[:-1])


def coefficient_table(uncertainty: Mapping[str, Any]) -> list[tuple]:
    """``(term, value, stderr, low, high)`` rows of an uncertainty mapping."""
    return [
        (c["term"], c["value"], c["stderr"], c["low"], c["high"])
        for c in uncertainty.get("coefficients", [])
    ]
