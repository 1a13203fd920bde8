"""Energy families named by short strings, as used by ``iel fit --energy SPEC``.

Grammar: terms joined by ``+``; each term is one of

=================  ==========================================================================
``quadratic``      all monomials of degree ≤ 2 (a general quadratic form), reported as a
                   :class:`Quadratic` when the fitted matrix is positive definite
``poly:K``         monomials of total degree 1..K with cross terms
``poly:K:V``       the same, only terms in at most V distinct variables (V = 1: additive)
``fourier:K[:L]``  ``sin(k x_j/L)``, ``cos(k x_j/L)``, k = 1..K (L defaults to 1; ``fit``:
                   L fitted to the data by a frequency scan, one free parameter)
``rbf:M``          M Gaussian bumps on centres chosen from the data (k-means)
``rbf:M:1``        M one-dimensional bumps per coordinate (additive, d·M features)
``pairs:K``        additive powers up to K plus the pairwise monomials (degree ≤ K) of the
                   coordinate pairs an additive fit's residual points to (screened from data)
``mlp:AxB…``       a smooth MLP energy with hidden widths A, B, … (softplus);
                   ``mlp:AxB…:radial`` reads the radius ``√(1 + ‖x‖²/d)`` as one more input
``icnn:AxB…``      an input-convex network (convex energy)
``bumps:M``        M Gaussian bumps with learned amplitudes, centres and widths
``expquad:M``      M exponentiated quadratics ``exp(−½(x−c)ᵀP(x−c))``, any symmetric P
                   (:mod:`iel.energies.exp_quadratics`): amplitudes linear, centres and
                   matrices fitted by variable projection
=================  ==========================================================================

Linear terms (quadratic, poly, fourier, rbf, expquad) are combined into one feature library and
fitted in closed form; a spec with a network term is fitted by gradient-based optimisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import jax
import numpy as np

from .additive_rbf import AdditiveRBF
from .base import AbstractEnergy
from .bumps import GaussianBumps
from .exp_quadratics import ExpQuadratics
from .features import (
    AbstractFeatureLibrary,
    FeatureEnergy,
    Fourier,
    GaussianRBF,
    Monomials,
    join_library_parts,
)
from .neural import ICNNEnergy, MLPEnergy
from .pair_monomials import PairMonomials


class SpecError(ValueError):
    """An energy spec string could not be parsed."""


@dataclass(frozen=True)
class EnergyFamily:
    """A parsed spec: a feature library (linear part) and network terms (nonlinear part)."""

    spec: str
    dim: int
    library: AbstractFeatureLibrary | None
    networks: tuple[tuple[str, tuple[int, ...]], ...]
    quadratic: bool

    def __repr__(self) -> str:
        return f"EnergyFamily({self.spec!r}, dim={self.dim})"

    @property
    def is_linear(self) -> bool:
        return not self.networks

    def build(self, key: jax.Array, states: np.ndarray | None = None) -> AbstractEnergy:
        """An initial energy of this family (zero coefficients, random network weights, bumps
        on k-means centres of ``states``)."""
        terms: list[AbstractEnergy] = []
        if self.library is not None:
            terms.append(FeatureEnergy(self.library))
        keys = jax.random.split(key, max(len(self.networks), 1))
        for (kind, widths), k in zip(self.networks, keys):
            if kind == "bumps":
                if states is None:
                    raise ValueError("a bumps energy needs data states to place its centres")
                terms.append(GaussianBumps.from_data(states, widths[0]))
            else:
                if kind == "icnn":
                    terms.append(ICNNEnergy(self.dim, widths, k))
                else:
                    terms.append(MLPEnergy(self.dim, widths, k, radial=kind == "mlp-radial"))
        return terms[0] if len(terms) == 1 else sum(terms[1:], terms[0])

    def with_library(self, library: AbstractFeatureLibrary | None) -> EnergyFamily:
        return replace(self, library=library)


def _int(value: str, term: str) -> int:
    try:
        out = int(value)
    except ValueError:
        raise SpecError(f"energy spec term {term!r}: expected an integer, got {value!r}") from None
    if out < 1:
        raise SpecError(f"energy spec term {term!r}: expected a positive integer, got {out}")
    return out


def _widths(value: str, term: str) -> tuple[int, ...]:
    return tuple(_int(w, term) for w in value.lower().split("x"))


def parse_energy_spec(spec: str | EnergyFamily, dim: int) -> EnergyFamily:
    """Parse ``spec`` for states of dimension ``dim``; see the module docstring.

    A spec is parsed once, where it enters (``iel.fit``, the command line), and the family
    travels down to the estimators: an :class:`EnergyFamily` given here is returned as it is
    (after checking its dimension), so estimators take either."""
    if isinstance(spec, EnergyFamily):
        if spec.dim != dim:
            raise SpecError(f"{spec.spec!r} was parsed for d = {spec.dim}, the data have d = {dim}")
        return spec
    if not spec or not spec.strip():
        raise SpecError("empty energy spec; try 'poly:4', 'rbf:50' or 'mlp:64x64'")
    parts: list[AbstractFeatureLibrary] = []
    networks: list[tuple[str, tuple[int, ...]]] = []
    quadratic = False
    for raw in spec.split("+"):
        term = raw.strip().lower()
        name, _, arg = term.partition(":")
        if name == "quadratic" and not arg:
            parts.append(Monomials(dim, 2))
            quadratic = True
        elif name in ("poly", "polynomial") and arg:
            degree, _, max_vars = arg.partition(":")
            parts.append(
                Monomials(dim, _int(degree, term), _int(max_vars, term) if max_vars else None)
            )
        elif name == "fourier" and arg:
            k, _, scale = arg.partition(":")
            if scale == "fit":
                parts.append(Fourier.placeholder(dim, _int(k, term)))
                continue
            try:
                length = float(scale) if scale else 1.0
            except ValueError:
                raise SpecError(f"{term!r}: length scale must be a number, got {scale!r}") from None
            parts.append(Fourier(dim, _int(k, term), length))
        elif name == "rbf" and arg:
            count, _, additive = arg.partition(":")
            if additive and additive != "1":
                raise SpecError(
                    f"{term!r}: rbf:M:1 means M one-dimensional bumps per coordinate (additive); "
                    f"only 1 is supported after the count, got {additive!r}"
                )
            cls = AdditiveRBF if additive else GaussianRBF
            parts.append(cls.placeholder(dim, _int(count, term)))
        elif name == "pairs" and arg:
            parts.append(PairMonomials.placeholder(dim, _int(arg, term)))
        elif name == "expquad" and arg:
            parts.append(ExpQuadratics.placeholder(dim, _int(arg, term)))
        elif name in ("mlp", "icnn") and arg:
            widths, _, option = arg.partition(":")
            if option and (name, option) != ("mlp", "radial"):
                raise SpecError(f"{term!r}: after the widths only mlp takes ':radial', "
                                f"got {option!r}")  # fmt: skip
            networks.append((f"{name}-radial" if option else name, _widths(widths, term)))
        elif name == "bumps" and arg:
            networks.append((name, (_int(arg, term),)))
        else:
            raise SpecError(
                f"energy spec term {raw.strip()!r} not understood; expected one of quadratic, "
                "poly:K, poly:K:V, fourier:K, rbf:M, rbf:M:1, pairs:K, expquad:M, bumps:M, "
                "mlp:AxB, mlp:AxB:radial, icnn:AxB (joined by '+')"
            )
    quadratic = quadratic and len(parts) == 1 and not networks
    library = join_library_parts(parts) if parts else None
    return EnergyFamily(spec.strip(), int(dim), library, tuple(networks), quadratic)


# -- the grammar, read from this module's docstring (written once, there) --------------------
# placeholders of the grammar table → values that make a parseable example
EXAMPLE_VALUES = {"K": "3", "V": "1", "M": "3", "L": "2", "AxB…": "8x8", "AxB": "8x8"}
_BORDER = re.compile(r"=+\s+=+\s*")


@dataclass(frozen=True)
class Grammar:
    """The grammar table of this module's docstring: the prose around it and its rows
    ``(term, meaning)`` as written (reStructuredText), for the docs and the shared tests."""

    before: str
    rows: tuple[tuple[str, str], ...]
    after: str

    def terms(self) -> tuple[str, ...]:
        """The terms without backquotes (``"poly:K"``, ``"fourier:K[:L]"``, …), and the
        variants a row's meaning names in double backquotes (``mlp:AxB…:radial``)."""
        out: list[str] = []
        for term, meaning in self.rows:
            out.append(term.strip("`"))
            name = out[-1].split(":")[0]
            out += [v for v in re.findall(r"``([^`]+)``", meaning)
                    if v.startswith(f"{name}:") and v not in out]  # fmt: skip
        return tuple(out)


