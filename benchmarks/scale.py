"""Scale (issue 27): large snapshots and out-of-core trajectories, one command.

Runs the two measurements, each its own script with its own protocol in its docstring:

* ``benchmarks/scale_snapshots.py``: 5 snapshots of the same particles, 10³ … 10⁵ per time
  (10⁶ with ``--large``) in d = 2 and d = 30, fitted through the coupling ``auto`` picks
  (exact while the cost matrix fits, minibatch exact OT beyond): time, peak memory, force
  error, T̂/T, the ratio to the exact coupling where both run and the growth exponent of time;
* ``benchmarks/scale_trajectories.py``: the streamed one-pass closed form on memory-mapped
  ``.npy`` files of 10⁴ … 10⁷ transitions (10⁸ with ``--large``) against the in-memory fit:
  time, peak memory and their growth exponents, force error, T̂/T − 1.

Run: ``python benchmarks/scale.py [--part snapshots|trajectories|all] [--large] [--docs]``;
``--docs`` makes each script write its table under ``docs/benchmarks/generated/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"snapshots": "scale_snapshots.py", "trajectories": "scale_trajectories.py"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--large", action="store_true", help="add 10⁶ particles / 10⁸ steps")
    parser.add_argument("--docs", action="store_true", help="write the docs tables")
    args = parser.parse_args()
    flags = [flag for flag, on in (("--large", args.large), ("--docs", args.docs)) if on]
    failed = []
    for part, script in PARTS.items():
        if args.part not in (part, "all"):
            continue
        print(f"\n## {part}: {script} {' '.join(flags)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *flags]).returncode:
            failed.append(part)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
