"""The bootstrap: percentile intervals by refitting resampled data (``iel fit --bootstrap B``).

The units resampled with replacement are the independent ones: whole trajectories (the steps
of one trajectory are dependent through its path), particles within each snapshot, samples,
end states.  Each of ``B`` resamples is refitted; the intervals are the ``2.5`` and ``97.5``
percentiles of the refitted coefficients, temperatures and energy differences
``E(x) − E(x*)`` on a grid (``x*``: the fitted model's observed state of lowest energy, the
gauge of :mod:`iel.estimators.uncertainty`); ``stderr`` is the standard deviation over
resamples.  Draws come from ``numpy.random.default_rng(seed)``: the same seed gives the same
intervals.

Closed-form fits of trajectories take a shortcut with the same result as refitting each
resample with the fitted library (and, for a selected formula, its terms) held fixed: the
normal equations of each trajectory are accumulated once
(:func:`~iel.linear.grouped.grouped_normal_equations`), a resample's are their sum weighted
by how often each trajectory was drawn, and all ``B`` systems are solved in one batched call.
Other fits are refitted one resample after another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ..data.populations import Endpoints, Samples, Snapshots
from ..data.trajectories import Trajectories
from ..energies.features import FeatureEnergy
from ..linear.grouped import grouped_normal_equations, resampled
from ..linear.uncertainty import LEVEL, linear_intervals
from ..model import FittedModel
from .uncertainty import GAUGE, anchor_state

GRID_POINTS = {1: 81, 2: 25}


def resample_data(data, rng: np.random.Generator):
    """One bootstrap resample of ``data``: trajectories, or particles within each snapshot,
    or samples / end states, drawn with replacement."""
    if isinstance(data, Trajectories):
        pick = rng.integers(0, data.n_trajectories, data.n_trajectories)
        mask = None if data.mask is None else data.mask[pick]
        return Trajectories(data.x[pick], t=data.t[pick], mask=mask)
    if isinstance(data, Snapshots):
        rows = []
        for time in np.unique(data.t):
            members = np.flatnonzero(data.t == time)
            rows.append(rng.choice(members, members.size, replace=True))
        rows = np.concatenate(rows)
        growth = None if data.growth_rate is None else data.growth_rate[rows]
        return Snapshots(data.x[rows], data.t[rows], growth_rate=growth,
                         same_particles=data.same_particles)  # fmt: skip
    if isinstance(data, (Samples, Endpoints)):
        pick = rng.integers(0, len(data.x), len(data.x))
        return type(data)(data.x[pick])
    raise TypeError(f"cannot bootstrap data of type {type(data).__name__}")


def energy_grid(model: FittedModel) -> np.ndarray | None:
    """The points where the band on ``E`` is reported: the data box on a regular grid in one
    or two dimensions (``None`` in more)."""
    d = model.data_low.shape[0]
    if d not in GRID_POINTS:
        return None
    axes = [np.linspace(lo, hi, GRID_POINTS[d]) for lo, hi in zip(model.data_low, model.data_high)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)


def _transition_trajectory(data: Trajectories) -> np.ndarray:
    """The trajectory each transition of ``data.increments()`` belongs to."""
    if data.mask is None:
        return np.repeat(np.arange(data.n_trajectories), data.n_times - 1)
    row, _, _ = data._pair_index()
    return np.asarray(row)


def bootstrap_uncertainty(
    data,
    model: FittedModel,
    n_resamples: int,
    *,
    seed: int = 0,
    refit: Callable[[Any], FittedModel] | None = None,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Percentile intervals of ``model`` (fitted to ``data``) from ``n_resamples`` resamples
    (module docstring), as the mapping of :mod:`iel.estimators.uncertainty`.  ``refit`` fits
    one resample (needed unless ``model`` is a closed-form feature energy of trajectories)."""
    if n_resamples < 2:
        raise ValueError(f"the bootstrap needs at least 2 resamples, got {n_resamples}")
    rng = np.random.default_rng(seed)
    energy = model.energy_module
    states = data.observed_states().reshape(-1, data.observed_states().shape[-1])
    anchor = anchor_state(energy, states) if model.is_gradient else None
    grid = energy_grid(model) if model.is_gradient else None
    closed = isinstance(energy, FeatureEnergy) and isinstance(data, Trajectories)
    if closed and "closed-form" in model.method:
        draws = _closed_form_draws(data, energy, n_resamples, rng, grid, anchor)
        how = "trajectories; closed form refitted with the library and terms held fixed"
    elif refit is None:
        raise ValueError(f"bootstrapping a {model.method} fit needs refit= (a function fitting "
                         "one resample)")  # fmt: skip
    else:
        draws = _refitted_draws(data, model, n_resamples, rng, refit, grid, anchor)
        how = f"{_unit(data)}; each resample refitted by {model.method}"
    tail = 100 * (1 - level) / 2
    out: dict[str, Any] = {
        "method": f"bootstrap: {n_resamples} resamples of {how}; percentile intervals",
        "level": level,
        "n_resamples": n_resamples,
        "seed": seed,
        "coefficients": [],
        "notes": [],
    }
    if draws["theta"] is not None:
        theta = draws["theta"]
        low, high = np.percentile(theta, [tail, 100 - tail], axis=0)
        out["coefficients"] = [
            {"term": n, "value": float(v), "stderr": float(s), "low": float(lo),
             "high": float(hi)}
            for n, v, s, lo, hi in zip(draws["terms"], draws["value"], theta.std(0, ddof=1),
                                       low, high)
        ]  # fmt: skip
        out["covariance"] = np.atleast_2d(np.cov(theta, rowvar=False)).tolist()
    temps = draws["temperature"]
    out["temperature"] = {
        "value": model.temperature,
        "low": float(np.percentile(temps, tail)),
        "high": float(np.percentile(temps, 100 - tail)),
    }
    if anchor is not None:
        out["anchor"] = anchor.tolist()
        out["gauge"] = GAUGE
    if grid is not None and draws["energy"] is not None:
        e_low, e_high = np.percentile(draws["energy"], [tail, 100 - tail], axis=0)
        out["energy_band"] = {"points": grid.tolist(), "low": e_low.tolist(),
                              "high": e_high.tolist(),
                              "std": draws["energy"].std(0, ddof=1).tolist()}  # fmt: skip
    if draws["failed"]:
        out["notes"].append(f"{draws['failed']} of {n_resamples} refits failed and were left out")
    return out


