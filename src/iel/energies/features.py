"""Feature libraries and energies linear in their parameters, ``E(x) = θᵀφ(x) + c``.

A library is a map ``φ: R^d → R^p`` with a readable name for each feature.  Libraries compose
with ``+`` (concatenation).  Feature *gradients* ``∇φ(x)`` (a ``p × d`` matrix) come from
forward-mode autodiff; the closed-form estimators use them to solve for ``θ`` in one pass.

Libraries:

* :class:`Monomials` — all monomials ``Π_j x_j^{α_j}`` with ``1 ≤ |α| ≤ degree`` (cross terms
  included).  The constant is left out: it has zero gradient and is not identifiable.
* :class:`Fourier` — ``sin(k x_j / ℓ)``, ``cos(k x_j / ℓ)`` for ``k = 1..n_frequencies``; the
  length ``ℓ`` may be a free parameter fitted to the data (a lattice of unknown spacing, see
  :mod:`iel.estimators.frequency_scan`).
* :class:`GaussianRBF` — ``exp(−‖x − c_i‖² / (2σ²))`` on given centres, or on centres chosen
  from the data by :meth:`GaussianRBF.adapt`.
* :class:`CustomFeatures` — any user function ``x ↦ φ(x)`` with names.  It holds code, so a
  model using it cannot be saved without pickle; saving it raises an error that says so.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array
from .base import AbstractEnergy, register

_LIBRARIES: dict[str, type[AbstractFeatureLibrary]] = {}


def _register_library(cls):
    _LIBRARIES[cls.__name__] = cls
    return cls


def library_from_config(config: dict[str, Any]) -> AbstractFeatureLibrary:
    name = config.get("type")
    if name not in _LIBRARIES:
        raise ValueError(f"unknown feature library {name!r}; known: {sorted(_LIBRARIES)}")
    return _LIBRARIES[name].from_config(config)


class AbstractFeatureLibrary(eqx.Module):
    """A map ``φ: R^d → R^p`` with feature names."""

    dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Array) -> Array:
        """``φ(x)`` of shape ``(p,)`` for one state ``x`` of shape ``(d,)``."""

    @property
    @abc.abstractmethod
    def n_features(self) -> int: ...

    @abc.abstractmethod
    def names(self) -> list[str]:
        """One readable name per feature, in terms of ``x0, x1, …``."""

    @abc.abstractmethod
    def config(self) -> dict[str, Any]: ...

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: dict[str, Any]) -> AbstractFeatureLibrary: ...

    def adapt(self, x: np.ndarray, seed: int = 0) -> AbstractFeatureLibrary:
        """Return a copy configured from data states ``x`` of shape ``(M, d)`` (default: self)."""
        return self

    def jacobian(self, x: Array) -> Array:
        """``∇φ(x)``: shape ``(p, d)``, row ``i`` is ``∇φ_i``."""
        return jax.jacfwd(self.__call__)(x)

    @property
    def n_free_parameters(self) -> int:
        """Parameters fitted to data besides the linear coefficients (charged in codes)."""
        return 0

    def feature_coordinates(self) -> np.ndarray | None:
        """The coordinates each feature depends on, for libraries whose features each depend
        on at most two: shape ``(p, 2)``, the second ``−1`` for a one-coordinate feature;
        ``None`` when some feature depends on more.  Rows of ``∇φ`` then have at most two
        nonzeros, which the closed-form fits exploit
        (:func:`iel.estimators.closed_form.normal_equations`)."""
        return None

    def __add__(self, other: AbstractFeatureLibrary) -> ConcatLibrary:
        if not isinstance(other, AbstractFeatureLibrary):
            return NotImplemented
        return ConcatLibrary(library_parts(self) + library_parts(other))


def one_coordinate_features(columns: np.ndarray) -> np.ndarray:
    """``feature_coordinates`` of features that each depend on one coordinate."""
    return np.stack([np.asarray(columns, dtype=int), np.full(len(columns), -1)], axis=1)


def _var(j: int) -> str:
    return f"x{j}"


def graded_exponents(dim: int, degree: int, start: int = 1) -> tuple[tuple[int, ...], ...]:
    """Exponents ``α`` with ``start ≤ |α| ≤ degree``, by total degree, ``x0^k`` first."""
    out = []
    for total in range(start, degree + 1):
        for combo in itertools.combinations_with_replacement(range(dim), total):
            alpha = [0] * dim
            for j in combo:
                alpha[j] += 1
            out.append(tuple(alpha))
    return tuple(out)


def truncated_exponents(dim: int, degree: int, max_vars: int) -> tuple[tuple[int, ...], ...]:
    """The exponents of :func:`graded_exponents` in at most ``max_vars`` variables, in the same
    order, built from the variable subsets (never enumerating the full library)."""
    found = []
    for k in range(1, max_vars + 1):
        for subset in itertools.combinations(range(dim), k):
            # positive powers on the subset with total ≤ degree
            for powers in itertools.product(range(1, degree - k + 2), repeat=k):
                if sum(powers) <= degree:
                    alpha = [0] * dim
                    for j, a in zip(subset, powers):
                        alpha[j] = a
                    found.append(tuple(alpha))

    # graded order: total degree, then the sorted multiset of variable indices
    def key(alpha):
        return sum(alpha), tuple(j for j, a in enumerate(alpha) for _ in range(a))

    return tuple(sorted(found, key=key))


def monomial_values(x: Array, exponents: Sequence[Sequence[int]]) -> Array:
    """``[Π_j x_j^{α_j} for α in exponents]`` for one state ``x``.

    Powers are built by repeated multiplication and each monomial is a product of static
    slices (no gathers), so XLA fuses the whole map and autodiff is exact at ``x = 0``.
    """
    top = max((max(a) for a in exponents), default=0)
    coords = [x[j] for j in range(x.shape[0])]
    powers = [[jnp.ones_like(c), c] for c in coords]
    for col, c in zip(powers, coords):
        while len(col) <= top:
            col.append(col[-1] * c)
    values = []
    for alpha in exponents:
        factors = [powers[j][a] for j, a in enumerate(alpha) if a]
        term = factors[0] if factors else jnp.ones_like(coords[0])
        for f in factors[1:]:
            term = term * f
        values.append(term)
    return jnp.stack(values)


class AbstractMonomialLibrary(AbstractFeatureLibrary):
    """Monomials ``x^α`` for a fixed list of exponents ``α`` (set by each concrete library)."""

    exponents: eqx.AbstractVar[tuple[tuple[int, ...], ...]]

    @property
    def n_features(self) -> int:
        return len(self.exponents)

    def __call__(self, x: Array) -> Array:
        return monomial_values(x, self.exponents)

    def names(self) -> list[str]:
        return [
            "*".join(_var(j) if a == 1 else f"{_var(j)}^{a}" for j, a in enumerate(alpha) if a)
            for alpha in self.exponents
        ]

    def feature_coordinates(self) -> np.ndarray | None:
        alphas = np.asarray(self.exponents, dtype=int).reshape(-1, self.dim)
        counts = np.count_nonzero(alphas, axis=1)
        if alphas.size == 0 or np.any((counts < 1) | (counts > 2)):
            return None
        out = np.full((len(alphas), 2), -1)
        for row, alpha in enumerate(alphas):
            found = np.flatnonzero(alpha)
            out[row, : len(found)] = found
        return out


@_register_library
class Monomials(AbstractMonomialLibrary):
    """Monomials of total degree 1..``degree`` in ``dim`` variables, cross terms included.

    ``max_vars`` keeps only monomials in at most that many distinct variables (an ANOVA-style
    truncation: ``1`` gives additive energies ``Σ_j p_j(x_j)``, ``2`` adds pairwise terms), so
    that high-dimensional libraries stay small: degree 4 in 50 variables has 316 250 monomials,
    1 425 with ``max_vars = 1`` plus pairwise quadratics."""

    dim: int = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    max_vars: int | None = eqx.field(static=True)
    exponents: tuple[tuple[int, ...], ...] = eqx.field(static=True)

    def __init__(self, dim: int, degree: int, max_vars: int | None = None):
        if dim < 1 or degree < 1:
            raise ValueError(f"Monomials needs dim ≥ 1 and degree ≥ 1, got {dim=}, {degree=}")
        if max_vars is not None and max_vars < 1:
            raise ValueError(f"max_vars must be ≥ 1, got {max_vars}")
        self.dim = int(dim)
        self.degree = int(degree)
        self.max_vars = None if max_vars is None or max_vars >= degree else int(max_vars)
        if self.max_vars is None:
            self.exponents = graded_exponents(self.dim, self.degree)
        else:
            self.exponents = truncated_exponents(self.dim, self.degree, self.max_vars)

    def config(self):
        config = {"type": "Monomials", "dim": self.dim, "degree": self.degree}
        if self.max_vars is not None:
            config["max_vars"] = self.max_vars
        return config

    @classmethod
    def from_config(cls, config):
        return cls(config["dim"], config["degree"], config.get("max_vars"))


@_register_library
class EvenMonomials(AbstractMonomialLibrary):
    """Monomials of even total degree 2, 4, …, ``degree``: even functions, ``φ(−r) = φ(r)``,
    as a pair interaction ``W(x_i − x_j)`` must be for the mean-field force."""

    dim: int = eqx.field(static=True)
    degree: int = eqx.field(static=True)
    exponents: tuple[tuple[int, ...], ...] = eqx.field(static=True)

    def __init__(self, dim: int, degree: int):
        if dim < 1 or degree < 2:
            raise ValueError(f"EvenMonomials needs dim ≥ 1 and degree ≥ 2, got {dim=}, {degree=}")
        self.dim = int(dim)
        self.degree = int(degree)
        self.exponents = tuple(
            a for a in graded_exponents(self.dim, self.degree) if sum(a) % 2 == 0
        )

    def config(self):
        return {"type": "EvenMonomials", "dim": self.dim, "degree": self.degree}

    @classmethod
    def from_config(cls, config):
        return cls(config["dim"], config["degree"])


@_register_library
class Fourier(AbstractFeatureLibrary):
    """``sin(k·x_j/ℓ)`` and ``cos(k·x_j/ℓ)`` for ``k = 1..n_frequencies`` and each coordinate.

    With ``free_length`` the length ``ℓ`` (one for all coordinates: a lattice of unknown
    spacing) is a parameter fitted to the data by a frequency scan
    (:func:`iel.estimators.frequency_scan.scan_length_scale`) and charged as one free parameter
    in description lengths; ``fitted`` says whether that has happened yet.
    """

    dim: int = eqx.field(static=True)
    n_frequencies: int = eqx.field(static=True)
    length_scale: Array  # an array leaf, so jitted code is reused across fitted lengths
    free_length: bool = eqx.field(static=True)
    fitted: bool = eqx.field(static=True)

    def __init__(self, dim: int, n_frequencies: int, length_scale: float = 1.0,
                 free_length: bool = False, fitted: bool = True):  # fmt: skip
        if dim < 1 or n_frequencies < 1 or not float(length_scale) > 0:
            raise ValueError(
                "Fourier needs dim ≥ 1, n_frequencies ≥ 1 and length_scale > 0, got "
                f"{dim}, {n_frequencies}, {length_scale}"
            )
        self.dim, self.n_frequencies = int(dim), int(n_frequencies)
        self.length_scale = jnp.asarray(float(length_scale))
        self.free_length, self.fitted = bool(free_length), bool(fitted)

    @classmethod
    def placeholder(cls, dim: int, n_frequencies: int) -> Fourier:
        """A library whose length scale is still to be fitted to data."""
        return cls(dim, n_frequencies, 1.0, free_length=True, fitted=False)

    def with_length_scale(self, length_scale: float) -> Fourier:
        """This library with its (free) length scale set to a fitted value."""
        return Fourier(self.dim, self.n_frequencies, float(length_scale), self.free_length, True)

    @property
    def n_free_parameters(self) -> int:
        return int(self.free_length)

    @property
    def n_features(self) -> int:
        return 2 * self.n_frequencies * self.dim

    def __call__(self, x: Array) -> Array:
        k = jnp.arange(1, self.n_frequencies + 1, dtype=x.dtype)
        arg = (k[:, None] * x[None, :] / self.length_scale.astype(x.dtype)).reshape(-1)
        return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)])

    def names(self) -> list[str]:
        length = float(self.length_scale)
        scale = "" if length == 1.0 else f"/{length:g}"

        def argument(k: int, j: int) -> str:
            if self.free_length:  # a fitted frequency reads best as a wavenumber: 3.14159*x0
                return f"{k / length:.6g}*{_var(j)}"
            return f"{k}*{_var(j)}{scale}" if k > 1 else f"{_var(j)}{scale}"

        args = [argument(k, j) for k in range(1, self.n_frequencies + 1) for j in range(self.dim)]
        return [f"sin({a})" for a in args] + [f"cos({a})" for a in args]

    def feature_coordinates(self) -> np.ndarray:
        return one_coordinate_features(np.tile(np.arange(self.dim), 2 * self.n_frequencies))

    def config(self):
        return {
            "type": "Fourier",
            "dim": self.dim,
            "n_frequencies": self.n_frequencies,
            "length_scale": float(self.length_scale),
            "free_length": self.free_length,
            "fitted": self.fitted,
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            config["dim"],
            config["n_frequencies"],
            config["length_scale"],
            bool(config.get("free_length", False)),
            bool(config.get("fitted", True)),
        )


@_register_library
class GaussianRBF(AbstractFeatureLibrary):
    """``φ_i(x) = exp(−‖x − c_i‖² / (2σ²))`` on centres ``c_i`` (rows of ``centres``)."""

    centres: Array
    width: Array
    dim: int = eqx.field(static=True)
    n_centres: int = eqx.field(static=True)

    def __init__(self, centres, width):
        centres = jnp.asarray(centres, dtype=float)
        if centres.ndim != 2:
            raise ValueError(f"RBF centres must have shape (m, d), got {tuple(centres.shape)}")
        self.centres = centres
        self.width = jnp.asarray(width, dtype=float)
        self.n_centres, self.dim = int(centres.shape[0]), int(centres.shape[1])

    @classmethod
    def placeholder(cls, dim: int, n_centres: int) -> GaussianRBF:
        """Centres not yet chosen: call :meth:`adapt` with data."""
        return cls(jnp.zeros((n_centres, dim)), 1.0)

    @property
    def n_features(self) -> int:
        return self.n_centres

    def __call__(self, x: Array) -> Array:
        sq = jnp.sum((x[None, :] - self.centres) ** 2, axis=1)
        return jnp.exp(-0.5 * sq / self.width**2)

    def names(self) -> list[str]:
        return [f"rbf{i}" for i in range(self.n_centres)]

    def adapt(self, x: np.ndarray, seed: int = 0) -> GaussianRBF:
        """Centres by k-means++ seeding plus Lloyd steps on the data; width = median spacing."""
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        centres = kmeans_centres(x, self.n_centres, seed=seed)
        if self.n_centres > 1:
            d2 = np.sum((centres[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
            np.fill_diagonal(d2, np.inf)
            width = float(np.median(np.sqrt(d2.min(axis=1))))
        else:
            width = float(np.sqrt(np.mean(np.var(x, axis=0))) or 1.0)
        return GaussianRBF(centres, max(width, 1e-12))

    def config(self):
        return {"type": "GaussianRBF", "dim": self.dim, "n_centres": self.n_centres}

    @classmethod
    def from_config(cls, config):
        return cls.placeholder(config["dim"], config["n_centres"])


class TooFewStatesError(ValueError):
    """The data hold fewer distinct states than a family needs to place its features."""


def kmeans_centres(x: np.ndarray, k: int, seed: int = 0, n_iter: int = 20) -> np.ndarray:
    """k-means++ seeding followed by Lloyd iterations on at most 20 000 points.

    Raises :class:`TooFewStatesError` when ``x`` holds fewer than ``k`` distinct states
    (centres would coincide and their features repeat)."""
    rng = np.random.default_rng(seed)
    if x.shape[0] > 20_000:
        x = x[rng.choice(x.shape[0], 20_000, replace=False)]
    distinct = len(np.unique(x, axis=0))
    if distinct < k:
        raise TooFewStatesError(
            f"need at least {k} distinct data states to place {k} RBF centres, got {distinct}"
        )
    centres = [x[rng.integers(len(x))]]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres.append(x[rng.choice(len(x), p=p)])
        d2 = np.minimum(d2, np.sum((x - centres[-1]) ** 2, axis=1))
    c = np.stack(centres)
    for _ in range(n_iter):
        distances = np.zeros((len(x), k))
        for column, centre in zip(x.T, c.T):  # coordinate by coordinate: no (n, k, d) array
            distances += (column[:, None] - centre[None, :]) ** 2
        labels = np.argmin(distances, axis=1)
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=column, minlength=k) for column in x.T], 1)
        held = counts > 0  # a centre that lost all its points stays where it was
        c[held] = sums[held] / counts[held, None]
    return c


def library_parts(library: AbstractFeatureLibrary) -> tuple[AbstractFeatureLibrary, ...]:
    """The libraries side by side in ``library`` (itself alone unless it is a concatenation)."""
    return library.parts if isinstance(library, ConcatLibrary) else (library,)


def join_library_parts(parts) -> AbstractFeatureLibrary:
    """The inverse of :func:`library_parts`: one part as itself, several side by side."""
    parts = tuple(parts)
    return parts[0] if len(parts) == 1 else ConcatLibrary(parts)


@_register_library
class ConcatLibrary(AbstractFeatureLibrary):
    """Features of several libraries side by side (``lib1 + lib2``)."""

    parts: tuple[AbstractFeatureLibrary, ...]

    def __init__(self, parts):
        self.parts = tuple(parts)

    def __check_init__(self):
        dims = {p.dim for p in self.parts}
        if len(dims) != 1:
            raise ValueError(f"cannot combine feature libraries of different dims {dims}")

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.parts[0].dim

    @property
    def n_features(self) -> int:
        return sum(p.n_features for p in self.parts)

    def __call__(self, x: Array) -> Array:
        return jnp.concatenate([p(x) for p in self.parts])

    def names(self) -> list[str]:
        return [n for p in self.parts for n in p.names()]

    def adapt(self, x, seed: int = 0):
        return ConcatLibrary(tuple(p.adapt(x, seed) for p in self.parts))

    def feature_coordinates(self) -> np.ndarray | None:
        columns = [p.feature_coordinates() for p in self.parts]
        return None if any(c is None for c in columns) else np.concatenate(columns)

    def config(self):
        return {"type": "ConcatLibrary", "parts": [p.config() for p in self.parts]}

    @classmethod
    def from_config(cls, config):
        return cls(tuple(library_from_config(c) for c in config["parts"]))


class CustomFeatures(AbstractFeatureLibrary):
    """User-supplied features ``fn: (d,) → (p,)`` with one name per feature.

    Holds Python code, so models built on it cannot be saved (loading must run no code).
    """

    fn: Callable[[Array], Array] = eqx.field(static=True)
    feature_names: tuple[str, ...] = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __init__(self, fn: Callable[[Array], Array], names: Sequence[str], dim: int):
        self.fn = fn
        self.feature_names = tuple(names)
        self.dim = int(dim)
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct((self.dim,), jnp.float64))
        if out.shape != (len(self.feature_names),):
            raise ValueError(
                f"custom feature function returns shape {out.shape} for one state of shape "
                f"({self.dim},); expected ({len(self.feature_names)},) to match the names given"
            )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __call__(self, x: Array) -> Array:
        return self.fn(x)

    def names(self) -> list[str]:
        return list(self.feature_names)

    def config(self):
        raise TypeError(
            "a model built on CustomFeatures holds Python code and cannot be saved as JSON + "
            "arrays; rebuild it in code and set its coefficients, or express the features with "
            "the built-in libraries (Monomials, Fourier, GaussianRBF)"
        )

    @classmethod
    def from_config(cls, config):  # pragma: no cover - config() never produces one
        raise TypeError("CustomFeatures cannot be loaded from a file")


def _format_coefficient(value: float, precision: int) -> str:
    return f"{abs(value):.{precision}f}"


@register
class FeatureEnergy(AbstractEnergy):
    """``E(x) = θᵀφ(x) + c``: linear in ``θ``; ``c`` fixes the additive constant."""

    library: AbstractFeatureLibrary
    theta: Array
    offset: Array

    def __init__(self, library: AbstractFeatureLibrary, theta=None, offset=0.0):
        self.library = library
        theta = jnp.zeros(library.n_features) if theta is None else jnp.asarray(theta, float)
        if theta.shape != (library.n_features,):
            raise ValueError(
                f"theta must have shape ({library.n_features},) for this library, "
                f"got {tuple(theta.shape)}"
            )
        self.theta = theta
        self.offset = jnp.asarray(offset, dtype=float)

    @property
    def dim(self) -> int:
        return self.library.dim

    def __call__(self, x: Array) -> Array:
        return jnp.dot(self.theta, self.library(x)) + self.offset

    def gradient_single(self, x: Array) -> Array:
        """``∇E(x) = θᵀ∇φ(x)``.  A library whose Jacobian is the default ``jacfwd(φ)`` gets it
        as one reverse-mode pass of ``θᵀφ`` (the same derivative, without the ``d`` tangents
        of every feature: poly:2 in d = 30, 496 features, is ~70× faster); a library with its
        own Jacobian (exponentiated quadratics) keeps it."""
        if type(self.library).jacobian is AbstractFeatureLibrary.jacobian:
            return jax.grad(lambda y: jnp.dot(self.theta, self.library(y)))(x)
        return self.theta @ self.library.jacobian(x)

    def terms(self, tol: float = 0.0) -> list[tuple[str, float]]:
        """``(name, coefficient)`` of every feature whose ``|θ_i| > tol``."""
        theta = np.asarray(self.theta)
        return [(n, float(c)) for n, c in zip(self.library.names(), theta) if abs(c) > tol]

    def formula(self, precision: int = 3) -> str:
        """E.g. ``E(x) = 1.000·x0^4 − 2.000·x0^2`` (terms ordered by the library)."""
        shown = [(n, c) for n, c in self.terms() if round(abs(c), precision) > 0]
        if not shown:
            return "E(x) = 0"
        out = []
        for i, (name, c) in enumerate(shown):
            sign = "−" if c < 0 else "+"
            body = f"{_format_coefficient(c, precision)}·{name}"
            out.append(("−" + body if c < 0 else body) if i == 0 else f"{sign} {body}")
        return "E(x) = " + " ".join(out)

    def config(self):
        return {"type": "FeatureEnergy", "library": self.library.config()}

    @classmethod
    def from_config(cls, config):
        return cls(library_from_config(config["library"]))
