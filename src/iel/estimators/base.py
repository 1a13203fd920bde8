"""What every estimator shares: the fit contract and the statements of identifiability.

Estimators follow the scikit-learn contract: ``__init__`` stores settings unchanged and does no
work; ``fit(data)`` returns ``self``; learned results end in ``_`` (``model_``, ``energy_``,
``temperature_``); refitting discards the previous fit.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.io import Data
from ..data.populations import Snapshots
from ..data.trajectories import Trajectories
from ..dynamics import AbstractDynamics
from ..energies.base import AbstractEnergy, AbstractForceField, ShiftedEnergy
from ..model import FittedModel, observed_dynamics
from ..parallel.processes import process_max, process_min, same_on_all_processes

CONSTANT_CONVENTION = "E is fixed up to an additive constant; it is shifted so min over data = 0"


def identifiability_for_trajectories(noise_free: bool) -> dict[str, str]:
    """THEORY §2: what paired observations determine."""
    if noise_free:
        return {
            "energy": "η·E up to an additive constant: noise-free steps determine only the step "
            "Δx = −η∇E, so E is reported in units of the stated time step (dx/dt = −∇E)",
            "temperature": "zero: no noise was found in the steps (residuals at round-off)",
            "gradient_region": "∇E is determined only where the data go",
            "constant": CONSTANT_CONVENTION,
        }
    return {
        "energy": "E up to an additive constant, in units where dx/dt = −∇E",
        "temperature": "T from the quadratic variation of the increments",
        "gradient_region": "∇E is determined only where the data go",
        "constant": CONSTANT_CONVENTION,
    }


class AbstractEstimator(abc.ABC):
    """``fit(data) -> self`` with ``model_`` a :class:`~iel.model.FittedModel`."""

    model_: FittedModel

    @abc.abstractmethod
    def fit(self, data: Data) -> AbstractEstimator: ...

    @property
    def energy_(self) -> AbstractEnergy:
        return self.model_.energy_module

    @property
    def temperature_(self) -> float:
        return self.model_.temperature


def _min_energy(energy: AbstractEnergy, states: np.ndarray) -> float:
    """``min E`` over ``states``, evaluated by :meth:`~iel.energies.AbstractEnergy.energy` in
    its compiled blocks of fixed rows: one program per energy structure whatever the number
    of states (a program per number of states compiled anew for every data set and every
    fit of another size), memory bounded by the block."""
    return float(np.min(np.asarray(energy.energy(states))))


def shift_to_zero_min(energy: AbstractEnergy, states: np.ndarray) -> AbstractEnergy:
    """Fix the additive constant so that ``min`` of ``E`` over ``states`` is 0.

    Energies with an ``offset`` array (feature energies, quadratics) have it set; others are
    wrapped in a :class:`~iel.energies.base.ShiftedEnergy` with a fixed shift.
    """
    states = np.asarray(states)
    if isinstance(getattr(energy, "offset", None), jax.Array):
        energy = eqx.tree_at(lambda e: e.offset, energy, jnp.zeros(()))
        lowest = process_min(_min_energy(energy, states))  # (over all processes' data)
        lowest = jnp.asarray(lowest, dtype=states.dtype)
        return eqx.tree_at(lambda e: e.offset, energy, -lowest)
    if isinstance(energy, ShiftedEnergy):
        energy = energy.base
    return ShiftedEnergy(energy, -float(process_min(_min_energy(energy, states))))


@jax.jit
def _range(flat: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.min(flat, axis=0), jnp.max(flat, axis=0)


def data_range(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate ``(min, max)`` of the observed states."""
    low, high = _range(jax.device_put(states.reshape(-1, states.shape[-1])))
    return process_min(np.asarray(low)), process_max(np.asarray(high))


def typical_step(data) -> float | None:
    """The median time between consecutive observations (trajectories) or snapshots: the
    default step of a fitted model's simulation; ``None`` for data that carry no time."""
    if isinstance(data, Trajectories):
        steps = data.time_steps()
    elif isinstance(data, Snapshots):
        steps = np.diff(np.asarray(data.times, dtype=float))
    else:
        return None
    # (several processes: process 0's median, the same on a regular time grid)
    return same_on_all_processes(float(np.median(steps)) if len(steps) else None)


def with_fixed_temperature(model: FittedModel, temperature: float | None) -> FittedModel:
    """``model`` with the temperature the caller fixed (``None``: as fitted); the fitted value
    stays in the diagnostics as ``estimated_temperature``."""
    if temperature is None:
        return model
    return model.replace(dynamics=observed_dynamics(float(temperature))).with_diagnostics(
        estimated_temperature=model.temperature, temperature_fixed=True
    )


def check_finite_fit(energy: AbstractForceField, temperature: float, method: str) -> None:
    """Refuse a fit whose parameters or temperature came out NaN or inf (a closed form on data
    too large for its features, a network that diverged from its first step): a model that
    cannot be evaluated is an error, not a result."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(energy, eqx.is_inexact_array))
    total = sum(int(np.size(leaf)) for leaf in leaves)
    bad = sum(int(np.size(leaf) - np.count_nonzero(np.isfinite(leaf))) for leaf in leaves)
    if bad or not np.isfinite(temperature):
        what = f"{bad} of its {total} parameters" if bad else f"its temperature ({temperature})"
        raise ValueError(
            f"the {method} fit produced non-finite values: {what} are NaN or inf. The data may "
            "be too large or badly scaled for this family (rescale them, add a ridge, or "
            "choose a smaller family), or an iterative fit diverged (lower its learning rate)"
        )


def fitted_model(
    data: Data,
    energy: AbstractForceField,
    *,
    temperature: float = 0.0,
    dynamics: AbstractDynamics | None = None,
    states: np.ndarray | None = None,
    **fields: Any,
) -> FittedModel:
    """The :class:`FittedModel` of a fit of ``data``: its kind, its time step
    (:func:`typical_step`) and the range of ``states`` (default: the observed states), with
    the dynamics the fit assumed (default :func:`~iel.model.observed_dynamics` of
    ``temperature``); ``fields`` are the model's other fields (spec, method, diagnostics, …)."""
    check_finite_fit(energy, temperature, fields.get("method", "the"))
    low, high = data_range(data.observed_states() if states is None else states)
    return FittedModel(
        energy_module=energy,
        dynamics=observed_dynamics(temperature) if dynamics is None else dynamics,
        data_kind=data.kind,
        step_size=typical_step(data),
        data_low=low,
        data_high=high,
        **fields,
    )
