"""Out-of-core trajectories: the streamed closed form from 10⁴ to 10⁸ transitions (issue 27).

Protocol: the 2-D double well ``E = Σ_j (x_j² − 1)²`` (``iel.systems``'s ``double_well`` in
d = 2), Langevin at ``T = 0.5`` by Euler–Maruyama with ``dt = 0.01``, trajectories of 1 000 steps
started uniformly in ``[−2, 2]²``.  Each data set is written to a ``.npy`` on disk a block of
trajectories at a time (generating it is bounded in memory too), then fitted with
``poly:4`` (the true family) by

* *streamed*: ``iel.open_trajectories(path, dt)`` + :class:`iel.StreamedClosedForm` (chunks of
  40 960 transitions, one pass, the file memory-mapped);
* *in memory* (reference, up to ``--memory-max`` transitions): ``np.load`` +
  :class:`iel.Trajectories` + :class:`iel.OneStepClosedForm`.

Each fit runs in a fresh Python process, so the peak memory is its own: the peak resident set
size ``VmHWM`` from ``/proc/self/status`` (the kernel's high-water mark of the process's
memory, which includes JAX and the libraries: ~0.4 GiB before any data; ``getrusage``'s
``ru_maxrss`` where there is no ``/proc``), reported in full and as the growth
above the same process's peak right after ``import iel`` (the compiled programs of the warm-up
fit count in it: compile before timing, the warm-up fits the same file, or the 10⁶ file above
10⁷).  Times include reading the file (warm in the page cache:
it was just written).  Printed per size: time, peak RSS, the force error
``√(Σ|F̂ − F|² / Σ|F|²)`` on 20 000 of the data states, ``T̂ / T − 1``; for the reference the
time ratio and the largest relative difference of the coefficients.  Growth exponents are the
least-squares slopes of log time and log (peak − peak after the import) against log N from 10⁵ on.

Run: ``python benchmarks/scale_trajectories.py [--large] [--docs]`` (``--large`` adds 10⁸:
a 1.6 GB file in the temporary folder).  Timings on a loaded machine vary by tens of percent;
the exponents and ratios are the figures to read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _tables import write_markdown_table

DT, TEMPERATURE, STEPS, DIM = 0.01, 0.5, 1000, 2
SPEC = "poly:4"
BLOCK = 2000  # trajectories simulated and written at a time


def true_force(x: np.ndarray) -> np.ndarray:
    """``−∇E`` of ``Σ (x_j² − 1)²``."""
    return -4.0 * x * (x**2 - 1.0)


def write_data(path: Path, n_transitions: int, seed: int = 0) -> None:
    """``n_transitions / STEPS`` trajectories of ``STEPS`` steps into a ``.npy``, written
    ``BLOCK`` trajectories at a time through ``np.lib.format.open_memmap``."""
    n = max(1, n_transitions // STEPS)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, STEPS + 1, DIM))
    rng = np.random.default_rng(seed)
    scale = np.sqrt(2 * TEMPERATURE * DT)
    for lo in range(0, n, BLOCK):
        m = min(BLOCK, n - lo)
        block = np.empty((m, STEPS + 1, DIM))
        block[:, 0] = rng.uniform(-2.0, 2.0, size=(m, DIM))
        for k in range(STEPS):
            s = block[:, k]
            block[:, k + 1] = s + DT * true_force(s) + scale * rng.standard_normal((m, DIM))
        out[lo : lo + m] = block
    out.flush()
    del out


def _peak_mib() -> float:
    """This process's peak resident set: ``VmHWM`` of ``/proc/self/status`` on Linux (the
    high-water mark of its own address space; ``getrusage``'s ``ru_maxrss`` also carries the
    parent's peak across fork and exec), ``getrusage`` elsewhere."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def worker(mode: str, path: str, warm_path: str) -> None:
    """One fit in this process; prints a JSON line."""
    import iel

    def fit(p: str):
        if mode == "streamed":
            return iel.StreamedClosedForm(SPEC).fit(iel.open_trajectories(p, dt=DT)).model_
        x = np.load(p)
        return iel.OneStepClosedForm(SPEC).fit(iel.Trajectories(x, dt=DT)).model_

    base_peak = _peak_mib()  # after importing iel (JAX, the libraries): no data yet
    fit(warm_path)  # compile before timing
    start = time.perf_counter()
    model = fit(path)
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    x = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(1)
    total = x.shape[0] * x.shape[1]
    pick = np.sort(rng.choice(total, min(total, 20_000), replace=False))
    states = np.asarray(x.reshape(-1, DIM)[pick])
    truth = true_force(states)
    error = float(np.sqrt(np.sum((np.asarray(model.force(states)) - truth) ** 2)
                          / np.sum(truth**2)))  # fmt: skip
    print(json.dumps({
        "seconds": seconds, "peak_mib": peak, "base_peak_mib": base_peak,
        "force_error": error, "temperature": model.temperature,
        "theta": np.asarray(model.energy_module.theta).tolist(),
        "n_transitions": model.diagnostics["n_transitions"],
        "chunks": model.diagnostics.get("streamed", {}).get("n_chunks"),
    }))  # fmt: skip


