"""Minima of an energy and their basins of attraction under gradient descent.

``find_minima(energy, x)`` runs the gradient flow ``dx/dt = −∇E(x)`` from every point of ``x``
(gradient descent with a per-point step ``s = min(½/‖∇²E(x)‖_F, δ/‖∇E(x)‖)``: stable where
the energy is stiff, bounded where it is steep, so it follows the flow's orbits) until the
gradient vanishes, then merges the end points that lie within ``tol`` of each other.  Each
cluster is one minimum; the share of points that descend to it is the share of the data its
basin explains.  A cluster whose Hessian is not positive definite is flagged: the descent
stopped on a saddle or a flat region, not at a minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .dynamics.bounded_descent import BoundedGradientDescent
from .energies.base import AbstractEnergy


@dataclass
class Basins:
    """Where gradient descent on an energy takes a set of points.

    Attributes:
        minima: ``(k, d)`` the distinct end points, ordered by energy (lowest first).
        energies: ``(k,)`` the energy at each.
        shares: ``(k,)`` the fraction of the points that descend to each.
        labels: ``(n,)`` the index of the minimum each point descends to.
        curvature: ``(k,)`` the smallest Hessian eigenvalue at each (> 0 at a true minimum).
        end_points: ``(n, d)`` where each point's descent ended.
        converged: ``(n,)`` whether the gradient there fell below the tolerance.
    """

    minima: np.ndarray
    energies: np.ndarray
    shares: np.ndarray
    labels: np.ndarray
    curvature: np.ndarray
    end_points: np.ndarray
    converged: np.ndarray

    @property
    def is_minimum(self) -> np.ndarray:
        return self.curvature > 0

    def summary(self) -> list[dict]:
        return [
            {
                "location": m.tolist(),
                "energy": float(e),
                "share": float(s),
                "smallest_curvature": float(c),
            }
            for m, e, s, c in zip(self.minima, self.energies, self.shares, self.curvature)
        ]


def _run(energy, v, steps: int, eta, max_step):
    descent = BoundedGradientDescent(max_step)
    return jax.lax.scan(lambda v, _: (descent.step(energy, v, None, eta), None), v, None,
                        length=steps)[0]  # fmt: skip


def bounded_descent(energy: AbstractEnergy, z: jax.Array, steps: int, eta, max_step):
    """``steps`` steps of :class:`~iel.dynamics.BoundedGradientDescent` (``η = eta``,
    ``δ = max_step``) from each row of ``z``; differentiable
    in the energy's parameters."""
    return jax.vmap(lambda v: _run(energy, v, steps, eta, max_step))(z)


@eqx.filter_jit
def _descend(energy: AbstractEnergy, x: jax.Array, steps: int, max_step: float):
    def one(v):
        v = _run(energy, v, steps, jnp.inf, max_step)
        return v, jnp.linalg.norm(jax.grad(energy)(v))

    return jax.lax.map(one, x, batch_size=1024)


@eqx.filter_jit
def _smallest_curvature(energy: AbstractEnergy, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda v: jnp.linalg.eigvalsh(jax.hessian(energy)(v))[0])(x)


def descend(energy: AbstractEnergy, x, *, steps: int = 500, max_step: float | None = None):
    """End points of the descent from each row of ``x`` and the gradient norm there."""
    x = np.asarray(x, dtype=float)
    if max_step is None:
        max_step = 0.01 * float(np.max(np.ptp(x, axis=0))) if len(x) > 1 else 0.01
        max_step = max(max_step, 1e-3)
    ends, grad_norm = _descend(energy, jnp.asarray(x), steps, max_step)
    return np.asarray(ends), np.asarray(grad_norm)


def find_minima(
    energy: AbstractEnergy,
    x,
    *,
    steps: int = 500,
    tol: float | None = None,
    gradient_tol: float = 1e-6,
) -> Basins:
    """Descend from every row of ``x`` and group the end points into minima (module docstring).

    Args:
        energy: the energy.
        x: ``(n, d)`` starting points (the observations, or draws from a prior on starts).
        steps: descent steps per point.
        tol: end points closer than this are one minimum (default 1 % of the data's extent).
        gradient_tol: ``‖∇E‖`` below which a descent counts as converged.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"find_minima: expected points of shape (n, d), got {x.shape}")
    extent = float(np.max(np.ptp(x, axis=0))) if len(x) > 1 else 1.0
    if tol is None:
        tol = 0.01 * max(extent, 1e-12)
    ends, grad_norm = descend(energy, x, steps=steps)
    values = np.asarray(jax.vmap(energy)(jnp.asarray(ends)))
    order = np.argsort(values, kind="stable")
    centres: list[np.ndarray] = []
    labels = np.full(len(x), -1)
    for i in order:
        for k, c in enumerate(centres):
            if np.linalg.norm(ends[i] - c) <= tol:
                labels[i] = k
                break
        else:
            centres.append(ends[i])
            labels[i] = len(centres) - 1
    minima = np.array(centres)
    counts = np.bincount(labels, minlength=len(minima))
    return Basins(
        minima=minima,
        energies=np.asarray(jax.vmap(energy)(jnp.asarray(minima))),
        shares=counts / len(x),
        labels=labels,
        curvature=np.asarray(_smallest_curvature(energy, jnp.asarray(minima))),
        end_points=ends,
        converged=grad_norm <= gradient_tol * max(1.0, float(np.max(np.abs(values)))),
    )


def shares_at(basins: Basins, ends: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """Shares of ``ends`` (end points of other descents) among ``basins.minima``, and the share
    that reached none of them (within ``tol``)."""
    distance = np.linalg.norm(ends[:, None, :] - basins.minima[None, :, :], axis=-1)
    nearest = np.argmin(distance, axis=1)
    reached = distance[np.arange(len(ends)), nearest] <= tol
    shares = np.bincount(nearest[reached], minlength=len(basins.minima)) / len(ends)
    return shares, float(1.0 - reached.mean())
