"""Snapshot estimators beyond the one-step OT pairing, each against its reference in one run.

1. Couplings: the exact plan (POT network simplex) against entropic Sinkhorn (iel's
   log-domain solver, float32) on the same populations: time ratio and how far the Sinkhorn
   destinations are from the exact ones (relative to the mean displacement).
2. Re-sampled populations (fresh samples at every time, exact Ornstein–Uhlenbeck marginals,
   ``V = x²/2``, ``T = 0.5``): the JKO condition with its entropy term (:mod:`resampled`)
   against the tracked-particle estimator on the same data, relative errors of ``a`` and ``T``.
3. Long gaps (double well, Langevin T = 0.1, a snapshot every 25 steps of 0.005): one step on
   OT pairs against the Sinkhorn rollout — force relMSE on [−1.5, 1.5] and ``T̂``.

4. ``--large N`` instead: Sinkhorn on ``N`` particles per snapshot, OTT-JAX's dense solver
   (the whole kernel held) against iel's (the cost a block of about 2²⁴ entries at a time:
   ``iel.estimators.couplings.online_rows``), each in its own process: seconds and peak
   resident memory, and the ratio of each.

Run: ``python benchmarks/snapshot_estimators.py`` (about 5 minutes on 2 cores), or
``python benchmarks/snapshot_estimators.py --large 16000`` (about 12 minutes); ``--docs`` also
writes the tables to ``docs/benchmarks/generated/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _tables import write_markdown_table

import iel
from iel.data import Snapshots
from iel.estimators.snapshots.onestep import SnapshotOneStep
from iel.estimators.snapshots.resampled import fit_resampled
from iel.estimators.snapshots.rollout import SnapshotRollout
from iel.systems import simulate_system
from iel.transport.couplings import couple


def couplings(n: int = 2000) -> list[tuple]:
    rng = np.random.default_rng(0)
    a = rng.uniform(-4, 4, size=(n, 2))
    b = (a - 0.01 * a**3)[rng.permutation(n)]
    couple(a[:50], b[:50], "sinkhorn")  # compile
    start = time.perf_counter()
    exact, _ = couple(a, b, "exact")
    t_exact = time.perf_counter() - start
    start = time.perf_counter()
    entropic, how = couple(a, b, "sinkhorn")
    t_sinkhorn = time.perf_counter() - start
    shift = np.mean(np.linalg.norm(exact - a, axis=1))
    gap = np.mean(np.linalg.norm(entropic - exact, axis=1))
    print(f"## couplings, {n} particles in 2-D\n")
    print(f"exact {t_exact:.2f} s, {how}: {t_sinkhorn:.2f} s "
          f"(ratio {t_sinkhorn / t_exact:.0f}×); Sinkhorn destinations off the exact ones by "
          f"{gap / shift:.1%} of the mean displacement\n")  # fmt: skip
    return [(n, f"{t_exact:.2f}", how, f"{t_sinkhorn:.2f}", f"{t_sinkhorn / t_exact:.0f}×",
             f"{gap / shift:.1%}")]  # fmt: skip


def resampled() -> list[tuple]:
    print("## re-sampled Ornstein–Uhlenbeck populations (a = 1, T = 0.5, 6 snapshots, h = 0.1)\n")
    print("| particles per snapshot | estimator | a error | T error | s |\n|---|---|---|---|---|")
    table = []
    for n in (2000, 20000):
        rng = np.random.default_rng(1)
        xs = []
        times = np.arange(6) * 0.1
        for t in times:
            var = 0.5 + (0.1 - 0.5) * np.exp(-2 * t)
            xs.append(2.0 * np.exp(-t) + np.sqrt(var) * rng.standard_normal((n, 1)))
        data = Snapshots(np.concatenate(xs), np.repeat(times, n))
        estimators = {
            "entropy term": lambda d: fit_resampled(d, "poly:2"),
            "tracked pairing": lambda d: SnapshotOneStep("poly:2").fit(d).model_,
        }
        for name, fit in estimators.items():
            start = time.perf_counter()
            model = fit(data)
            seconds = time.perf_counter() - start
            a_err = abs(2 * dict(model.energy_module.terms()).get("x0^2", 0.0) - 1)
            t_err = abs(model.temperature - 0.5) / 0.5
            print(f"| {n} | {name} | {a_err:.1%} | {t_err:.1%} | {seconds:.1f} |")
            table.append((n, name, f"{a_err:.1%}", f"{t_err:.1%}", f"{seconds:.1f}"))
    print()
    return table


def long_gaps() -> tuple[list[tuple], str]:
    data = simulate_system("double_well", n=1000, steps=100, dt=0.005, temperature=0.1,
                           snapshots=True, save_every=25, seed=0)  # fmt: skip
    truth = iel.get_system("double_well").energy
    grid = np.linspace(-1.5, 1.5, 61)[:, None]
    f_true = np.asarray(truth.force(grid))
    print("## long gaps: double well, T = 0.1, snapshots 25 steps apart\n")
    spread = ", ".join(f"{np.var(p):.3f}" for p in data.populations())
    print(f"population variance per snapshot: {spread}\n")
    # near-stationary populations identify E/T better than E and T apart: report the fitted
    # force's least-squares scale against the true one and the error after removing it
    print("| estimator | force relMSE | T̂ | force scale | relMSE after rescaling | s |\n"
          "|---|---|---|---|---|---|")  # fmt: skip
    table = []
    for name, est in (("one step on OT pairs", SnapshotOneStep("poly:4")),
                      ("Sinkhorn rollout", SnapshotRollout("poly:4", steps=300))):  # fmt: skip
        start = time.perf_counter()
        model = est.fit(data).model_
        seconds = time.perf_counter() - start
        force = np.asarray(model.force(grid))
        err = np.mean((force - f_true) ** 2) / np.mean(f_true**2)
        scale = float(np.sum(force * f_true) / np.sum(f_true**2))
        shape = np.mean((force / scale - f_true) ** 2) / np.mean(f_true**2)
        print(f"| {name} | {err:.3f} | {model.temperature:.3f} | {scale:.2f} | {shape:.4f} | "
              f"{seconds:.1f} |")  # fmt: skip
        table.append((name, f"{err:.3f}", f"{model.temperature:.3f}", f"{scale:.2f}",
                      f"{shape:.4f}", f"{seconds:.1f}"))  # fmt: skip
    print()
    return table, spread


def ott_dense_targets(source: np.ndarray, target: np.ndarray, epsilon: float) -> np.ndarray:
    """The reference: barycentric destinations under OTT-JAX's dense Sinkhorn plan (float32,
    the threshold iel's solver uses)."""
    import jax
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    from iel.transport.couplings import (
        SINKHORN_ITERATIONS,
        SINKHORN_THRESHOLD,
    )

    geom = pointcloud.PointCloud(jnp.asarray(source, jnp.float32),
                                 jnp.asarray(target, jnp.float32), epsilon=epsilon)  # fmt: skip
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        solve = sinkhorn.Sinkhorn(max_iterations=SINKHORN_ITERATIONS, threshold=SINKHORN_THRESHOLD)
        out = solve(linear_problem.LinearProblem(geom))
        moved = np.asarray(out.apply(jnp.asarray(target.T, jnp.float32), axis=1)).T
        mass = np.asarray(out.apply(jnp.ones((1, len(target)), jnp.float32), axis=1)).T
    assert bool(out.converged), "OTT's Sinkhorn did not converge"
    return moved.astype(float) / np.maximum(mass, 1e-30)


