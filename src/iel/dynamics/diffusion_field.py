"""A state-dependent diffusion tensor ``D(x)``, linear in its coefficients, positive by projection.

The fitted form is a symmetric matrix field linear in a polynomial library of the scaled state
``u = (x − c)/s``:

    ``S(x) = Σ_p ψ_p(u) Θ_p``,   ``ψ = (1, u, u², …)`` (all monomials up to ``degree``),

with ``Θ_p`` a multiple of ``I`` (``kind="scalar"``, isotropic noise), diagonal
(``"diagonal"``) or any symmetric matrix (``"full"``).  ``S`` is what the moment regression of
squared increments fits in closed form (:mod:`iel.estimators.trajectories.diffusion`); it can dip
below zero where the data are sparse, so the diffusion used everywhere is its projection on
matrices with every eigenvalue ``≥ floor``:

    ``D(x) = Π_floor S(x)``  (``max(s, floor)·I``; per diagonal entry; or eigenvalues clipped).

So ``D(x)`` is positive definite by construction while the fit stays one linear least squares;
on the data (where the fit is not negative) the projection does nothing.

The divergence ``(∇·D)_i = Σ_j ∂_j D_ij`` (the drift term of the mobility form) is taken by
forward-mode autodiff of ``D`` (scalar, diagonal) or of ``S`` (full: the eigenvalue clip has no
derivative at repeated eigenvalues).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array, ArrayLike
from ..energies.features import graded_exponents

DIFFUSION_KINDS = ("scalar", "diagonal", "full")


def n_components(kind: str, dim: int) -> int:
    """Free entries of one coefficient matrix ``Θ_p``: 1, ``d`` or ``d(d+1)/2``."""
    if kind not in DIFFUSION_KINDS:
        raise ValueError(
            f"diffusion kind must be one of {', '.join(DIFFUSION_KINDS)}, got {kind!r}"
        )
    return {"scalar": 1, "diagonal": dim, "full": dim * (dim + 1) // 2}[kind]


def component_matrices(kind: str, dim: int) -> np.ndarray:
    """``(m, d, d)``: the symmetric basis matrices ``B_c`` with ``Θ_p = Σ_c θ_pc B_c``."""
    if kind == "scalar":
        return np.eye(dim)[None]
    if kind == "diagonal":
        return np.stack([np.diag(np.eye(dim)[i]) for i in range(dim)])
    out = []
    for i in range(dim):
        for j in range(i, dim):
            b = np.zeros((dim, dim))
            b[i, j] = b[j, i] = 1.0
            out.append(b)
    return np.stack(out)


class PolynomialDiffusion(eqx.Module):
    """``D(x) = Π_floor Σ_p ψ_p((x − c)/s) Θ_p`` (module docstring).

    Args:
        kind: ``"scalar"``, ``"diagonal"`` or ``"full"``.
        degree: the polynomial degree of ``ψ`` (0: a constant tensor).
        theta: ``(p, m)`` coefficients, ``p`` library terms by ``m`` components
            (:func:`n_components`).
        centre, scale: ``(d,)`` the state scaling ``u = (x − c)/s``.
        floor: the smallest eigenvalue ``D`` may have (``> 0``).
    """

    kind: str = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    floor: float = eqx.field(static=True)
    exponents: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    theta: Array
    centre: Array
    scale: Array

    def __init__(
        self,
        kind: str,
        degree: int,
        theta: ArrayLike,
        centre: ArrayLike,
        scale: ArrayLike,
        floor: float,
    ):
        centre = jnp.asarray(centre, dtype=float).reshape(-1)
        dim = int(centre.shape[0])
        m = n_components(kind, dim)
        if degree < 0:
            raise ValueError(f"the diffusion degree must be ≥ 0, got {degree}")
        self.kind, self.degree, self.dim = kind, int(degree), dim
        self.exponents = graded_exponents(dim, int(degree), start=0)
        theta = jnp.asarray(theta, dtype=float).reshape(len(self.exponents), m)
        self.theta, self.centre = theta, centre
        self.scale = jnp.asarray(scale, dtype=float).reshape(dim)
        if not floor > 0:
            raise ValueError(f"the diffusion floor must be > 0, got {floor}")
        self.floor = float(floor)

    @property
    def n_features(self) -> int:
        return len(self.exponents)

    # -- the library ---------------------------------------------------------------------
    def features(self, x: Array) -> Array:
        """``ψ((x − c)/s)`` for one state: ``(p,)``."""
        u = (x - self.centre) / self.scale
        alpha = jnp.asarray(self.exponents, dtype=x.dtype)  # (p, d)
        return jnp.prod(u[None, :] ** alpha, axis=1)

    def raw(self, x: Array) -> Array:
        """The fitted symmetric ``S(x)`` for one state (not projected): ``(d, d)``."""
        basis = jnp.asarray(component_matrices(self.kind, self.dim), dtype=x.dtype)
        weights = self.features(x) @ self.theta  # (m,)
        return jnp.einsum("c,cij->ij", weights, basis)

    # -- the diffusion -------------------------------------------------------------------
    def single(self, x: Array) -> Array:
        """``D(x)`` for one state: ``(d, d)``, every eigenvalue ``≥ floor``."""
        s = self.raw(x)
        if self.kind == "full":
            evals, evecs = jnp.linalg.eigh(s)
            return (evecs * jnp.maximum(evals, self.floor)[None, :]) @ evecs.T
        return jnp.diag(jnp.maximum(jnp.diagonal(s), self.floor))

    def __call__(self, x: ArrayLike) -> Array:
        """``D(x)`` on states ``(..., d)``: ``(..., d, d)``."""
        x = jnp.asarray(x, dtype=float)
        if x.shape[-1] != self.dim:
            raise ValueError(f"D(x) takes states of dimension {self.dim}, got shape {x.shape}")
        flat = x.reshape(-1, self.dim)
        return jax.vmap(self.single)(flat).reshape(*x.shape[:-1], self.dim, self.dim)

    def divergence(self, x: Array) -> Array:
        """``(∇·D)_i = Σ_j ∂_j D_ij`` for one state: ``(d,)``."""
        target = self.raw if self.kind == "full" else self.single
        jac = jax.jacfwd(target)(x)  # [i, j, k] = ∂_k D_ij
        return jnp.einsum("ijj->i", jac)

    def noise_factor(self, x: Array) -> Array:
        """A matrix ``L(x)`` with ``L Lᵀ = D(x)`` for one state (the symmetric square root)."""
        if self.kind != "full":
            return jnp.diag(jnp.sqrt(jnp.diagonal(self.single(x))))
        evals, evecs = jnp.linalg.eigh(self.raw(x))
        return (evecs * jnp.sqrt(jnp.maximum(evals, self.floor))[None, :]) @ evecs.T

    def mean_level(self, x: ArrayLike) -> float:
        """``mean tr D(x)/d`` over states ``x``: the one temperature these noises average to."""
        d = self(x)
        return float(np.mean(np.trace(np.asarray(d), axis1=-2, axis2=-1)) / self.dim)

    def summary(self) -> str:
        return (
            f"{self.kind} D(x), polynomial of degree {self.degree} ({self.theta.size} coefficients)"
        )

    # -- files ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """JSON-able description (arrays as lists); :meth:`from_description` rebuilds it."""
        return {
            "kind": self.kind,
            "degree": self.degree,
            "theta": np.asarray(self.theta).tolist(),
            "centre": np.asarray(self.centre).tolist(),
            "scale": np.asarray(self.scale).tolist(),
            "floor": self.floor,
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> PolynomialDiffusion:
        return cls(**description)
