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

import jax
import numpy as np

import iel
import iel.energies.spec

KINDS = ("trajectories", "snapshots", "samples", "endpoints")
# trajectories of proportions (on the simplex): a data set of its own for the estimators that
# need them, not one of KINDS (every trajectory estimator accepts them)
PROPORTIONS = "proportions"


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


def grammar_terms() -> tuple[str, ...]:
    """The terms of the spec grammar (:func:`iel.energies.spec.grammar`)."""
    return iel.energies.spec.grammar().terms()


def grammar_examples() -> list[str]:
    """One example spec per grammar term, plus the optional parts spelled out."""
    out: list[str] = []
    for term in grammar_terms():
        for optional in (False, True):
            example = iel.energies.spec.example_spec(term, optional)
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
    if kind == PROPORTIONS:
        energy = iel.Quadratic.from_matrix(np.array([0.6, 0.3, 0.1]), np.diag([2.0, 1.0, 3.0]))
        starts = np.random.default_rng(seed).dirichlet(np.ones(3), size=24)
        key = jax.random.PRNGKey(seed)
        return iel.simulate(energy, iel.ExponentiatedGradient(temperature=0.01), starts, 12, key,
                            0.05)  # fmt: skip
    raise ValueError(f"unknown data kind {kind!r}; expected one of {KINDS}")


def with_nan(kind: str):
    """Build a container of ``kind`` whose first state holds a NaN (the constructor call is
    what is tested: it should refuse)."""
    data = tiny_data(kind, seed=0)
    x = np.array(data.x, dtype=float, copy=True)
    x[(0,) * (x.ndim - 1) + (0,)] = np.nan
    if kind in ("trajectories", PROPORTIONS):
        return iel.Trajectories(x, t=data.t)
    if kind == "snapshots":
        return iel.Snapshots(x, data.t)
    if kind == "samples":
        return iel.Samples(x)
    return iel.Endpoints(x, starts=data.starts)
