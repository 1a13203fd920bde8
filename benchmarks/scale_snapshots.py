"""Snapshots of 10³ … 10⁵ particles per time (10⁶ with ``--large``): time, peak memory and
accuracy of the one-step snapshot fit when the couplings are minibatch exact OT.

The same particles move by Langevin dynamics in ``V(x) = |x|²/2`` (force ``−x``, ``T =
0.02``, step ``h = 0.05``) in d = 2 and d = 30, seen at 5 times without identities; each size
is fitted by ``iel.fit(data, "quadratic")`` (regime decided, ``--coupling auto``: exact up to
``EXACT_ENTRIES`` cost entries, minibatch beyond) in a fresh subprocess, so that its peak
resident memory (``ru_maxrss`` of the child, which includes Python, JAX and the data) is its
own.  Printed per size: wall time, peak memory, the fitted force's relative error
``‖F̂ − F‖/‖F‖`` over the snapshot particles, ``T̂/T``, the coupling used; where the exact plan
also runs (``n² ≤ EXACT_ENTRIES``) the fit is repeated with ``--coupling minibatch`` and the
ratio of force errors (minibatch / exact) is printed.  Then the growth exponent of time in N
past 10⁴ over the sizes fitted with the largest size's coupling (least squares on log–log;
``N log N`` reads as about 1.1 over 10⁴ … 10⁵).

Run: ``python benchmarks/scale_snapshots.py [--sizes 1000 10000 100000] [--dims 2 30]
[--large] [--docs]``.  Timings on a shared, loaded 2-core machine vary by 2× or more.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tables import command_line, markdown_table, write_markdown_table  # noqa: E402

TEMPERATURE, STEP, SNAPSHOTS = 0.02, 0.05, 5


def one(n: int, d: int, coupling: str, seed: int = 0) -> dict:
    """Simulate, fit and measure one size (run in a child process)."""
    import iel
    from iel.data.populations import Snapshots

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))  # the stationary law of V = |x|²/2 at T = 1, relaxing
    pops = [x]
    for _ in range(SNAPSHOTS - 1):
        x = x - STEP * x + np.sqrt(2 * TEMPERATURE * STEP) * rng.standard_normal((n, d))
        pops.append(x)
    data = Snapshots(np.concatenate(pops), np.repeat(np.arange(SNAPSHOTS) * STEP, n))
    del pops, x
    start = time.perf_counter()
    model = iel.fit(data, "quadratic", coupling=coupling)
    seconds = time.perf_counter() - start
    states = data.x[:: max(1, len(data.x) // 20000)]
    error = np.linalg.norm(np.asarray(model.force(states)) + states) / np.linalg.norm(states)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux → GB
    return {"n": n, "d": d, "coupling_asked": coupling, "seconds": seconds, "peak_gb": peak,
            "force_error": float(error), "temperature_ratio": model.temperature / TEMPERATURE,
            "coupling": model.diagnostics["coupling"],
            "regime": model.diagnostics["snapshot_regime"]}  # fmt: skip


def measure(n: int, d: int, coupling: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(n), str(d), coupling],
                         capture_output=True, text=True, check=False)  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"n = {n}, d = {d}, {coupling}: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000,
                                                                   100000])  # fmt: skip
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 30])
    parser.add_argument("--large", action="store_true", help="add 10⁶ particles per snapshot")
    parser.add_argument("--docs", action="store_true", help="write the docs table")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), int(args.one[1]), args.one[2])))
        return
    from iel.transport.couplings import EXACT_ENTRIES

    sizes = args.sizes + ([10**6] if args.large else [])
    rows, exponents = [], {}
    for d in args.dims:
        timed = []
        for n in sizes:
            result = measure(n, d, "auto")
            ratio = "—"
            if n * n <= EXACT_ENTRIES and d > 1:  # auto was exact: the minibatch fit beside it
                mini = measure(n, d, "minibatch")
                ratio = f"{mini['force_error'] / result['force_error']:.3g}"
                ratio += f" (T̂ {mini['temperature_ratio'] / result['temperature_ratio']:.3g})"
            method = result["coupling"].split(" (")[0]
            rows.append([d, f"{n:,}", f"{result['seconds']:.1f}", f"{result['peak_gb']:.2f}",
                         f"{result['force_error']:.3g}", f"{result['temperature_ratio']:.3g}",
                         ratio, method])  # fmt: skip
            print(" | ".join(map(str, rows[-1])), flush=True)
            timed.append((n, result["seconds"], method))
        # the growth of one coupling: the exact plan's rows (dense, slower) are not mixed in
        largest = timed[-1][2]
        past = [(n, s) for n, s, how in timed if n >= 10_000 and how == largest]
        if len(past) >= 2:
            slope = np.polyfit(np.log([n for n, _ in past]), np.log([s for _, s in past]), 1)[0]
            exponents[d] = slope
    header = ["d", "particles per snapshot", "time (s)", "peak memory (GB)", "force error",
              "T̂ / T", "minibatch / exact error (T̂)", "coupling"]  # fmt: skip
    print(markdown_table(header, rows))
    growth = "; ".join(f"d = {d}: time ∝ N^{s:.2f} past 10⁴ (the largest sizes' coupling)"
                       for d, s in exponents.items())  # fmt: skip
    print(growth)
    if args.docs:
        write_markdown_table(
            "scale_snapshots", "Snapshots of the same particles, 5 times, quadratic energy",
            header, rows, command=command_line(),
            notes=(f"Growth: {growth}. Peak memory is the child process's maximum resident "
                   "set (Python, JAX and the data included). Force error ‖F̂ − F‖/‖F‖ over "
                   "the snapshot particles; the minibatch/exact column repeats the fit with "
                   "`--coupling minibatch` where the exact plan also runs. Measured on a "
                   "shared, loaded 2-core machine."),
        )  # fmt: skip


if __name__ == "__main__":
    main()