def run_worker(mode: str, path: Path, warm: Path) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path), str(warm)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"worker {mode} {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(ns, values) -> float:
    keep = [(n, v) for n, v in zip(ns, values) if n >= 1e5 and v > 0]
    if len(keep) < 2:
        return float("nan")
    a, b = np.log([k[0] for k in keep]), np.log([k[1] for k in keep])
    return float(np.polyfit(a, b, 1)[0])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="add 10^8 transitions (1.6 GB)")
    parser.add_argument("--memory-max", type=float, default=1e7,
                        help="largest size fitted in memory as the reference")  # fmt: skip
    parser.add_argument("--docs", action="store_true", help="write the docs table")
    args = parser.parse_args()
    sizes = [10**4, 10**5, 10**6, 10**7] + ([10**8] if args.large else [])
    rows, table = [], []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = {}
        for n in sizes:
            files[n] = folder / f"double_well_{n:.0e}.npy"
            start = time.perf_counter()
            write_data(files[n], n, seed=n % 9973)
            print(f"wrote {n:.0e} transitions ({files[n].stat().st_size / 2**20:.0f} MiB) in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
        for n in sizes:
            warm = files[n] if n <= 10**7 else files[10**6]
            s = run_worker("streamed", files[n], warm)
            row = {"n": n, "streamed": s, "memory": None}
            if n <= args.memory_max:
                m = run_worker("memory", files[n], warm)
                theta_s, theta_m = np.asarray(s["theta"]), np.asarray(m["theta"])
                m["coef_diff"] = float(np.max(np.abs(theta_s - theta_m)) / np.max(np.abs(theta_m)))
                row["memory"] = m
            rows.append(row)
            mem = row["memory"]
            print(
                f"N = {n:.0e}: streamed {s['seconds']:.2f} s, peak {s['peak_mib']:.0f} MiB "
                f"(+{s['peak_mib'] - s['base_peak_mib']:.0f} over the import), "
                f"{s['chunks']} chunks, "
                f"force error {s['force_error']:.4f}, T̂/T − 1 = "
                f"{s['temperature'] / TEMPERATURE - 1:+.4f}"
                + (f"; in memory {mem['seconds']:.2f} s, peak {mem['peak_mib']:.0f} MiB, time "
                   f"ratio streamed/in-memory {s['seconds'] / mem['seconds']:.2f}, coefficients "
                   f"agree to {mem['coef_diff']:.1e}" if mem else ""),
                flush=True,
            )  # fmt: skip
            table.append([
                f"{n:.0e}", f"{s['seconds']:.2f}", f"{s['peak_mib']:.0f}",
                f"{s['peak_mib'] - s['base_peak_mib']:.0f}", str(s["chunks"]),
                f"{s['force_error']:.4f}", f"{s['temperature'] / TEMPERATURE - 1:+.4f}",
                f"{mem['seconds']:.2f}" if mem else "—",
                f"{mem['peak_mib']:.0f}" if mem else "—",
                f"{s['seconds'] / mem['seconds']:.2f}" if mem else "—",
                f"{mem['coef_diff']:.1e}" if mem else "—",
            ])  # fmt: skip
    ns = [r["n"] for r in rows]
    time_exp = slope(ns, [r["streamed"]["seconds"] for r in rows])
    growth = [max(r["streamed"]["peak_mib"] - r["streamed"]["base_peak_mib"], 1.0) for r in rows]
    mem_exp = slope(ns, growth)
    load = os.getloadavg()[0]
    summary = (
        f"growth exponents from 10⁵ on (log-log slopes): time ∝ N^{time_exp:.2f}, peak memory "
        f"above the import ∝ N^{mem_exp:.2f} (1 MiB floor); load average (1 min) at the end "
        f"{load:.1f} on {os.cpu_count()} cores"
    )
    print(summary)
    if args.docs:
        write_markdown_table(
            "scale_trajectories" + ("_large" if args.large else ""),
            "Streamed closed form: 2-D double well, poly:4, T = 0.5",
            ["transitions", "streamed s", "peak RSS MiB", "+ over import", "chunks",
             "force error", "T̂/T − 1", "in-memory s", "in-memory peak MiB",
             "time ratio", "coef. agree"],
            table,
            notes=summary + ". Peak RSS: `VmHWM` (high-water mark) of a fresh process per fit "
            "(JAX and libraries included); time includes reading the memory-mapped file.",
        )  # fmt: skip


if __name__ == "__main__":
    main()
