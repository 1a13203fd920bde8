"""Sample efficiency: is an energy a better model than a step function? (issue 3, benchmark 2)

Force relMSE against the number of trajectories (10, 30, 100, 300) on

* 2-D Styblinski–Tang, Langevin T = 5, dt = 0.002, 500 steps, starts uniform on [−4, 4]²;
* Müller–Brown × 0.1, T = 1, dt = 1e-4, 2000 steps, started in its three minima in turn;

for ``iel`` energies (the default ``energy="auto"`` and a fixed family), PySINDy (forward
differences), SFI, and two step-function baselines trained by the same code as the energy:
an unconstrained vector field on the same feature library (closed form) and an MLP step
``x + h·f(x)`` (Optax, one-step likelihood).
Errors are measured on 20 000 held-out states from fresh trajectories ("inside") and on states
outside the box the training data covered ("outside": extrapolation).

The issue's criterion — at every data size, the energy reaches the best non-energy model's
error with at most half its trajectories — is measured directly: ``iel`` (``auto``) is also
fitted on ``n/2`` trajectories, and the last table prints, per size ``n``, its inside error
over the best non-energy model's at ``n`` (≤ 1: met).

One draw per size says little at small ``n`` (5 trajectories cover a few wells), so every size
is drawn ``--draws`` times (training seeds ``n + 7919·k``, the half-size draw ``n + 1 + 7919·k``)
and each cell prints the median over the draws and, in brackets, the worst; the criterion row
prints the median and worst of the per-draw ratios.

Run: ``python benchmarks/sample_efficiency.py [--sizes 10 30 100 300] [--mlp-steps 2000]
[--draws 3] [--systems muller_brown styblinski_tang] [--docs]`` (``--docs`` also writes one table
per system to ``docs/benchmarks/generated/``).
"""

from __future__ import annotations

import argparse
import warnings

import jax
import numpy as np
from _peers import pysindy_fit, sfi_fit
from _tables import write_markdown_table

import iel
from iel.demo import MULLER_BROWN_MINIMA
from iel.energies import MLPDrift
from iel.estimators import OneStepLikelihood
from iel.estimators.trajectories.drift import FreeDriftClosedForm
from iel.systems import get_system, simulate_system

CASES = {
    "styblinski_tang": dict(
        kw=dict(dt=0.002, steps=500, temperature=5.0),
        energy="poly:4",
        drift="poly:3",
        deg=3,
        outside_box=6.0,
    ),
    "muller_brown": dict(
        kw=dict(dt=1e-4, steps=2000, temperature=1.0),
        energy="poly:7+rbf:30",
        drift="poly:6",
        deg=6,
        outside_box=None,
    ),
}


HALF = "iel auto, n/2 traj."


def relmse(force, truth, states) -> float:
    f = np.asarray(truth.force(states))
    return float(np.sum((np.asarray(force(states)) - f) ** 2) / np.sum(f**2))


def simulate(name, n, seed, kw):
    x0 = MULLER_BROWN_MINIMA[np.arange(n) % 3] if name == "muller_brown" else None
    return simulate_system(name, n=n, seed=seed, x0=x0, **kw)


def outside_states(name, low, high, box, rng):
    if name == "muller_brown":
        lo, hi = np.array([-1.5, -0.5]), np.array([1.2, 2.0])
    else:
        lo, hi = np.full(2, -box), np.full(2, box)
    pts = rng.uniform(lo, hi, size=(200_000, 2))
    keep = np.any((pts < low) | (pts > high), axis=1)
    return pts[keep][:20_000]


DRAW_STRIDE = 7919  # seed offset between the draws of one size


