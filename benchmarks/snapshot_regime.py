"""How often the snapshot regime test (same particles or fresh samples) decides right.

Ornstein–Uhlenbeck populations ``V = a|x|²/2`` (Euler–Maruyama with 10 substeps per gap)
from a transient start ``N(2, 0.1)`` or from equilibrium, seen at six times; *same*: every
particle at every time (rows shuffled), *fresh*: each time a random half of the population.
For each configuration and seed the table gives the ratio ``R`` of
:func:`iel.selection.snapshot_regime.pairing_ratio` and whether
:func:`~iel.selection.snapshot_regime.decide_regime` got the regime right.

The second table: the JKOnet* potentials (same particles, 1000 uniform starts on [−4, 4]²,
five steps of 0.01, noise-free and at β = 0.1), where every row should read "same".

    python benchmarks/snapshot_regime.py [--seeds 3] [--dims 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from iel.data import Snapshots
from iel.selection.snapshot_regime import decide_regime
from iel.systems import JKONET_POTENTIALS, simulate_system


def ou_snapshots(n=3000, temperature=0.5, a=1.0, dt=0.1, times=6, start="transient",
                 fresh=True, dim=1, seed=0, spread=None, substeps=10) -> Snapshots:  # fmt: skip
    """OU snapshots (module docstring); ``spread`` overrides the stationary start's width."""
    rng = np.random.default_rng(seed)
    if start == "transient":
        x = 2.0 + np.sqrt(0.1) * rng.standard_normal((n, dim))
    else:
        x = (spread or np.sqrt(temperature / a)) * rng.standard_normal((n, dim))
    xs = []
    for k in range(times):
        if k:
            h = dt / substeps
            for _ in range(substeps):
                x = x - a * x * h + np.sqrt(2 * temperature * h) * rng.standard_normal(x.shape)
        xs.append(x[rng.choice(n, n // 2, replace=False)] if fresh else rng.permutation(x))
    return Snapshots(np.concatenate(xs), np.repeat(np.arange(times) * dt, [len(p) for p in xs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| d | start | T | dt | truth | R (over seeds) | R₂/R | right |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 1.0
    for dim, start, temperature, dt, fresh in itertools.product(
        args.dims, ("transient", "stationary"), (0.1, 0.5), (0.01, 0.1), (True, False)
    ):
        n = 3000 if dim == 1 else 1200
        ratios, growths, right = [], [], 0
        for seed in range(args.seeds):
            data = ou_snapshots(n, temperature, dt=dt, start=start, fresh=fresh, dim=dim,
                                seed=seed)  # fmt: skip
            decision = decide_regime(data, "quadratic", seed=seed)
            ratios.append(decision.statistics["ratio"])
            growths.append(decision.statistics.get("growth_with_gap", np.nan))
            right += decision.regime == ("fresh" if fresh else "same")
        worst = min(worst, right / args.seeds)
        truth = "fresh" if fresh else "same"
        shown = " ".join(f"{r:.2f}" for r in ratios)
        grown = " ".join(f"{g:.2f}" for g in growths)
        print(f"| {dim} | {start} | {temperature} | {dt} | {truth} | {shown} | {grown} | "
              f"{right}/{args.seeds} |", flush=True)  # fmt: skip
    print(f"worst share right: {worst:.0%}")
    print("\n| potential | β | regime | R | R₂/R |\n|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for beta, name in itertools.product((0.0, 0.1), JKONET_POTENTIALS):
        x0 = rng.uniform(-4, 4, size=(1000, 2))
        x = simulate_system(name, n=1000, steps=5, dt=0.01, temperature=beta, dim=2, x0=x0).x
        xs = np.concatenate([x[rng.permutation(1000), k] for k in range(x.shape[1])])
        decision = decide_regime(Snapshots(xs, np.repeat(np.arange(x.shape[1]) * 0.01, 1000)))
        stats = decision.statistics
        growth = stats.get("growth_with_gap")
        print(f"| {name} | {beta} | {decision.regime} | {stats['ratio']:.2f} | "
              f"{'' if growth is None else f'{growth:.2f}'} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"{time.perf_counter() - start:.0f} s")
