"""Closed-form statistics for libraries whose features each depend on at most two coordinates:
forward-mode products (``normal_equations``' sparse path) against full Jacobians, same data.

Prints, per library: features, seconds for each path (second call: compiled), the ratio, and
the largest relative difference of the Gram matrices.  5000 random transitions.

Run: ``python benchmarks/sparse_statistics.py``.
"""

from __future__ import annotations

import time

import numpy as np

import iel  # noqa: F401  (float64)
from iel.energies.spec import parse_energy_spec
from iel.linear.normal_equations import normal_equations

CASES = ((10, "poly:4:2"), (20, "poly:4:2"), (30, "poly:3:2"), (50, "poly:4:1+rbf:16:1"))


def timed(library, x0, dx, h, sparse):
    normal_equations(library, x0, dx, h, use_sparse=sparse)  # compile
    start = time.perf_counter()
    eq = normal_equations(library, x0, dx, h, use_sparse=sparse)
    return time.perf_counter() - start, eq


def main() -> None:
    rng = np.random.default_rng(0)
    print("| d | library | features | sparse s | Jacobians s | ratio | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    for dim, spec in CASES:
        x0 = rng.uniform(-3, 3, (5000, dim))
        dx, h = 0.1 * rng.standard_normal((5000, dim)), np.full(5000, 0.01)
        library = parse_energy_spec(spec, dim).library.adapt(x0)
        fast, a = timed(library, x0, dx, h, None)
        slow, b = timed(library, x0, dx, h, False)
        diff = np.max(np.abs(a.gram - b.gram)) / np.max(np.abs(b.gram))
        print(f"| {dim} | {spec} | {library.n_features} | {fast:.2f} | {slow:.2f} | "
              f"{slow / fast:.0f} | {diff:.1e} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