def fit_all(name, case, n, seed, mlp_steps):
    """Every method's force field on one training draw of ``n`` trajectories (and the half-size
    draw), with the training data."""
    train = simulate(name, n, seed, case["kw"])
    dt = case["kw"]["dt"]
    fits = {
        "iel energy (default auto)": iel.fit(train).force,
        f"iel energy {case['energy']}": iel.fit(train, case["energy"]).force,
        f"vector field {case['drift']}": FreeDriftClosedForm(case["drift"])
        .fit(train)
        .model_.force,
        "MLP step 64x64": OneStepLikelihood(
            MLPDrift(2, (64, 64), jax.random.PRNGKey(seed)), steps=mlp_steps,
            learning_rate=3e-3,
        ).fit(train).model_.force,
        f"PySINDy deg {case['deg']}": pysindy_fit(train.x, dt, case["deg"])[0],
        f"SFI deg {case['deg']}": sfi_fit(train.x, dt, case["deg"])[0],
    }  # fmt: skip
    half = simulate(name, n // 2, seed + 1, case["kw"])  # a different, half-size draw
    fits[HALF] = iel.fit(half).force
    return fits, train


def cell(values_in, values_out) -> str:
    """``median in / median out (worst in / worst out)`` over the draws."""
    med = f"{np.median(values_in):.2e} / {np.median(values_out):.2e}"
    if len(values_in) == 1:
        return med
    return f"{med} ({np.max(values_in):.2e} / {np.max(values_out):.2e})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300])
    parser.add_argument("--mlp-steps", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=3, help="training draws per size")
    parser.add_argument("--systems", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--docs", action="store_true",
                        help="also write the tables to docs/benchmarks/generated/")  # fmt: skip
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="force Gram condition number")  # SFI's, reported
    rng = np.random.default_rng(0)
    for name in args.systems:
        case = CASES[name]
        truth = get_system(name).energy
        test = simulate(name, 300, 1000, case["kw"])
        flat = test.x.reshape(-1, 2)
        inside = flat[rng.choice(len(flat), 20_000, replace=False)]
        print(f"\n{name}: force relMSE inside / outside the training box, median over "
              f"{args.draws} draws (worst)")  # fmt: skip
        print(f"{'method':<26}" + "".join(f"{n:>46}" for n in args.sizes))
        results: dict[str, list[str]] = {}
        best_cells, ratio_cells = [], []
        for n in args.sizes:
            errors_in: dict[str, list[float]] = {}
            errors_out: dict[str, list[float]] = {}
            for k in range(args.draws):
                fits, train = fit_all(name, case, n, n + DRAW_STRIDE * k, args.mlp_steps)
                low, high = train.x.reshape(-1, 2).min(0), train.x.reshape(-1, 2).max(0)
                outside = outside_states(name, low, high, case["outside_box"], rng)
                for method, force in fits.items():
                    err_out = relmse(force, truth, outside) if len(outside) else float("nan")
                    errors_in.setdefault(method, []).append(relmse(force, truth, inside))
                    errors_out.setdefault(method, []).append(err_out)
            for method in errors_in:
                results.setdefault(method, []).append(cell(errors_in[method], errors_out[method]))
            baselines = [m for m in errors_in if not m.startswith("iel")]
            best = np.min([errors_in[m] for m in baselines], axis=0)  # per draw
            ratios = np.asarray(errors_in[HALF]) / best
            best_cells.append(f"{np.median(best):.2e} ({np.max(best):.2e})")
            ratio_cells.append(f"{np.median(ratios):.2f} ({np.max(ratios):.2f})")
        for method, cells in results.items():
            print(f"{method:<26}" + "".join(f"{c:>46}" for c in cells))
        print(f"\n{name}: iel auto with n/2 trajectories / best non-energy model with n (≤ 1: met),"
              " median (worst) over the draws")  # fmt: skip
        print(f"{'n':<26}" + "".join(f"{n:>22}" for n in args.sizes))
        print(f"{'best non-energy, n':<26}" + "".join(f"{b:>22}" for b in best_cells))
        print(f"{'ratio':<26}" + "".join(f"{r:>22}" for r in ratio_cells))
        if args.docs:
            rows = [(method, *cells) for method, cells in results.items()]
            rows.append(("best non-energy model, n", *best_cells))
            rows.append(("iel auto on n/2 ÷ best non-energy on n", *ratio_cells))
            write_markdown_table(
                f"sample_efficiency_{name}",
                f"{name}: force relMSE inside / outside the training box, by trajectories "
                f"(median over {args.draws} draws; worst in brackets)",
                ["method", *(f"n = {n}" for n in args.sizes)], rows,
                notes="The last row is the criterion: ≤ 1 means the energy reaches the best "
                "non-energy model's error with at most half its trajectories (per draw: the "
                "half-size fit against the best non-energy model on that draw's n).",
            )  # fmt: skip


if __name__ == "__main__":
    main()
