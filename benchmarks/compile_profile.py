"""Where a first snapshot fit spends its compiling: programs compiled and seconds by program,
and each suite fit's cold and warm time.

Fits one potential of the JKOnet* suite (``benchmarks/jkonet_suite.py``'s data: 1000 training
particles, 6 snapshots, d = 2) with ``iel.fit(snapshots)`` in this process.  ``--cache``:
``off`` (no persistent compilation cache: every program compiled, as a first ``iel fit``
with ``IEL_COMPILATION_CACHE=0``), ``new`` (the default: a new temporary folder, every program
compiled and written), or a folder (the same folder twice gives the warm figure).  JAX's
compile log (``jax_log_compiles``) is read for each program's XLA compilation and its
conversion to MLIR; the table lists the programs with the most seconds.  Many small programs
compiled one primitive at a time mean eager code on a new shape.

``--suite`` runs each potential in fresh processes instead and prints one row per potential:
the cold fit (an empty compilation cache, as a first ``iel fit``: every program compiled) and
the warm fit (a second process on the cache the first one filled), each the minimum over
``--repeats`` pairs of processes (wall time is noisy on a shared machine: the
program count and the compile seconds JAX reports are the steadier figures), the programs
compiled cold, the seconds JAX spent compiling them (XLA and MLIR conversion), the fit's CPU
seconds (less sensitive to other load than wall time) and the suite's error (the one-step W1 of
``benchmarks/jkonet_suite.py``), to check that a change to compiling left the fits as they
were.

Run: ``python benchmarks/compile_profile.py [--potential ishigami] [--cache off|new|DIR]
[--top 15]`` or ``python benchmarks/compile_profile.py --suite [--potentials …] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FINISHED = re.compile(r"Finished (XLA compilation|jaxpr to MLIR module conversion)(?: of)? (.*?) "
                      r"in ([0-9.e-]+) sec")  # fmt: skip


class _CompileLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seconds = collections.defaultdict(float)
        self.counts = collections.Counter()

    def emit(self, record):
        found = FINISHED.search(record.getMessage())
        if found:
            stage, program, seconds = found.groups()
            self.seconds[(stage.split()[0], program)] += float(seconds)
            self.counts[(stage.split()[0], program)] += 1


def profile(potential: str, cache: str) -> tuple[dict, _CompileLog]:
    """Fit ``potential`` in this process with the compile log on; the figures and the log."""
    import numpy as np
    from jkonet_suite import one_step_w1, simulate, split_snapshots

    import iel

    folder = None
    if cache != "off":
        folder = tempfile.mkdtemp(prefix="iel-compile-profile-") if cache == "new" else cache
        iel.enable_compilation_cache(folder)
    snaps, test = split_snapshots(simulate(potential, 2000, 2, 0.0, seed=0))
    import jax

    log = _CompileLog()
    for name in ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler"):
        logging.getLogger(name).addHandler(log)
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger("jax").propagate = False  # the table below, not a line per program
    jax.config.update("jax_log_compiles", True)
    start, cpu = time.perf_counter(), time.process_time()
    model = iel.fit(snaps)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    figures = {
        "potential": potential,
        "energy": model.energy_spec,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "programs": sum(c for (stage, _), c in log.counts.items() if stage == "XLA"),
        "xla_seconds": sum(s for (stage, _), s in log.seconds.items() if stage == "XLA"),
        "mlir_seconds": sum(s for (stage, _), s in log.seconds.items() if stage != "XLA"),
        "cache": folder or "off",
        "w1": one_step_w1(lambda s: np.asarray(model.force(s)), test)[0],  # the suite's error
    }
    return figures, log


def _run_child(potential: str, cache: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--potential", potential, "--cache", cache, "--json"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        env={**os.environ, "IEL_COMPILATION_CACHE": "0" if cache == "off" else "1"},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def suite(potentials: list[str], repeats: int) -> None:
    """One row per potential: cold and warm fit times (fresh processes), programs compiled."""
    print("| potential | energy | iel W1 | cold s | warm s | programs | compile s | cold CPU s | "
          "warm CPU s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for potential in potentials:
        cold, warm = [], []
        for _ in range(repeats):
            folder = tempfile.mkdtemp(prefix="iel-compile-profile-")
            cold.append(_run_child(potential, folder))  # an empty cache: a first `iel fit`
            warm.append(_run_child(potential, folder))  # the cache it filled: a second one
        best = min(cold, key=lambda f: f["seconds"])
        compile_s = best["xla_seconds"] + best["mlir_seconds"]
        print(f"| {potential} | {best['energy']} | {best['w1']:.3g} | {best['seconds']:.2f} | "
              f"{min(f['seconds'] for f in warm):.2f} | {best['programs']} | {compile_s:.2f} | "
              f"{best['cpu_seconds']:.2f} | {min(f['cpu_seconds'] for f in warm):.2f} |",
              flush=True)  # fmt: skip


def main() -> None:
    from jkonet_suite import JKONET_2D

    parser = argparse.ArgumentParser()
    parser.add_argument("--potential", default="ishigami")
    parser.add_argument("--cache", default="new", help="off, new (a new folder) or a folder")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--suite", action="store_true",
                        help="cold and warm fits of each potential in fresh processes")  # fmt: skip
    parser.add_argument("--potentials", nargs="*", default=list(JKONET_2D))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.suite:
        suite(args.potentials, args.repeats)
        return
    figures, log = profile(args.potential, args.cache)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.potential}: fit {figures['seconds']:.2f} s, CPU {figures['cpu_seconds']:.2f} s "
          f"({figures['energy']}); cache {figures['cache']}")  # fmt: skip
    print(f"{figures['programs']} programs compiled or loaded: XLA {figures['xla_seconds']:.2f} "
          f"s, MLIR conversion {figures['mlir_seconds']:.2f} s")  # fmt: skip
    print("| seconds | count | stage | program |\n|---|---|---|---|")
    ranked = sorted(log.seconds.items(), key=lambda kv: -kv[1])[: args.top]
    for (stage, program), s in ranked:
        print(f"| {s:.2f} | {log.counts[(stage, program)]} | {stage} | {program} |")


if __name__ == "__main__":
    main()
