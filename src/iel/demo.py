"""``iel demo``: learn two known landscapes back from simulated Langevin trajectories.

1. The double well ``E = (x² − 1)²`` at ``T = 0.5`` (200 trajectories × 500 steps of 0.01),
   fitted with ``energy="auto"``: the family and sparse formula with the shortest description
   length — the formula ``x⁴ − 2x²`` (snapped to integers), ``T`` and the barrier come back.
2. The Müller–Brown potential (× 0.1) at ``T = 1`` (100 trajectories × 2000 steps of 1e-4
   started in its three minima, BENCHMARKS §B), fitted with a degree-4 polynomial plus 30
   Gaussian bumps: force error on held-out trajectories and the depths of the three minima.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .auto import fit
from .model import FittedModel
from .plotting import save_landscape
from .systems import get_system, simulate_system

MULLER_BROWN_MINIMA = np.array([[-0.558, 1.442], [0.623, 0.028], [-0.050, 0.467]])


def force_relative_mse(model: FittedModel, truth, states: np.ndarray) -> float:
    """``Σ‖F̂ − F‖² / Σ‖F‖²`` over ``states`` (BENCHMARKS §B's metric)."""
    f_true = np.asarray(truth.force(states))
    f_hat = np.asarray(model.force(states))
    return float(np.sum((f_hat - f_true) ** 2) / np.sum(f_true**2))


def _held_out_states(traj, n: int, seed: int) -> np.ndarray:
    flat = traj.x.reshape(-1, traj.x.shape[-1])
    rng = np.random.default_rng(seed)
    return flat[rng.choice(len(flat), min(n, len(flat)), replace=False)]


def run_demo(out: Path, progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Run both parts, write figures into ``out``, return one result dict per part."""

    def report(name):
        return None if progress is None else (lambda done, total: progress(name, done, total))

    results = []

    # 1. double well ------------------------------------------------------------------------
    dw = get_system("double_well")
    rng = np.random.default_rng(0)
    draw = {"n": 200, "steps": 500, "dt": 0.01, "temperature": 0.5}
    train = simulate_system(
        "double_well", **draw, x0=rng.normal(size=(200, 1)), seed=0,
        progress=report("double well: simulate"),
    )  # fmt: skip
    test = simulate_system("double_well", **draw, x0=rng.normal(size=(200, 1)), seed=1)
    model = fit(train)  # energy="auto": the shortest description among the families
    if progress:
        progress("double well: fit", 1, 1)
    theta = dict(model.energy_module.terms())
    barrier = float(model.energy(np.zeros((1, 1)))[0] - model.energy(np.ones((1, 1)))[0])
    err = force_relative_mse(model, dw.energy, _held_out_states(test, 20_000, 2))
    save_landscape(model, train, out / "landscape_double_well.png", truth=dw.energy)
    results.append(
        {
            "name": "double_well",
            "title": "double well (x² − 1)², Langevin T = 0.5: 200 × 500 steps, energy auto "
            "(shortest description length)",
            "rows": [
                ("formula", "1.000·x0^4 − 2.000·x0^2", model.formula.removeprefix("E(x) = ")),
                ("x0^4, x0^2", "1, −2", f"{theta['x0^4']:.3f}, {theta['x0^2']:.3f}"),
                ("parameters", "2", str(model.n_parameters)),
                ("temperature", "0.5", f"{model.temperature:.4f}"),
                ("barrier E(0) − E(1)", "1", f"{barrier:.3f}"),
                ("force rel. MSE (held out)", "0", f"{err:.2e}"),
                ("fit time", "", f"{model.fit_seconds:.2f} s"),
            ],
            "summary": {
                "formula": model.formula,
                "temperature": model.temperature,
                "barrier": barrier,
                "force_relmse": err,
                "fit_seconds": model.fit_seconds,
            },
        }
    )

    # 2. Müller–Brown -----------------------------------------------------------------------
    mb = get_system("muller_brown")
    starts = MULLER_BROWN_MINIMA[np.random.default_rng(3).integers(0, 3, 100)]
    draw = {"n": 100, "steps": 2000, "dt": 1e-4, "temperature": 1.0, "x0": starts}
    train = simulate_system(
        "muller_brown", **draw, seed=3, progress=report("Müller–Brown: simulate")
    )
    test = simulate_system("muller_brown", **draw, seed=4)
    spec = "poly:4+rbf:30"
    model = fit(train, spec)
    if progress:
        progress("Müller–Brown: fit", 1, 1)
    err = force_relative_mse(model, mb.energy, _held_out_states(test, 20_000, 5))
    # depths relative to the lower-right minimum; its basin and the middle one are joined by
    # the data, the upper-left basin is not: its relative depth is extrapolated, not measured
    e_true = np.asarray(mb.energy.energy(MULLER_BROWN_MINIMA))
    e_hat = np.asarray(model.energy(MULLER_BROWN_MINIMA))
    e_true, e_hat = e_true - e_true[1], e_hat - e_hat[1]
    save_landscape(model, train, out / "landscape_muller_brown.png")
    rows = [
        ("temperature", "1", f"{model.temperature:.4f}"),
        ("E(middle min) − E(lower-right min)", f"{e_true[2]:.2f}", f"{e_hat[2]:.2f}"),
        (
            "E(upper-left min) − E(lower-right min)\n(no trajectory joins these basins: "
            "extrapolated, not identifiable)",
            f"{e_true[0]:.2f}",
            f"{e_hat[0]:.2f}",
        ),
    ]
    rows += [
        ("force rel. MSE (held out)", "0", f"{err:.3f}"),
        ("fit time", "", f"{model.fit_seconds:.2f} s"),
    ]
    results.append(
        {
            "name": "muller_brown",
            "title": f"Müller–Brown × 0.1, Langevin T = 1: 100 × 2000 steps, {spec}",
            "rows": rows,
            "summary": {
                "temperature": model.temperature,
                "force_relmse": err,
                "minima_depths_true": e_true.tolist(),
                "minima_depths_learned": e_hat.tolist(),
                "fit_seconds": model.fit_seconds,
            },
        }
    )
    return results
