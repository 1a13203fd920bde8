"""Where a first snapshot fit spends its compiling: programs compiled and seconds by program.

Fits one potential of the JKOnet* suite (``benchmarks/jkonet_suite.py``'s data: 1000 training
particles, 6 snapshots, d = 2) with ``iel.fit(snapshots)`` in this process, with the
compilation cache on ``--cache`` (a new temporary folder by default, so that every program is
compiled, as in a first ``iel fit``; the same folder twice gives the warm figure).  JAX's
compile log (``jax_log_compiles``) is read for each program's XLA compilation and its
conversion to MLIR; the table lists the programs with the most seconds.  Many small
programs compiled one primitive at a time mean eager code on a new shape.

Run: ``python benchmarks/compile_profile.py [--potential ishigami] [--cache DIR] [--top 15]``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import re
import tempfile
import time

from jkonet_suite import simulate, split_snapshots

import iel

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--potential", default="ishigami")
    parser.add_argument("--cache", default=None, help="compilation cache folder (default: new)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    folder = args.cache or tempfile.mkdtemp(prefix="iel-compile-profile-")
    iel.enable_compilation_cache(folder)
    snaps, _ = split_snapshots(simulate(args.potential, 2000, 2, 0.0, seed=0))
    import jax

    log = _CompileLog()
    for name in ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler"):
        logging.getLogger(name).addHandler(log)
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger("jax").propagate = False  # the table below, not a line per program
    jax.config.update("jax_log_compiles", True)
    start = time.perf_counter()
    model = iel.fit(snaps)
    seconds = time.perf_counter() - start
    compiled = sum(c for (stage, _), c in log.counts.items() if stage == "XLA")
    xla = sum(s for (stage, _), s in log.seconds.items() if stage == "XLA")
    mlir = sum(s for (stage, _), s in log.seconds.items() if stage != "XLA")
    print(f"{args.potential}: fit {seconds:.2f} s ({model.energy_spec}); cache {folder}")
    print(f"{compiled} programs compiled or loaded: XLA {xla:.2f} s, MLIR conversion {mlir:.2f} s")
    print("| seconds | count | stage | program |\n|---|---|---|---|")
    ranked = sorted(log.seconds.items(), key=lambda kv: -kv[1])[: args.top]
    for (stage, program), s in ranked:
        print(f"| {s:.2f} | {log.counts[(stage, program)]} | {stage} | {program} |")


if __name__ == "__main__":
    main()
