"""Müller–Brown off the benchmark's configuration: does ``energy="auto"`` find the global answer?

BENCHMARKS §B observes 0.1 × Müller–Brown at T = 1 from its three minima in turn (100
trajectories × 2000 steps, dt = 1e-4).  This sweep draws the same landscape at 0.3×, 1× and 3×
that temperature and from other start distributions, with fresh seeds, and fits each data set
with ``iel.fit(data, "auto")`` (or a fixed spec, ``--energy``):

  minima     the benchmark's: the three minima in turn;
  point      every trajectory from one point (the deepest minimum);
  gaussian   N((−0.15, 0.75), 0.4² I), the middle of the region;
  uniform    uniform over the system's box [−1.5, 1.2] × [−0.5, 2];
  scattered  five points drawn uniformly in the box per seed, trajectories from them in turn.

Scores: force relMSE ``Σ|F̂ − F|² / Σ|F|²`` on the centres of the cells of a 40 × 40 grid over
the training data's bounding box that hold at least 10 training states (the data region),
and, when the chosen family is ``expquad:M``, the centre distance: the largest distance between
a fitted centre and its partner true centre under the matching that minimises that largest
distance (the four true centres; 0 would be a perfect match).  Per configuration the median
and the worst over the seeds are printed, then over everything.

Run: ``python benchmarks/muller_brown_sweep.py [--seeds 0 1 2 3 4] [--temperatures 0.3 1 3]
[--starts minima point gaussian uniform scattered] [--n 100] [--steps 2000] [--energy auto]``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

import iel
from iel.demo import MULLER_BROWN_MINIMA
from iel.systems import get_system, simulate_system

TRUE_CENTRES = np.array([[1.0, 0.0], [0.0, 0.5], [-0.5, 1.5], [-1.0, 1.0]])
DEFAULT_T = 1.0
STARTS = ("minima", "point", "gaussian", "uniform", "scattered")


def starts(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` initial states of the named start distribution (module docstring)."""
    low, high = get_system("muller_brown").box
    if kind == "minima":
        return MULLER_BROWN_MINIMA[np.arange(n) % 3]
    if kind == "point":
        return np.tile(MULLER_BROWN_MINIMA[0], (n, 1))
    if kind == "gaussian":
        return np.array([-0.15, 0.75]) + 0.4 * rng.normal(size=(n, 2))
    if kind == "uniform":
        return rng.uniform(low, high, size=(n, 2))
    if kind == "scattered":
        return rng.uniform(low, high, size=(5, 2))[np.arange(n) % 5]
    raise ValueError(f"unknown start distribution {kind!r}; choose one of {STARTS}")


def dataset(temperature: float, kind: str, seed: int, n: int = 100, steps: int = 2000):
    """Müller–Brown trajectories at ``temperature`` from the ``kind`` starts (seeded)."""
    x0 = starts(kind, n, np.random.default_rng(1000 + seed))
    return simulate_system("muller_brown", n=n, steps=steps, dt=1e-4, temperature=temperature,
                           x0=x0, seed=seed)  # fmt: skip


def data_region(data, cells: int = 40, min_count: int = 10) -> np.ndarray:
    """Centres of the grid cells over the data's bounding box holding ≥ ``min_count`` states."""
    x = data.observed_states()
    low, high = x.min(axis=0), x.max(axis=0)
    counts, ex, ey = np.histogram2d(x[:, 0], x[:, 1], bins=cells, range=list(zip(low, high)))
    cx, cy = (ex[:-1] + ex[1:]) / 2, (ey[:-1] + ey[1:]) / 2
    gx, gy = np.meshgrid(cx, cy, indexing="ij")
    keep = counts >= min_count
    return np.stack([gx[keep], gy[keep]], axis=1)


def force_relmse(model, grid) -> float:
    f = np.asarray(get_system("muller_brown").energy.force(grid))
    return float(np.sum((np.asarray(model.force(grid)) - f) ** 2) / np.sum(f**2))


def centre_distance(model) -> float:
    """Bottleneck matching distance between fitted and true centres (nan if not expquad)."""
    lib = getattr(model.energy_module, "library", None)
    centres = getattr(lib, "centres", None)
    if centres is None:
        return float("nan")
    c = np.asarray(centres)
    dist = np.linalg.norm(c[:, None] - TRUE_CENTRES[None], axis=2)  # (M, 4)
    m, k = dist.shape
    best = np.inf
    if m <= k:
        for perm in itertools.permutations(range(k), m):
            best = min(best, max(dist[i, j] for i, j in enumerate(perm)))
    else:  # more fitted terms than true ones: every true centre needs a partner
        for perm in itertools.permutations(range(m), k):
            best = min(best, max(dist[i, j] for j, i in enumerate(perm)))
    return float(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.3, 1.0, 3.0],
                        help="multiples of the benchmark's T = 1")  # fmt: skip
    parser.add_argument("--starts", nargs="+", default=list(STARTS), choices=STARTS)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--energy", default="auto")
    args = parser.parse_args()
    print(f"{'T':>5} {'starts':<10} {'seed':>4} {'chosen':<28} {'relMSE':>9} {'centre d':>8} "
          f"{'time s':>7}")  # fmt: skip
    every = []
    for factor, kind in itertools.product(args.temperatures, args.starts):
        rows = []
        for seed in args.seeds:
            data = dataset(factor * DEFAULT_T, kind, seed, args.n, args.steps)
            start = time.perf_counter()
            model = iel.fit(data, args.energy)
            seconds = time.perf_counter() - start
            err, dist = force_relmse(model, data_region(data)), centre_distance(model)
            chosen = model.energy_spec.replace("auto → ", "")
            print(f"{factor:>5g} {kind:<10} {seed:>4} {chosen:<28} {err:>9.3e} {dist:>8.3f} "
                  f"{seconds:>7.1f}", flush=True)  # fmt: skip
            rows.append((err, dist, seconds))
        errs = np.array([r[0] for r in rows])
        print(f"{factor:>5g} {kind:<10} relMSE median {np.median(errs):.3e} worst "
              f"{errs.max():.3e}", flush=True)  # fmt: skip
        every += rows
    errs = np.array([r[0] for r in every])
    dists = np.array([r[1] for r in every])
    secs = np.array([r[2] for r in every])
    print(
        f"all: relMSE median {np.median(errs):.3e} worst {errs.max():.3e}; centre distance "
        f"median {np.nanmedian(dists):.3f} worst {np.nanmax(dists):.3f}; fit time median "
        f"{np.median(secs):.1f} s, worst {secs.max():.1f} s (noisy shared machine)"
    )


if __name__ == "__main__":
    main()
