"""Helpers for the shared contract suites (``test_contract_*.py``).

* :func:`concrete_subclasses`: the classes a suite runs over, found by walking the subclasses of
  an interface, so that a new energy, dynamics or estimator is picked up without editing a list;
* :func:`grammar_terms` and :func:`example_spec`: the terms of the energy-spec grammar table in
  the docstring of :mod:`iel.energies.spec`, and a parseable example of each;
* :func:`tiny_data`: a small data set of each kind, quick to simulate and to fit.
"""

from __future__ import annotations

import functools
import inspect
import re

import numpy as np

import iel
import iel.energies.spec

# placeholders of the grammar table → values for a parseable example (as docs/hooks/spec_grammar)
PLACEHOLDERS = {"K": "3", "V": "1", "M": "3", "L": "2", "AxB…": "8x8", "AxB": "8x8"}
KINDS = ("trajectories", "snapshots", "samples", "endpoints")


def concrete_subclasses(base: type) -> list[type]:
    """Every non-abstract class below ``base`` (recursively) defined in the ``iel`` package.

    Classes defined in tests (``__module__`` outside ``iel``) are left out, so the result does
    not depend on which test modules happen to have been imported in the same session.
    """
    found: dict[str, type] = {}
    todo = list(base.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not (cls.__module__ == "iel" or cls.__module__.startswith("iel.")):
            continue
        if inspect.isabstract(cls) or cls.__name__.startswith("Abstract"):
            continue
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return sorted(found.values(), key=lambda c: c.__name__)


def missing_from_table(classes: list[type], table: dict, what: str, where: str) -> str | None:
    """An assertion message naming the classes without an entry in ``table`` (or ``None``)."""
    missing = sorted(c.__name__ for c in classes if c.__name__ not in table)
    if not missing:
        return None
    return (
        f"{what} without a contract case: {', '.join(missing)}. Add an entry for each to "
        f"{where} so the shared suite runs over it."
    )


def _table_rows(doc: str) -> list[tuple[str, str]]:
    """Rows ``(term, meaning)`` of the first two-column reStructuredText simple table."""
    lines = doc.splitlines()
    borders = [i for i, line in enumerate(lines) if re.fullmatch(r"=+\s+=+\s*", line)]
    if len(borders) < 2:
        raise AssertionError(
            "the docstring of iel.energies.spec has no grammar table (a two-column "
            "reStructuredText simple table bordered by '====  ====' lines)"
        )
    first, last = borders[0], borders[-1]
    width = len(lines[first].split()[0])
    rows: list[list[str]] = []
    for line in lines[first + 1 : last]:
        if re.fullmatch(r"=+\s+=+\s*", line):
            continue
        term, meaning = line[:width].strip(), line[width:].strip()
        if term:
            rows.append([term, meaning])
        elif rows:
            rows[-1][1] += " " + meaning
    return [(t, m) for t, m in rows]


@functools.cache
def grammar_terms() -> tuple[str, ...]:
    """The terms of the grammar table in :mod:`iel.energies.spec`'s docstring, without the
    backquotes: ``("quadratic", "poly:K", …, "fourier:K[:L]", …)``.  A row whose meaning
    names a variant in double backquotes (``mlp:AxB…:radial``) adds that variant."""
    terms: list[str] = []
    for term, meaning in _table_rows(inspect.getdoc(iel.energies.spec) or ""):
        terms.append(term.strip("`"))
        name = term.strip("`").split(":")[0]
        for variant in re.findall(r"``([^`]+)``", meaning):
            if variant.startswith(f"{name}:") and variant not in terms:
                terms.append(variant)
    return tuple(terms)


def example_spec(term: str, optional: bool = False) -> str:
    """``poly:K:V`` → ``poly:3:1``; optional parts (``[:L]``) dropped, or kept with
    ``optional=True`` (``fourier:K[:L]`` → ``fourier:3:2``)."""
    plain = term.strip("`")
    plain = re.sub(r"\[([^\]]*)\]", r"\1" if optional else "", plain)
    name, *args = plain.split(":")
    return ":".join([name, *(PLACEHOLDERS.get(a, a) for a in args)])


def grammar_examples() -> list[str]:
    """One example spec per grammar term, plus the optional parts spelled out."""
    out: list[str] = []
    for term in grammar_terms():
        for example in (example_spec(term), example_spec(term, optional=True)):
            if example not in out:
                out.append(example)
    return out


@functools.cache
def tiny_data(kind: str, seed: int = 0, dim: int = 1):
    """A small data set of ``kind`` from the double well (three-well for end states).

    Different seeds give different data of the same kind and shape.
    """
    if kind == "trajectories":
        return iel.simulate_system(
            "double_well", n=24, steps=12, dt=0.01, temperature=0.3, dim=dim, seed=seed
        )
    if kind == "snapshots":
        return iel.simulate_system(
            "double_well", n=30, steps=1, dt=0.02, snapshots=True, dim=dim, seed=seed
        )
    if kind == "samples":
        rng = np.random.default_rng(seed)
        return iel.Samples(rng.normal(size=(120, dim)) * (1.0 + 0.2 * seed))
    if kind == "endpoints":
        return iel.simulate_system("three_well", n=40, steps=150, dt=0.01, endpoints=True,
                                   dim=dim, seed=seed)  # fmt: skip
    raise ValueError(f"unknown data kind {kind!r}; expected one of {KINDS}")


def with_nan(kind: str):
    """Build a container of ``kind`` whose first state holds a NaN (the constructor call is
    what is tested: it should refuse)."""
    data = tiny_data(kind, seed=0)
    x = np.array(data.x, dtype=float, copy=True)
    x[(0,) * (x.ndim - 1) + (0,)] = np.nan
    if kind == "trajectories":
        return iel.Trajectories(x, t=data.t)
    if kind == "snapshots":
        return iel.Snapshots(x, data.t)
    if kind == "samples":
        return iel.Samples(x)
    return iel.Endpoints(x, starts=data.starts)
