"""The fitted model every estimator returns, and its file format.

A model is read-only: what a fit learned (the energy), the dynamics it assumed (with the
temperature), what it measured about itself (:class:`~iel.diagnostics.Diagnostics`) and what
the data identify.  Changing one part makes a new model (:meth:`FittedModel.replace`).

A model directory holds ``model.json`` (the energy's structure, the dynamics and the scalar
results) and ``model.npz`` (the arrays, read with ``allow_pickle=False``): loading runs no
code.  ``report.json`` is a human- and machine-readable summary written beside them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array, ArrayLike
from .data.files import staged_directory
from .data.trajectories import Trajectories
from .diagnostics import Diagnostics, FrozenMapping
from .dynamics import (
    AbstractDynamics,
    GradientDescent,
    GradientFlow,
    Langevin,
    dynamics_from_description,
    simulate,
)
from .energies.base import AbstractEnergy, AbstractForceField, field_from_config

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# what model.json keeps of the report (beside the energy's structure)
SAVED_FROM_REPORT = (
    "temperature", "energy_spec", "method", "data_kind", "dynamics", "time_convention",
    "step_size", "diagnostics", "identifiability", "history", "stop_reason", "fit_seconds",
    "seed", "environment", "uncertainty",
)  # fmt: skip  # version 1: no dynamics saved; it follows from T and the data kind
# (seed and environment came later within version 2: a folder without them still loads)
MODEL_JSON = "model.json"
MODEL_ARRAYS = "model.npz"
REPORT_JSON = "report.json"
MODEL_FILES = (MODEL_JSON, MODEL_ARRAYS, REPORT_JSON)
# the distributions whose versions decide the numbers a fit gives (POT: optional)
RECORDED_PACKAGES = ("iel", "jax", "jaxlib", "equinox", "optax", "numpy", "POT")


def software_environment() -> dict[str, Any]:
    """What a fit ran on: the versions of :data:`RECORDED_PACKAGES` (``"missing"`` for one not
    installed), JAX's backend and devices, and whether 64-bit floats are on."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    devices = jax.devices()
    return {
        "versions": versions,
        "jax_backend": jax.default_backend(),
        "jax_devices": sorted({f"{d.platform}:{d.device_kind}" for d in devices}),
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
    }


def observed_dynamics(temperature: float) -> AbstractDynamics:
    """The dynamics a fit of timed data assumes: gradient flow ``dx/dt = −∇E(x)`` when the
    steps are noise-free (``T = 0``), overdamped Langevin ``dx = −∇E dt + √(2T) dW`` else."""
    return Langevin(float(temperature)) if temperature > 0 else GradientFlow()


NO_TIME = {
    "samples": "none: samples carry no time; the model is E/T",
    "endpoints": "none: end states carry no time; E is fixed up to an increasing "
    "transformation by where descent ends, and its scale by the descent steps",
}


