"""Minibatch exact optimal transport: couplings of 10⁵–10⁶ particles that never build the
``n × m`` cost matrix.

The exact plan between two snapshots of ``n`` particles needs an ``n × m`` cost matrix (80 GB
in float64 at ``n = m = 10⁵``).  Minibatch OT solves exact problems of at most ``B`` particles
each and joins their plans; memory is ``O(B²)`` per block (two ``B × B`` float64 arrays,
64 MB at ``B = 2048``) and time ``n/B`` exact solves.  For equal sizes every block holds as many
sources as targets, each block's plan is a permutation, and so is their union: each particle is
paired with one particle of the next snapshot, as by the exact plan.

**Which minibatches.**  Flow-matching methods (Tong et al. 2023, *Improving and generalizing
flow-based generative models with minibatch optimal transport*) draw the minibatches at random.
A random batch of ``B`` out of ``n`` holds a particle's true partner with probability ``B/n``
(2 % at ``B = 2048``, ``n = 10⁵``): its pairs are pairs of two independent samples of size
``B``, displaced by the samples' own differences, and the Brownian increments the one-step
fit and the temperature read from same-particle pairs are lost
(:func:`random_minibatch_targets` is kept to measure that bias).  Here the batches are *local*
(:func:`minibatch_targets`): both snapshots are cut by the same recursive bisection — at the
source's median along its widest axis, the target at the matching quantile along the same
axis (the monotone rearrangement of the two marginals on that axis), until a cell holds at
most ``B`` sources — so that a particle and its partner, close when the step is small, share a
cell except near the cuts.  Then ``sweeps`` of domain decomposition (Benamou 1994; Bonafini &
Schmitzer 2021) repair the pairs near the cuts: the current pairs are cut again, by their
midpoints in a randomly rotated frame so that the new cuts cross the old cells, and each cell's
sources are re-paired exactly with their cell's current partners.  Each sweep solves problems
whose current pairing is feasible, so the total cost ``Σ‖x_i − y_σ(i)‖²`` never increases; it
stops when a sweep lowers it by less than :data:`SWEEP_TOLERANCE` (relative).

**Bias.**  Minibatch OT is not the full OT plan: it is the best pairing among those that pair
within the cells.  Its cost is above the exact one, and the excess is what the pairing puts
into the displacements.  ``benchmarks/scale_snapshots.py`` measures it against the exact plan
where both run (the share of particles paired differently, the excess cost, the fitted force
and temperature from both); ``tests/test_large_snapshots.py`` bounds it on a small case.

Unequal sizes: the target is cut at the quantiles matching the source's counts, each cell's
plan has uniform weights, and each source gets its barycentric destination in its cell (no
sweeps: the pairing is not a permutation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import ot
from scipy.optimize import linear_sum_assignment

MINIBATCH = 1024  # particles per block, at most: two 1024² float64 arrays (cost, plan), 16 MB
SWEEPS = 4  # domain-decomposition sweeps after the first pass, at most
WORST_ROUNDS = 8  # blocks of the costliest pairs re-paired among themselves per sweep, at most
SWEEP_TOLERANCE = 1e-3  # a sweep that lowers the total cost by less (relative) ends them
PARTITIONS = ("local", "random")


@dataclass
class MinibatchReport:
    """How a minibatch coupling was made: block size asked for, blocks solved, the largest
    block (sources × targets; the largest cost matrix built), sweeps run and the total cost
    ``Σ_i ‖x_i − T(x_i)‖²/n`` after each pass."""

    batch: int
    partition: str
    blocks: int = 0
    largest_block: tuple[int, int] = (0, 0)
    sweeps: int = 0
    costs: list[float] = field(default_factory=list)

    def solved(self, sources: int, targets: int) -> None:
        self.blocks += 1
        if sources * targets > self.largest_block[0] * self.largest_block[1]:
            self.largest_block = (sources, targets)


def _block_plan(source: np.ndarray, target: np.ndarray, report: MinibatchReport) -> np.ndarray:
    """The exact plan between two blocks (uniform weights, squared Euclidean cost)."""
    s, t = len(source), len(target)
    cost = _cost_matrix(source, target, report)
    return np.asarray(ot.emd(np.full(s, 1.0 / s), np.full(t, 1.0 / t), cost,
                             numItermax=10_000_000))  # fmt: skip


def _block_partners(source: np.ndarray, target: np.ndarray,
                    report: MinibatchReport) -> np.ndarray:  # fmt: skip
    """For blocks of equal sizes, the column of each source's partner in the exact plan: with
    uniform weights that plan is a permutation (a vertex of the Birkhoff polytope), found by
    the Jonker–Volgenant assignment (``scipy.optimize.linear_sum_assignment``) — the same
    optimum as the network simplex, 5–7× faster on blocks of 700–1024 particles."""
    if len(source) != len(target):
        return np.argmax(_block_plan(source, target, report), axis=1)
    _, columns = linear_sum_assignment(_cost_matrix(source, target, report))
    return columns


def _cost_matrix(source: np.ndarray, target: np.ndarray, report: MinibatchReport) -> np.ndarray:
    """The block's squared Euclidean costs, ``len(source) × len(target)``: the largest array
    a minibatch coupling builds (every block solved goes through here and is counted)."""
    report.solved(len(source), len(target))
    return ot.dist(source, target, metric="sqeuclidean")


def bisection_cells(source: np.ndarray, target: np.ndarray, batch: int,
                    frame: np.ndarray | None = None) -> list[tuple[np.ndarray, ...]]:  # fmt: skip
    """Cells ``(source indices, target indices)`` of at most ``batch`` sources each, cut by
    recursive bisection: the source at its median along its widest axis (of ``source @
    frame``, the coordinates when ``frame`` is ``None``), the target at the matching quantile
    (``⌊m·k/n⌉`` of its ``m`` points below for the source's ``k`` of ``n``) along the same
    axis.  ``O((n + m) log(n/B))`` time, no pairwise array."""
    xs = source if frame is None else source @ frame
    ys = target if frame is None else target @ frame
    cells, stack = [], [(np.arange(len(source)), np.arange(len(target)))]
    while stack:
        i, j = stack.pop()
        if len(i) <= batch or len(j) == 0:
            cells.append((i, j))
            continue
        axis = int(np.argmax(np.ptp(xs[i], axis=0)))
        k = len(i) // 2
        kt = int(round(len(j) * k / len(i)))
        i = i[np.argpartition(xs[i, axis], k)]
        j = j[np.argpartition(ys[j, axis], min(kt, len(j) - 1))] if len(j) > 1 else j
        stack += [(i[:k], j[:kt]), (i[k:], j[kt:])]
    return cells


def _mean_cost(source: np.ndarray, destinations: np.ndarray) -> float:
    return float(np.mean(np.sum((source - destinations) ** 2, axis=1)))


def _random_frame(d: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation of ``d`` coordinates (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def minibatch_targets(source: np.ndarray, target: np.ndarray, batch: int = MINIBATCH,
                      sweeps: int = SWEEPS, seed: int = 0,
                      partition: str = "local") -> tuple[np.ndarray, MinibatchReport]:  # fmt: skip
    """Destinations of the ``source`` particles in ``target`` by minibatch exact OT (module
    docstring), and a :class:`MinibatchReport`.  ``partition="random"`` draws the blocks at
    random (flow matching's minibatches, no sweeps) — kept to measure their bias.

    For equal sizes the destinations are a permutation of ``target``.  No array larger than
    the largest block's ``sources × targets`` (about ``batch²``) is built."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    if batch < 2:
        raise ValueError(f"batch must be at least 2 particles, got {batch}")
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target must be (n, d) and (m, d), got {source.shape} "
                         f"and {target.shape}")  # fmt: skip
    if partition == "random":
        return random_minibatch_targets(source, target, batch, seed)
    n, m = len(source), len(target)
    report = MinibatchReport(batch, partition)
    rng = np.random.default_rng(seed)
    if n != m:
        destinations = np.empty_like(source)
        for i, j in bisection_cells(source, target, batch):
            if len(j) == 0:  # a cell of sources the rounding left without targets
                j = np.array([int(np.argmin(np.sum((target - source[i].mean(0)) ** 2, 1)))])
            plan = _block_plan(source[i], target[j], report)
            destinations[i] = (plan @ target[j]) / plan.sum(axis=1, keepdims=True)
        report.costs.append(_mean_cost(source, destinations))
        return destinations, report
    partner = np.empty(n, dtype=np.int64)
    for i, j in bisection_cells(source, target, batch):
        partner[i] = j[_block_partners(source[i], target[j], report)]
    report.costs.append(_mean_cost(source, target[partner]))
    for _ in range(sweeps):
        # the costliest pairs first, in one block, while that lowers the cost (pairs made
        # wrong by a cut hold one another's partners: far apart, but all among the
        # costliest), then every pair, in cells cut at their midpoints in a rotated frame
        for _ in range(WORST_ROUNDS):
            costs = np.sum((source - target[partner]) ** 2, axis=1)
            i = np.argpartition(costs, n - min(n, batch))[n - min(n, batch) :]
            j = partner[i]
            partner[i] = j[_block_partners(source[i], target[j], report)]
            before, after = costs[i].sum(), np.sum((source[i] - target[partner[i]]) ** 2)
            if before - after <= SWEEP_TOLERANCE * costs.sum():
                break
        middle = 0.5 * (source + target[partner])
        frame = _random_frame(source.shape[1], rng)
        for i, _j in bisection_cells(middle, middle, batch, frame):
            j = partner[i]
            partner[i] = j[_block_partners(source[i], target[j], report)]
        report.sweeps += 1
        report.costs.append(_mean_cost(source, target[partner]))
        if report.costs[-2] - report.costs[-1] <= SWEEP_TOLERANCE * report.costs[-2]:
            break
    return target[partner], report


def random_minibatch_targets(source: np.ndarray, target: np.ndarray, batch: int = MINIBATCH,
                             seed: int = 0) -> tuple[np.ndarray, MinibatchReport]:  # fmt: skip
    """Flow matching's minibatch OT: both snapshots shuffled and cut into blocks of ``batch``
    (target blocks of proportional size), the exact plan in each, barycentric destinations.
    Its pairs are pairs of independent samples of ``batch`` particles (module docstring)."""
    n, m = len(source), len(target)
    rng = np.random.default_rng(seed)
    report = MinibatchReport(batch, "random")
    blocks = max(1, int(np.ceil(n / batch)))
    rows, cols = rng.permutation(n), rng.permutation(m)
    source_cuts = np.linspace(0, n, blocks + 1).round().astype(int)
    target_cuts = np.linspace(0, m, blocks + 1).round().astype(int)
    destinations = np.empty_like(source)
    for b in range(blocks):
        i = rows[source_cuts[b] : source_cuts[b + 1]]
        j = cols[target_cuts[b] : target_cuts[b + 1]]
        plan = _block_plan(source[i], target[j], report)
        destinations[i] = (plan @ target[j]) / plan.sum(axis=1, keepdims=True)
    report.costs.append(_mean_cost(source, destinations))
    return destinations, report