def _unit(data) -> str:
    if isinstance(data, Trajectories):
        return "trajectories"
    return "particles within each snapshot" if isinstance(data, Snapshots) else "states"


def _closed_form_draws(data, energy: FeatureEnergy, n_resamples, rng, grid, anchor) -> dict:
    library = energy.library
    support = np.flatnonzero(np.asarray(energy.theta) != 0)
    x0, dx, h = data.increments()
    groups = grouped_normal_equations(library, x0, dx, h, _transition_trajectory(data),
                                      data.n_trajectories)  # fmt: skip
    n = data.n_trajectories
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)
    eq = resampled(groups, counts)
    sub = np.ix_(support, support)
    fit = linear_intervals(eq.gram[(slice(None), *sub)], eq.rhs[:, support], eq.sq_over_h,
                           eq.n_rows)  # fmt: skip
    energies = None
    if grid is not None:
        phi = np.asarray(jax.vmap(library)(jax.device_put(grid)))[:, support]
        phi_anchor = np.asarray(library(jax.device_put(anchor)))[support]
        energies = fit.theta @ (phi - phi_anchor).T
    names = library.names()
    return {
        "terms": [names[i] for i in support],
        "value": np.asarray(energy.theta)[support],
        "theta": fit.theta,
        "temperature": fit.temperature,
        "energy": energies,
        "failed": 0,
    }


def _refitted_draws(data, model, n_resamples, rng, refit, grid, anchor) -> dict:
    energy = model.energy_module
    names = energy.library.names() if isinstance(energy, FeatureEnergy) else None
    thetas, temps, energies, failed = [], [], [], 0
    for _ in range(n_resamples):
        try:
            fitted = refit(resample_data(data, rng))
        except (ValueError, ArithmeticError):
            failed += 1
            continue
        temps.append(fitted.temperature)
        other = fitted.energy_module
        same = isinstance(other, FeatureEnergy) and names is not None
        if same and eqx.tree_equal(other.library, energy.library) is True:  # not re-placed
            thetas.append(np.asarray(other.theta))
        if grid is not None:
            values = np.asarray(fitted.energy(grid)) - float(fitted.energy(anchor))
            energies.append(values)
    if len(temps) < 2:
        raise ValueError(f"the bootstrap needs at least 2 successful refits, got {len(temps)}")
    theta = np.asarray(thetas) if names is not None and len(thetas) == len(temps) else None
    return {
        "terms": names,
        "value": None if theta is None else np.asarray(energy.theta),
        "theta": theta,
        "temperature": np.asarray(temps),
        "energy": np.asarray(energies) if energies else None,
        "failed": failed,
    }
