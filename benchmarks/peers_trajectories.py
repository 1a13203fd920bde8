"""Trajectory benchmark against PySINDy and SFI on the data of BENCHMARKS §B.

Three data sets, force relMSE = Σ|F̂ − F|² / Σ|F|² on 20 000 held-out states drawn from
fresh trajectories of the same protocol, T̂, and fit time:

  (a) double well (x² − 1)², T = 0.5, dt = 0.01, 200 trajectories × 500 steps, x0 ~ N(0, 1);
  (b) Müller–Brown × 0.1, T = 1, dt = 1e-4, 100 trajectories × 2000 steps, started in its three
      minima in turn (train and test alike: a random split leaves basins unvisited in training
      that the test set visits, and the score then measures extrapolation);
  (c) Styblinski–Tang, noise-free gradient descent, dt = 0.01, 1000 trajectories × 6 points.

``iel`` runs ``iel.fit(data)`` with its defaults (energy and method "auto") and, for
reference, with a fixed spec per data set.  Peers: PySINDy 2.x with forward differences (its
centred default cancels the drift of reversible Langevin data), SFI 2.x (constant diffusion +
linear force, preset "auto"); SFI's time is reported cold and warm (second fit in the same process).

Run: ``python benchmarks/peers_trajectories.py [--docs]`` (needs ``pip install '.[benchmarks]'``;
``--docs`` also writes the table to ``docs/benchmarks/generated/``).
"""

from __future__ import annotations

import time

import numpy as np
from _peers import pysindy_fit, sfi_fit
from _tables import docs_flag, write_markdown_table

import iel
from iel.demo import MULLER_BROWN_MINIMA
from iel.systems import get_system, simulate_system


def relmse(force, truth, states) -> float:
    f = np.asarray(truth.force(states))
    return float(np.sum((np.asarray(force(states)) - f) ** 2) / np.sum(f**2))


def held_out(traj, n=20_000, seed=99):
    flat = traj.x.reshape(-1, traj.x.shape[-1])
    return flat[np.random.default_rng(seed).choice(len(flat), n, replace=False)]


def datasets():
    rng = np.random.default_rng(0)
    dw = dict(n=200, steps=500, dt=0.01, temperature=0.5)
    yield (
        "(a) double well",
        get_system("double_well").energy,
        simulate_system("double_well", **dw, x0=rng.normal(size=(200, 1)), seed=1),
        simulate_system("double_well", **dw, x0=rng.normal(size=(200, 1)), seed=2),
        0.01, 0.5, "poly:4", 3,
    )  # fmt: skip
    mb = dict(n=100, steps=2000, dt=1e-4, temperature=1.0)
    starts = MULLER_BROWN_MINIMA[np.arange(100) % 3]  # the three minima in turn
    yield (
        "(b) Müller–Brown",
        get_system("muller_brown").energy,
        simulate_system("muller_brown", **mb, x0=starts, seed=3),
        simulate_system("muller_brown", **mb, x0=starts, seed=4),
        1e-4, 1.0, "poly:7+rbf:30", 6,
    )  # fmt: skip
    st = dict(n=1000, steps=5, dt=0.01)
    yield (
        "(c) Styblinski–Tang GD",
        get_system("styblinski_tang").energy,
        simulate_system("styblinski_tang", **st, seed=5),
        simulate_system("styblinski_tang", **{**st, "n": 4000}, seed=6),
        0.01, 0.0, "poly:4", 3,
    )  # fmt: skip


def main() -> None:
    header = f"{'data':<24} {'method':<24} {'force relMSE':>12} {'T̂':>8} {'time s':>14}"
    print(header)
    print("-" * len(header))
    table = []  # for --docs
    for name, truth, train, test, dt, temp, spec, degree in datasets():
        states = held_out(test)
        rows = []
        for label, energy in (("iel default (auto)", "auto"), (f"iel {spec}", spec)):
            iel.fit(train, energy)  # compile once, as for SFI's warm time
            start = time.perf_counter()
            model = iel.fit(train, energy)
            t_iel = time.perf_counter() - start
            rows.append((label, relmse(model.force, truth, states), model.temperature,
                         f"{t_iel:.2f}"))  # fmt: skip
        f_sindy, t_sindy = pysindy_fit(train.x, dt, degree)
        rows.append((f"PySINDy deg {degree} fwd", relmse(f_sindy, truth, states), float("nan"),
                     f"{t_sindy:.2f}"))  # fmt: skip
        f_sfi, t_hat, cold, warm = sfi_fit(train.x, dt, degree)
        rows.append((f"SFI deg {degree}", relmse(f_sfi, truth, states), t_hat,
                     f"{warm:.2f} ({cold:.1f} cold)"))  # fmt: skip
        for method, err, t_hat, seconds in rows:
            print(f"{name:<24} {method:<24} {err:>12.3e} {t_hat:>8.4f} {seconds:>14}")
            table.append((f"{name}, T = {temp}", method, f"{err:.3e}", f"{t_hat:.4f}", seconds))
        print(f"{'':<24} true T = {temp}")
    if docs_flag():
        write_markdown_table(
            "peers_trajectories", "Trajectories against PySINDy and SFI",
            ["data, true T", "method", "force relMSE", "T̂", "time s"], table,
            notes="SFI's time is warm (a second fit in the same process), cold in brackets.",
        )  # fmt: skip


if __name__ == "__main__":
    main()