def grammar() -> Grammar:
    """The grammar table of this module's docstring (a two-column simple table)."""
    lines = (__doc__ or "").splitlines()
    borders = [i for i, line in enumerate(lines) if _BORDER.fullmatch(line)]
    if len(borders) < 2:
        raise SpecError("iel.energies.spec lost its grammar table (a two-column simple table "
                        "bordered by '====  ====' lines)")  # fmt: skip
    first, last = borders[0], borders[-1]
    width = len(lines[first].split()[0])
    rows: list[list[str]] = []
    for line in lines[first + 1 : last]:
        term, meaning = line[:width].strip(), line[width:].strip()
        if term:
            rows.append([term, meaning])
        elif rows:
            rows[-1][1] += " " + meaning
    return Grammar("\n".join(lines[:first]).strip(), tuple((t, m) for t, m in rows),
                   "\n".join(lines[last + 1 :]).strip())  # fmt: skip


def example_spec(term: str, optional: bool = False) -> str:
    """A parseable spec for a grammar term: ``poly:K:V`` → ``poly:3:1``; optional parts
    (``[:L]``) dropped, or spelled out with ``optional=True`` (``fourier:K[:L]`` →
    ``fourier:3:2``)."""
    plain = re.sub(r"\[([^\]]*)\]", r"\1" if optional else "", term.strip("`"))
    name, *args = plain.split(":")
    return ":".join([name, *(EXAMPLE_VALUES.get(a, a) for a in args)])
