"""Exponentiated quadratics: features ``φ_m(x) = exp(−½ (x − c_m)ᵀ P_m (x − c_m))``.

With learned centres ``c_m`` and symmetric matrices ``P_m`` — not constrained to be positive
definite, so a term can be a rotated, anisotropic well or barrier (``P_m ≻ 0``), a saddle-shaped
ridge, or a growing exponential — and amplitudes ``θ_m`` as the linear coefficients,

    ``E(x) = Σ_m θ_m exp(−½ (x − c_m)ᵀ P_m (x − c_m))``

is the form of the Müller–Brown potential and of metadynamics' free-energy surfaces: a
landscape with a few wells needs a few terms (``1 + d + d(d+1)/2`` numbers each), where a fixed
polynomial or RBF library needs tens to hundreds of coefficients, each of which adds variance
to a fit from noisy Langevin data.

The family is linear in ``θ``; the centres and matrices are *free parameters* fitted by
variable projection (:mod:`iel.estimators.varpro`): for every ``(c, P)`` the amplitudes are the
closed-form least-squares solution, and ``(c, P)`` minimise what remains.  Before that fit the
library is placed on the data (:meth:`ExpQuadratics.adapt`: k-means centres, axis-aligned
matrices from the spread of the data).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array
from .features import AbstractFeatureLibrary, _register_library, kmeans_centres, library_parts

EXPONENT_CAP = 30.0  # exponents above this are capped (e^30 ≈ 1e13): no overflow in a search


def _upper_indices(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(d)


def symmetric_from_upper(upper: Array, d: int) -> Array:
    """``(…, d(d+1)/2)`` upper-triangle entries (row-major) → ``(…, d, d)`` symmetric matrices."""
    rows, cols = _upper_indices(d)
    full = jnp.zeros((*upper.shape[:-1], d, d), dtype=upper.dtype)
    full = full.at[..., rows, cols].set(upper)
    return full.at[..., cols, rows].set(upper)


@_register_library
class ExpQuadratics(AbstractFeatureLibrary):
    """``M`` exponentiated quadratics in ``d`` variables (module docstring).

    Args:
        centres: ``(M, d)``.
        matrices: ``(M, d(d+1)/2)`` upper triangles of the symmetric ``P_m`` (row-major).
        refined: whether the centres and matrices have been fitted to data (then
            :meth:`adapt` keeps them); ``False`` for a placement that is only a starting point.
    """

    centres: Array
    matrices: Array
    dim: int = eqx.field(static=True)
    n_terms: int = eqx.field(static=True)
    refined: bool = eqx.field(static=True)

    def __init__(self, centres, matrices, refined: bool = False):
        centres = jnp.asarray(centres, dtype=float)
        matrices = jnp.asarray(matrices, dtype=float)
        if centres.ndim != 2:
            raise ValueError(f"expquad: centres must have shape (M, d), got {centres.shape}")
        m, d = centres.shape
        if matrices.shape != (m, d * (d + 1) // 2):
            raise ValueError(
                f"expquad: matrices must have shape (M, d(d+1)/2) = ({m}, {d * (d + 1) // 2}) "
                f"(upper triangles), got {tuple(matrices.shape)}"
            )
        self.centres, self.matrices = centres, matrices
        self.n_terms, self.dim = int(m), int(d)
        self.refined = bool(refined)

    @classmethod
    def placeholder(cls, dim: int, n_terms: int) -> ExpQuadratics:
        """Not yet placed: :meth:`adapt` places it on data."""
        return cls(jnp.zeros((n_terms, dim)), jnp.zeros((n_terms, dim * (dim + 1) // 2)))

    @property
    def n_features(self) -> int:
        return self.n_terms

    @property
    def n_free_parameters(self) -> int:
        """Centres and matrices: the parameters fitted besides the amplitudes."""
        return int(self.centres.size + self.matrices.size)

    def precision_matrices(self) -> Array:
        return symmetric_from_upper(self.matrices, self.dim)

    def exponents(self, x: Array) -> tuple[Array, Array]:
        """``(q, P(x − c))`` with ``q_m = −½ (x − c_m)ᵀ P_m (x − c_m)``, for one state."""
        z = x[None, :] - self.centres
        pz = jnp.einsum("mij,mj->mi", self.precision_matrices(), z)
        return -0.5 * jnp.sum(z * pz, axis=1), pz

    def __call__(self, x: Array) -> Array:
        q, _ = self.exponents(x)
        return jnp.exp(jnp.minimum(q, EXPONENT_CAP))

    def jacobian(self, x: Array) -> Array:
        """``∇φ_m = −φ_m P_m (x − c_m)`` (zero where the exponent is capped)."""
        q, pz = self.exponents(x)
        phi = jnp.exp(jnp.minimum(q, EXPONENT_CAP))
        return -jnp.where(q < EXPONENT_CAP, phi, 0.0)[:, None] * pz

    def names(self) -> list[str]:
        out = []
        for c, p in zip(np.asarray(self.centres), np.asarray(self.precision_matrices())):
            cs = " ".join(f"{v:.4g}" for v in c)
            ps = "; ".join(" ".join(f"{v:.4g}" for v in row) for row in p)
            out.append(f"eq(x; c=[{cs}], P=[{ps}])")
        return out

    def adapt(self, x: np.ndarray, seed: int = 0) -> ExpQuadratics:
        """Place the terms on data states ``x``: k-means centres and axis-aligned matrices
        ``P = diag(1/s²)`` with ``s`` the spread of the data over ``M^{1/d}`` (one term per
        cell of the data's extent).  A refined library is returned as it is."""
        if self.refined:
            return self
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        centres = kmeans_centres(x, self.n_terms, seed=seed)
        spread = (x.std(axis=0) + 1e-12) * self.n_terms ** (-1.0 / self.dim)
        rows, cols = _upper_indices(self.dim)
        upper = np.where(rows == cols, 1.0 / spread[rows] ** 2, 0.0)
        return ExpQuadratics(centres, np.tile(upper, (self.n_terms, 1)))

    def grown(self, x: np.ndarray, n_terms: int, seed: int = 0) -> ExpQuadratics:
        """These terms kept and ``n_terms − M`` new ones added, for a nested warm start
        (an ``M``-term optimum is a point of the larger family's parameter space).

        The new terms sit on the k-means centres of ``x`` (``n_terms`` clusters) farthest from
        the existing centres, chosen one by one, with :meth:`adapt`'s matrices."""
        if n_terms < self.n_terms:
            raise ValueError(f"expquad: cannot grow {self.n_terms} terms to {n_terms}")
        fresh = ExpQuadratics.placeholder(self.dim, n_terms).adapt(x, seed)
        kept = np.asarray(self.centres)
        candidates = np.asarray(fresh.centres)
        chosen: list[int] = []
        for _ in range(n_terms - self.n_terms):
            taken = np.concatenate([kept, candidates[chosen]])
            gaps = np.min(np.linalg.norm(candidates[:, None] - taken[None], axis=2), axis=1)
            gaps[chosen] = -np.inf
            chosen.append(int(np.argmax(gaps)))
        return ExpQuadratics(
            np.concatenate([kept, candidates[chosen]]),
            np.concatenate([np.asarray(self.matrices), np.asarray(fresh.matrices)[chosen]]),
        )

    def anchored(self, x: np.ndarray, anchors: np.ndarray, seed: int = 0) -> ExpQuadratics:
        """A placement with its first terms on ``anchors`` (``(k, d)``, at most ``M`` used, in
        order) and the rest on the k-means centres of ``x`` farthest from them
        (:meth:`grown`), every term with :meth:`adapt`'s matrices.  Selection anchors the
        terms at the local minima of a closed-form energy fitted before (its wells)."""
        anchors = np.asarray(anchors, dtype=float).reshape(-1, self.dim)[: self.n_terms]
        if not len(anchors):
            raise ValueError("expquad: anchored placement needs at least one anchor, got none")
        fresh = ExpQuadratics.placeholder(self.dim, self.n_terms).adapt(x, seed)
        kept = ExpQuadratics(anchors, np.asarray(fresh.matrices)[: len(anchors)])
        return kept.grown(x, self.n_terms, seed)

    def with_background(self, x: np.ndarray, sign: float = -1.0) -> ExpQuadratics:
        """These terms and one broad term more: centred on the mean of ``x`` with
        ``P = sign · diag(1/(2s)²)``, ``s`` the spread of ``x`` per axis — a smooth background
        over the whole data (growing outwards for ``sign < 0``, as the fourth Müller–Brown
        term), which placements of wells on the data never start from."""
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        spread = 2.0 * (x.std(axis=0) + 1e-12)
        rows, cols = _upper_indices(self.dim)
        upper = np.where(rows == cols, sign / spread[rows] ** 2, 0.0)
        return ExpQuadratics(
            np.concatenate([np.asarray(self.centres), x.mean(axis=0)[None]]),
            np.concatenate([np.asarray(self.matrices), upper[None]]),
        )

    def config(self):
        return {"type": "ExpQuadratics", "dim": self.dim, "n_terms": self.n_terms}

    @classmethod
    def from_config(cls, config):
        d, m = config["dim"], config["n_terms"]
        return cls(jnp.zeros((m, d)), jnp.zeros((m, d * (d + 1) // 2)), refined=True)


def free_parameter_count(library: AbstractFeatureLibrary) -> int:
    """Parameters of ``library`` fitted to data besides its linear coefficients: centres and
    matrices of exponentiated quadratics, fitted length scales of Fourier terms (0 for fixed
    libraries).  Description lengths charge each of them."""
    return sum(p.n_free_parameters for p in library_parts(library))


def searched_parameter_count(library: AbstractFeatureLibrary) -> int:
    """Free parameters found by the (costly) variable-projection search: those of the
    exponentiated quadratics.  A frequency scan (one length scale) is cheap and not counted."""
    return sum(p.n_free_parameters for p in library_parts(library) if isinstance(p, ExpQuadratics))
