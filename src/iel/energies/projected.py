"""Energies of a few linear combinations of the coordinates (collective variables).

``E(x) = g(Wx)`` with ``W`` an ``r × d`` matrix of orthonormal rows and ``g`` any energy on
``R^r``.  The force ``−∇E(x) = −Wᵀ∇g(Wx)`` lies in the ``r``-dimensional row space of ``W``:
the system moves only along the collective variables ``u = Wx``, and every direction
orthogonal to them is force-free.  :mod:`iel.selection.collective` finds ``W`` from the data
(the dominant eigenvectors of the displacements' second moment) and ``g`` by selection in
``r`` dimensions.
"""

from __future__ import annotations

import re
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._types import Array
from .base import AbstractEnergy, field_from_config, register

_COORDINATE = re.compile(r"\bx(\d+)\b")


@register
class ProjectedEnergy(AbstractEnergy):
    """``E(x) = g(Wx)``: an energy ``g`` (``inner``) of the collective variables ``u = Wx``.

    Args:
        inner: the energy ``g`` on ``R^r``.
        weights: ``W``, shape ``(r, d)`` with ``r ≤ d``; rows orthonormal (``W Wᵀ = I``) so
            that ``u`` keeps the data's units and ``‖Wᵀ∇g‖ = ‖∇g‖``.
    """

    inner: AbstractEnergy
    weights: Array

    def __init__(self, inner: AbstractEnergy, weights):
        weights = jnp.asarray(weights, dtype=float)
        if weights.ndim != 2 or weights.shape[0] > weights.shape[1]:
            raise ValueError(
                f"collective-variable weights must have shape (r, d) with r ≤ d, got "
                f"{tuple(weights.shape)}"
            )
        self.inner = inner
        self.weights = weights

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def __call__(self, x: Array) -> Array:
        return self.inner(self.weights.astype(x.dtype) @ x)

    def components(self, precision: int = 3) -> list[str]:
        """``u_k = Σ_j W_kj x_j`` written out; coordinates sharing a coefficient (to the
        precision shown) are grouped, ``0.447·(x0 + x1 + x2)``; coefficients below
        ``10⁻⁴`` of the row's largest are left out."""
        out = []
        for k, row in enumerate(np.asarray(self.weights)):
            cutoff = 1e-4 * np.max(np.abs(row))
            groups: dict[str, list[str]] = {}
            for j, w in enumerate(row):
                if abs(w) > cutoff:
                    groups.setdefault(f"{w:.{precision}g}", []).append(f"x{j}")
            terms = [
                f"{c}·{names[0]}" if len(names) == 1 else f"{c}·({' + '.join(names)})"
                for c, names in groups.items()
            ]
            out.append(f"u{k} = " + " + ".join(terms).replace("+ -", "− "))
        return out

    def formula(self, precision: int = 3) -> str:
        inner = self.inner.formula(precision).removeprefix("E(x) = ")
        inner = _COORDINATE.sub(r"u\1", inner)
        return f"E(x) = g(u) = {inner}, with " + "; ".join(self.components(precision))

    def config(self) -> dict[str, Any]:
        return {
            "type": "ProjectedEnergy",
            "inner": self.inner.config(),
            "n_components": self.n_components,
            "dim": self.dim,
        }

    @classmethod
    def from_config(cls, config):
        weights = jnp.zeros((config["n_components"], config["dim"]))
        return cls(field_from_config(config["inner"]), weights)
