"""The fitted model every estimator returns, and its file format.

A model directory holds ``model.json`` (the energy's structure and the scalar results) and
``model.npz`` (the arrays, read with ``allow_pickle=False``): loading runs no code.
``report.json`` is a human- and machine-readable summary written beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._types import Array, ArrayLike
from .energies.base import AbstractEnergy, AbstractForceField, field_from_config

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
MODEL_ARRAYS = "model.npz"
REPORT_JSON = "report.json"


@dataclass
class FittedModel:
    """A learned energy with everything needed to use, judge and reproduce it.

    Attributes:
        energy_module: the learned :class:`~iel.energies.AbstractEnergy` (Equinox module).
        temperature: the estimated (or fixed) temperature ``T``; 0 for noise-free dynamics.
        energy_spec: the family it was fitted in (``"poly:4"``, ``"mlp:64x64"``, …).
        method: the estimator (``"onestep-closed-form"``, …).
        data_kind: ``"trajectories"``, ``"snapshots"``, ``"samples"`` or ``"endpoints"``.
        time_convention: how ``E`` relates to time in the data.
        diagnostics: fit quality (R² of the drift, residual scale, …).
        identifiability: what these data can and cannot determine.
        data_low, data_high: per-coordinate range of the observed states.
        history: loss curves and the like (empty for closed forms).
        stop_reason: why the fit stopped.
        fit_seconds: wall time of the fit.
        starts: ``(M, d)`` the starts recovered for end states (end-state fits only; each is
            known only up to its basin), else ``None``.
    """

    energy_module: AbstractForceField
    temperature: float
    energy_spec: str
    method: str
    data_kind: str
    time_convention: str
    diagnostics: dict[str, Any]
    identifiability: dict[str, str]
    data_low: np.ndarray
    data_high: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    stop_reason: str = ""
    fit_seconds: float = 0.0
    starts: np.ndarray | None = None

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
            "time_convention": self.time_convention,
            "diagnostics": _jsonable(self.diagnostics),
            "identifiability": self.identifiability,
            "data_range": {"low": self.data_low.tolist(), "high": self.data_high.tolist()},
            "stop_reason": self.stop_reason,
            "fit_seconds": self.fit_seconds,
            "history": _jsonable(self.history),
        }

    # -- files -------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json``, ``model.npz`` and ``report.json`` into ``directory``.

        Refuses to replace an existing model unless ``overwrite=True``.
        """
        directory = Path(directory)
        if (directory / MODEL_JSON).exists() and not overwrite:
            raise FileExistsError(
                f"{directory} already holds a model; pass overwrite=True (CLI: --force) "
                "or choose another directory"
            )
        config = self.energy_module.config()  # raises for energies that hold code
        directory.mkdir(parents=True, exist_ok=True)
        leaves = jax.tree_util.tree_leaves(eqx.filter(self.energy_module, eqx.is_array))
        arrays = {f"leaf_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
        arrays["data_low"] = self.data_low
        arrays["data_high"] = self.data_high
        if self.starts is not None:
            arrays["starts"] = np.asarray(self.starts)
        meta = {
            "format_version": FORMAT_VERSION,
            "energy": config,
            "n_leaves": len(leaves),
            "temperature": self.temperature,
            "energy_spec": self.energy_spec,
            "method": self.method,
            "data_kind": self.data_kind,
            "time_convention": self.time_convention,
            "diagnostics": _jsonable(self.diagnostics),
            "identifiability": self.identifiability,
            "history": _jsonable(self.history),
            "stop_reason": self.stop_reason,
            "fit_seconds": self.fit_seconds,
        }
        np.savez(directory / MODEL_ARRAYS, **arrays)
        (directory / MODEL_JSON).write_text(json.dumps(meta, indent=2))
        (directory / REPORT_JSON).write_text(json.dumps(self.report(), indent=2))
        return directory


def load(directory: str | Path) -> FittedModel:
    """Load a model saved by :meth:`FittedModel.save` (or ``iel fit``); runs no code."""
    directory = Path(directory)
    meta_path = directory / MODEL_JSON
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory}: no {MODEL_JSON} here; is this an iel model folder?")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_path}: format version {meta.get('format_version')} is not supported "
            f"(this iel reads version {FORMAT_VERSION})"
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
    return FittedModel(
        energy_module=energy,
        temperature=float(meta["temperature"]),
        energy_spec=meta["energy_spec"],
        method=meta["method"],
        data_kind=meta["data_kind"],
        time_convention=meta["time_convention"],
        diagnostics=meta["diagnostics"],
        identifiability=meta["identifiability"],
        data_low=np.asarray(low),
        data_high=np.asarray(high),
        history=meta.get("history", {}),
        stop_reason=meta.get("stop_reason", ""),
        fit_seconds=float(meta.get("fit_seconds", 0.0)),
        starts=starts,
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value
