"""How far the registration of a folding step reaches (``iel.estimators.registration``).

The JKOnet* suite's bohachevsky (its step folds on 70 % of the particles) is simulated as the
suite does (N particles uniform on [−4, 4]², 5 explicit steps of dt = 0.01, half held out) for
several draws and population sizes; on the training half's snapshots the step is registered
once in the broad library from the transport pairs' fit (what ``pairing="auto"`` does first),
at each start width (a multiple of the transport residual variance), and the table gives the
share of pairs that join a particle to its own next position, for transport and for the
registration, with the EM's iterations and time.  ``auto`` registers up to
``REGISTRATION_MAX_TARGETS`` particles per snapshot and starts at ``START_VARIANCE_FACTOR``:
this is the measurement behind both.

Run: ``python benchmarks/registration_reach.py [--n 2000 4000] [--seeds 0 1 2 3]
[--start-factors 1 4] [--potential bohachevsky]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the suite's data generator
import iel.estimators.registration as registration  # noqa: E402
from jkonet_suite import identity_pairs, right_share, simulate, split_snapshots  # noqa: E402

from iel.estimators.snapshots.onestep import (
    _registered_pairs,
    paired_transitions,
)  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="*", default=[2000, 4000])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--start-factors", type=float, nargs="*", default=[1.0, 4.0])
    parser.add_argument("--potential", default="bohachevsky")
    args = parser.parse_args()
    print("| N (per snapshot) | draw | start × | transport right | registered right | "
          "EM iterations | s |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for n in args.n:
        for seed in args.seeds:
            x = simulate(args.potential, n, 2, 0.0, seed=seed)
            snaps, _ = split_snapshots(x)
            truth = identity_pairs(x)
            pairs, _ = paired_transitions(snaps)
            library = registration.registration_library(snaps.populations()[0])
            design = registration.StepDesign(library, pairs)
            [(start, _)] = design.fits(pairs)
            for factor in args.start_factors:
                registration.START_VARIANCE_FACTOR = factor  # read when the program is traced
                began = time.perf_counter()
                registered, _, info = _registered_pairs(snaps, design, start, pairs, "auto", 0)
                seconds = time.perf_counter() - began
                print(f"| {n} ({n // 2}) | {seed} | {factor:g} | {right_share(pairs, truth):.1%} "
                      f"| {right_share(registered, truth):.1%} | {info['iterations']} | "
                      f"{seconds:.1f} |", flush=True)  # fmt: skip
                registration._scaled_registration.clear_cache()  # the next factor retraces


if __name__ == "__main__":
    main()
