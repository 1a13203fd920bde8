"""The greedy description-length search on a snapshot-suite library: one-term changes scored
by rank-one updates of the fit (``forward_backward``'s default) against every trial support
solved and coded on its own (``updates=False``), same statistics.

The statistics are the JKOnet* suite's paired steps' (d = 2, 1000 particles per snapshot,
optimal-transport pairs, the ``poly:6+rbf:30`` library ``auto`` searches).  Prints, per
potential: seconds for each way (median of repeats), their ratio, the number of moves, and
whether both took the same moves to the same code.

Run: ``python benchmarks/sparse_search.py [potential …]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import iel
from iel.energies.spec import parse_energy_spec
from iel.estimators.snapshots.onestep import paired_transitions
from iel.linear.normal_equations import normal_equations
from iel.mdl.codes import default_epsilon
from iel.mdl.sparse import forward_backward
from iel.selection.trajectories import _stats_from_normal_equations

sys.path.insert(0, str(Path(__file__).parent))  # the suite's data generator
POTENTIALS = ("ishigami", "friedman", "double_exp", "sphere")
REPEATS = 3


def suite_statistics(name: str):
    """Normal equations of ``poly:6+rbf:30`` on the OT-paired training half of the suite's
    data for ``name`` (the benchmark's seeds), the precision ``ε`` and the mean step."""
    from jkonet_suite import simulate

    x = simulate(name, 2000, 2, 0.0, seed=0)
    train = x[np.random.default_rng(1).permutation(2000)[:1000]]
    shuffle = np.random.default_rng(2)
    snaps = iel.Snapshots(
        np.concatenate([train[shuffle.permutation(1000), k] for k in range(6)]),
        np.repeat(np.arange(6) * 0.01, 1000),
    )
    pairs, _ = paired_transitions(snaps)
    x0, dx, h = pairs.increments()
    library = parse_energy_spec("poly:6+rbf:30", 2).library.adapt(pairs.observed_states())
    stats = _stats_from_normal_equations(normal_equations(library, x0, dx, h), 2)
    return stats, default_epsilon(pairs), float(np.mean(h))


def _timed(stats, eps, h_mean, updates):
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = forward_backward(stats, epsilon=eps, h_mean=h_mean, updates=updates)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> None:
    names = sys.argv[1:] or POTENTIALS
    print("| potential | terms | updates s | term by term s | ratio | moves | same moves |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        stats, eps, h_mean = suite_statistics(name)
        fast, a = _timed(stats, eps, h_mean, True)
        slow, b = _timed(stats, eps, h_mean, False)
        same = [m[:2] for m in a.path] == [m[:2] for m in b.path] and a.code.total == b.code.total
        print(f"| {name} | {stats.gram.shape[0]} | {fast:.3f} | {slow:.3f} | {fast / slow:.2f} "
              f"| {len(a.path) - 1} | {same} |")  # fmt: skip


if __name__ == "__main__":
    main()