@dataclass(frozen=True)
class FittedModel:
    """A learned energy with everything needed to use, judge and reproduce it.

    Attributes:
        energy_module: the learned :class:`~iel.energies.AbstractEnergy` (Equinox module).
        dynamics: the dynamics the fit assumed (:class:`~iel.dynamics.Langevin` with the
            estimated or fixed temperature, :class:`~iel.dynamics.GradientFlow` for
            noise-free steps, :class:`~iel.dynamics.GradientDescent` for end states); the one
            :meth:`simulate` runs.
        energy_spec: the family it was fitted in (``"poly:4"``, ``"mlp:64x64"``, …).
        method: the estimator (``"onestep-closed-form"``, …).
        data_kind: ``"trajectories"``, ``"snapshots"``, ``"samples"`` or ``"endpoints"``.
        diagnostics: fit quality, choices and notes (:class:`~iel.diagnostics.Diagnostics`;
            a mapping is converted).
        identifiability: what these data can and cannot determine.
        data_low, data_high: per-coordinate range of the observed states.
        history: loss curves and the like (empty for closed forms).
        stop_reason: why the fit stopped.
        fit_seconds: wall time of the fit.
        starts: ``(M, d)`` the starts recovered for end states (end-state fits only; each is
            known only up to its basin), else ``None``.
        step_size: the data's typical time step (or the descent step of end states): the
            default ``dt`` of :meth:`simulate`; ``None`` where the data carry no time.
        seed: the random seed the fit was given (``None`` where it was not recorded).
        environment: the software the fit ran on (:func:`software_environment`), recorded by
            :func:`iel.fit`; ``None`` where it was not recorded (the report then gives the
            environment that wrote it).
        uncertainty: standard errors and 95 % intervals (``coefficients``: ``[{term, value,
            stderr, low, high}]``, ``temperature``: ``{value, low, high}``; see
            :mod:`iel.estimators.uncertainty`); ``None`` where none was computed.
    """

    energy_module: AbstractForceField
    dynamics: AbstractDynamics
    energy_spec: str
    method: str
    data_kind: str
    diagnostics: Diagnostics
    identifiability: Mapping[str, str]
    data_low: np.ndarray
    data_high: np.ndarray
    history: Mapping[str, list[float]] = field(default_factory=dict)
    stop_reason: str = ""
    fit_seconds: float = 0.0
    starts: np.ndarray | None = None
    step_size: float | None = None
    seed: int | None = None
    environment: Mapping[str, Any] | None = None
    uncertainty: Mapping[str, Any] | None = None

    def __post_init__(self):
        if not isinstance(self.dynamics, AbstractDynamics):
            raise TypeError(
                f"dynamics must be an iel dynamics object (Langevin, GradientFlow, …), got "
                f"{type(self.dynamics).__name__}"
            )
        object.__setattr__(self, "diagnostics", Diagnostics.of(self.diagnostics))
        object.__setattr__(self, "identifiability", FrozenMapping(self.identifiability))
        object.__setattr__(self, "history", FrozenMapping(self.history))
        if self.environment is not None:
            object.__setattr__(self, "environment", FrozenMapping(self.environment))
        if self.uncertainty is not None:
            object.__setattr__(self, "uncertainty", FrozenMapping(self.uncertainty))

    # -- new models from this one ----------------------------------------------------------
    def replace(self, **changes: Any) -> FittedModel:
        """A copy with the given fields changed (the model itself never changes)."""
        return dataclasses.replace(self, **changes)

    def with_diagnostics(self, **entries: Any) -> FittedModel:
        """A copy whose diagnostics have ``entries`` set."""
        return self.replace(diagnostics=self.diagnostics.updated(**entries))

    def with_notes(self, *notes: str) -> FittedModel:
        """A copy whose diagnostics carry ``notes`` too."""
        return self.replace(diagnostics=self.diagnostics.noted(*notes))

    # -- the dynamics --------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """``T`` of the dynamics (0 for noise-free descent)."""
        return float(getattr(self.dynamics, "temperature", 0.0))

    def diffusion(self, x: ArrayLike) -> Array:
        """The diffusion tensor ``D(x)`` on states ``(..., d)``: ``(..., d, d)``.  Estimated
        (``iel.fit(..., diffusion="scalar")``) it is the fitted ``D(x)``; else the constant
        ``T·I`` of the one temperature (zero for noise-free descent)."""
        x = jnp.asarray(x, dtype=float)
        field = getattr(self.dynamics, "diffusion", None)
        if field is not None:
            return field(x)
        d = x.shape[-1]
        return jnp.broadcast_to(self.temperature * jnp.eye(d), (*x.shape[:-1], d, d))

    @property
    def time_convention(self) -> str:
        """How ``E`` relates to time in the data."""
        if self.data_kind in NO_TIME:
            return NO_TIME[self.data_kind]
        return f"{self.dynamics.equation(self.is_gradient)}; t in the units of the data"

    def simulate(
        self, x0: ArrayLike, steps: int, seed: int = 0, *, dt: float | None = None,
        save_every: int = 1,
    ) -> Trajectories:  # fmt: skip
        """Run the fitted dynamics from ``x0`` (``(N, d)`` or one state) for ``steps`` steps.

        ``dt`` defaults to the data's typical step (:attr:`step_size`).  Stops with
        :class:`~iel.dynamics.SimulationDivergedError` (keeping what was computed) when a
        state becomes non-finite."""
        if dt is None:
            if self.step_size is None:
                raise ValueError(
                    f"these data ({self.data_kind}) carry no time step: pass dt= to simulate"
                )
            dt = self.step_size
        key = jax.random.PRNGKey(seed)
        x0 = jnp.asarray(x0, dtype=float)
        return simulate(self.energy_module, self.dynamics, x0, steps, key, dt,
                        save_every=save_every)  # fmt: skip

    # -- using the energy ------------------------------------------------------------------
    @property
    def is_gradient(self) -> bool:
        """False for non-gradient drift models (fitted as alternatives to an energy)."""
        return isinstance(self.energy_module, AbstractEnergy)

    def _energy_module(self) -> AbstractEnergy:
        if not self.is_gradient:
            raise TypeError("this model is a non-gradient drift F(x): it has no energy")
        return self.energy_module

    def energy(self, x: ArrayLike) -> Array:
        """``E(x)`` on ``(..., d)``; additive constant fixed so ``min`` over the data is 0."""
        return self._energy_module().energy(jnp.asarray(x, dtype=float))

    def grad(self, x: ArrayLike) -> Array:
        """``∇E(x)`` on ``(..., d)``."""
        return self._energy_module().gradient(jnp.asarray(x, dtype=float))

    def force(self, x: ArrayLike) -> Array:
        """The drift ``−∇E(x)`` (``dx/dt`` without noise); for drift models their ``F(x)``."""
        return self.energy_module.force(jnp.asarray(x, dtype=float))

    @property
    def formula(self) -> str:
        if not self.is_gradient:
            return f"F(x) = {type(self.energy_module).__name__}(x) (non-gradient drift)"
        return self.energy_module.formula()

    @property
    def n_parameters(self) -> int:
        """Number of learned scalar parameters of the energy: the additive constant is not
        one, and for feature energies only active (non-zero) terms count."""
        theta = getattr(self.energy_module, "theta", None)
        if isinstance(theta, jax.Array):
            return int(np.count_nonzero(np.asarray(theta)))
        total = 0
        for leaf in jax.tree_util.tree_leaves(eqx.filter(self.energy_module, eqx.is_array)):
            total += int(np.size(leaf))
        offset = getattr(self.energy_module, "offset", None)
        return total - (1 if offset is not None else 0)

    def is_extrapolating(self, x: ArrayLike) -> np.ndarray:
        """True for states outside the box the observed states span (E is extrapolated)."""
        x = np.asarray(x, dtype=float)
        return np.any((x < self.data_low) | (x > self.data_high), axis=-1)

    # -- reporting ---------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The summary written to ``report.json``."""
        return {
            "formula": self.formula,
            "temperature": self.temperature,
            "energy_spec": self.energy_spec,
            "energy_type": type(self.energy_module).__name__,
            "n_parameters": self.n_parameters,
            "method": self.method,
            "data_kind": self.data_kind,
            "dynamics": self.dynamics.describe(),
            "time_convention": self.time_convention,
            "step_size": self.step_size,
            "diagnostics": _jsonable(self.diagnostics.as_dict()),
            "identifiability": dict(self.identifiability),
            "data_range": {"low": self.data_low.tolist(), "high": self.data_high.tolist()},
            "stop_reason": self.stop_reason,
            "fit_seconds": self.fit_seconds,
            "seed": self.seed,
            "environment": _jsonable(self._environment()),
            "history": _jsonable(self.history),
            # NaN (a term the data do not identify) is written as null: standard JSON
            "uncertainty": _finite_or_null(_jsonable(self.uncertainty)),
        }

    def _environment(self) -> Mapping[str, Any]:
        if self.environment is not None:
            return self.environment
        return {**software_environment(), "recorded": "when the report was written"}

    # -- files -------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json``, ``model.npz`` and ``report.json`` into ``directory``.

        The files are written to a temporary folder beside ``directory`` and moved into place
        together, so a failure leaves no partial model and a previous one intact.  Refuses to
        replace an existing model unless ``overwrite=True``; other files already in
        ``directory`` are kept.
        """
        directory = Path(directory)
        if (directory / MODEL_JSON).exists() and not overwrite:
            raise FileExistsError(
                f"{directory} already holds a model; pass overwrite=True (CLI: --force) "
                "or choose another directory"
            )
        config = self.energy_module.config()  # raises for energies that hold code
        with staged_directory(directory, replaces=MODEL_FILES, overwrite=overwrite) as stage:
            self.write_files(stage, config)
        return directory

    def write_files(self, directory: Path, config: Mapping[str, Any] | None = None) -> None:
        """Write the model's files into an existing folder, in place (:meth:`save` calls it on
        a temporary folder; use :meth:`save`)."""
        config = self.energy_module.config() if config is None else config
        leaves = jax.tree_util.tree_leaves(eqx.filter(self.energy_module, eqx.is_array))
        arrays = {f"leaf_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
        arrays["data_low"] = self.data_low
        arrays["data_high"] = self.data_high
        if self.starts is not None:
            arrays["starts"] = np.asarray(self.starts)
        report = self.report()
        meta = {
            "format_version": FORMAT_VERSION,
            "energy": config,
            "n_leaves": len(leaves),
            **{key: report[key] for key in SAVED_FROM_REPORT},
        }
        np.savez(directory / MODEL_ARRAYS, **arrays)
        (directory / MODEL_JSON).write_text(json.dumps(meta, indent=2))
        (directory / REPORT_JSON).write_text(json.dumps(report, indent=2))


def load(directory: str | Path) -> FittedModel:
    """Load a model saved by :meth:`FittedModel.save` (or ``iel fit``); runs no code."""
    directory = Path(directory)
    meta_path = directory / MODEL_JSON
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory}: no {MODEL_JSON} here; is this an iel model folder?")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{meta_path}: format version {meta.get('format_version')} is not supported "
            f"(this iel reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    skeleton = field_from_config(meta["energy"])
    with np.load(directory / MODEL_ARRAYS, allow_pickle=False) as f:
        leaves = [jnp.asarray(f[f"leaf_{i:04d}"]) for i in range(meta["n_leaves"])]
        low, high = f["data_low"], f["data_high"]
        starts = np.asarray(f["starts"]) if "starts" in f.files else None
    params, static = eqx.partition(skeleton, eqx.is_array)
    treedef = jax.tree_util.tree_structure(params)
    if treedef.num_leaves != len(leaves):
        raise ValueError(
            f"{directory}: the saved arrays ({len(leaves)}) do not match the energy's structure "
            f"({treedef.num_leaves} arrays); the files are inconsistent"
        )
    old = jax.tree_util.tree_leaves(params)
    for i, (a, b) in enumerate(zip(old, leaves)):
        if a.shape != b.shape:
            raise ValueError(f"{directory}: array {i} has shape {b.shape}, expected {a.shape}")
    energy = eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)
    if "dynamics" in meta:
        dynamics = dynamics_from_description(meta["dynamics"])
    elif meta["data_kind"] == "endpoints":
        dynamics = GradientDescent()
    else:  # version 1
        dynamics = observed_dynamics(float(meta["temperature"]))
    return FittedModel(
        energy_module=energy,
        dynamics=dynamics,
        energy_spec=meta["energy_spec"],
        method=meta["method"],
        data_kind=meta["data_kind"],
        diagnostics=meta["diagnostics"],
        identifiability=meta["identifiability"],
        data_low=np.asarray(low),
        data_high=np.asarray(high),
        history=meta.get("history", {}),
        stop_reason=meta.get("stop_reason", ""),
        fit_seconds=float(meta.get("fit_seconds", 0.0)),
        starts=starts,
        step_size=meta.get("step_size"),
        seed=meta.get("seed"),
        environment=meta.get("environment"),
        uncertainty=_null_to_nan(meta["uncertainty"]) if meta.get("uncertainty") else None,
    )


def _finite_or_null(value):
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _null_to_nan(value):
    if isinstance(value, dict):
        return {k: _null_to_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_to_nan(v) for v in value]
    return float("nan") if value is None else value


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value