def large_coupling_run(n: int, rows: int | None) -> tuple[float, float, np.ndarray]:
    """Seconds, peak resident memory (GB) and destinations of one Sinkhorn coupling of ``n``
    particles (``rows``: ``None`` OTT's dense solver, else iel's with that many rows of the
    cost at a time), compiled first on a small problem.  Meant to run alone in a process, so
    that the peak is its own."""
    import resource

    from iel.transport.couplings import (
        entropic_targets,
        sinkhorn_epsilon,
    )

    def solve(a, b, block):
        if rows is None:
            return ott_dense_targets(a, b, sinkhorn_epsilon(a, b))
        return entropic_targets(a, b, rows=block)[0]

    rng = np.random.default_rng(0)
    a = rng.uniform(-4, 4, size=(n, 2))
    b = (a - 0.01 * a**3)[rng.permutation(n)]
    solve(a[:500], b[:500], 64)
    start = time.perf_counter()
    dest = solve(a, b, rows)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, dest


def large_couplings(n: int) -> tuple[list[tuple], str]:
    import subprocess
    import sys
    import tempfile

    from iel.transport.couplings import online_rows

    rows = online_rows(n, n)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        runs = (("OTT, dense", "None"), (f"iel, {rows} rows at a time", str(rows)))
        for index, (name, arg) in enumerate(runs):
            saved = f"{folder}/{index}.npy"
            code = (f"import numpy as np, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    "from snapshot_estimators import large_coupling_run; "
                    f"s, gb, d = large_coupling_run({n}, {arg}); "
                    f"np.save({saved!r}, d); print(s, gb)")  # fmt: skip
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                results[name] = None
                print(f"{name}: failed ({out.stderr.strip().splitlines()[-1]})")
                continue
            seconds, gb = map(float, out.stdout.split()[-2:])
            results[name] = (seconds, gb, np.load(saved))
    print(f"## Sinkhorn couplings, {n} particles in 2-D\n")
    print("| kernel | s | peak GB |\n|---|---|---|")
    table = []
    for name, result in results.items():
        if result is not None:
            print(f"| {name} | {result[0]:.1f} | {result[1]:.2f} |")
            table.append((name, f"{result[0]:.1f}", f"{result[1]:.2f}"))
    dense, online = results.values()
    ratios = ""
    if dense is not None and online is not None:
        gap = np.max(np.abs(dense[2] - online[2]))
        ratios = (
            f"ratio (iel / OTT): time {online[0] / dense[0]:.2f}, memory "
            f"{online[1] / dense[1]:.2f}; destinations differ by at most {gap:.1e}"
        )
        print(f"\n{ratios}")
    return table, ratios


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=None,
                        help="only: dense against blockwise Sinkhorn on N particles")  # fmt: skip
    parser.add_argument("--docs", action="store_true",
                        help="also write the tables to docs/benchmarks/generated/")  # fmt: skip
    args = parser.parse_args()
    if args.large:
        large, ratios = large_couplings(args.large)
        if args.docs:
            write_markdown_table(
                f"snapshot_estimators_large_{args.large}",
                f"Sinkhorn couplings of {args.large} particles in 2-D: OTT-JAX dense against iel",
                ["kernel", "s", "peak GB"], large, notes=ratios,
            )  # fmt: skip
    else:
        coupled = couplings()
        resampled_rows = resampled()
        gaps, spread = long_gaps()
        if args.docs:
            write_markdown_table(
                "snapshot_estimators_couplings", "Couplings: exact against Sinkhorn",
                ["particles", "exact s", "entropic solver", "entropic s", "ratio",
                 "destinations off by (share of mean displacement)"], coupled,
            )  # fmt: skip
            write_markdown_table(
                "snapshot_estimators_resampled",
                "Re-sampled Ornstein–Uhlenbeck populations (a = 1, T = 0.5, 6 snapshots)",
                ["particles per snapshot", "estimator", "a error", "T error", "s"],
                resampled_rows,
            )  # fmt: skip
            write_markdown_table(
                "snapshot_estimators_long_gaps",
                "Long gaps: double well, T = 0.1, snapshots 25 steps apart",
                ["estimator", "force relMSE", "T̂", "force scale", "relMSE after rescaling", "s"],
                gaps, notes=f"Population variance per snapshot: {spread}.",
            )  # fmt: skip
