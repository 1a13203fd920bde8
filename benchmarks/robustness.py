"""Robustness sweeps (issue 25): every headline case over temperatures, start distributions,
data sizes and seeds, reporting the median and the *worst* error and the family chosen.

Cases (``iel.fit(data)`` with its defaults, energy and method "auto"):

  double_well          (x² − 1)², Langevin T₀ = 0.5, dt = 0.01, 200 trajectories × 500 steps
  muller_brown         0.1 × Müller–Brown, T₀ = 1, dt = 1e-4, 100 trajectories × 2000 steps
  three_well           x⁶/6 − 5x⁴/4 + 2x², T₀ = 1, dt = 0.01, 200 trajectories × 500 steps
  rotated_double_well  anisotropic double well (2-D), T₀ = 0.5, dt = 0.01, 200 × 500
  snapshots:<name>     JKOnet* potential <name> (d = 2) as unpaired snapshots: 1000 particles,
                       5 explicit steps of dt = 0.01, noise-free by default (T₀ = 0)

Each case is swept one factor at a time around its default configuration:

  temperature  0.3×, 1×, 3× T₀ (snapshots, whose T₀ is 0: T = 0, 0.03, 0.1)
  starts       the start distributions of iel.systems.System.initial_states: point (all at
               the box centre), gaussian (about the centre, sd = box width / 4), uniform over
               the box, scattered (around 5 random points of the box); and the case's own
               default (Müller–Brown: its three minima in turn)
  coefficients the data in a random frame x' = c x + b (c log-uniform on [0.5, 2], b uniform
               on [−0.5, 0.5]^d): the energy c² E((x' − b)/c) at temperature c² T has no
               round coefficients (rational snapping cannot make it exact)
  size         ¼× and 1× the trajectories (particles)

with 5 fresh seeds per configuration (seeds 1000+, not the benchmarks' own).  The score is the
force relMSE ``Σ|F̂ − F|² / Σ|F|²`` on 5000 held-out states from fresh data of the same
configuration (another seed), and the temperature error ``|T̂ − T| / T``.  Each row gives the
families chosen over the seeds, the median and the worst relMSE, the worst temperature error,
and the median fit time; the last lines give every case's worst configuration.

Run: ``python benchmarks/robustness.py [--quick] [--seeds N] [--cases NAME …] [--docs]``
(``--quick``: 2 seeds, no size axis; ``--docs`` also writes the table to
``docs/benchmarks/generated/robustness.md``).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from _tables import write_markdown_table

import iel
from iel.demo import MULLER_BROWN_MINIMA
from iel.dynamics.simulation import SimulationDivergedError
from iel.systems import START_DISTRIBUTIONS, get_system, simulate_system

SNAPSHOT_POTENTIALS = ("styblinski_tang", "holder_table", "oakley_ohagan", "wavy_plateau",
                       "friedman")  # fmt: skip
START_KINDS = START_DISTRIBUTIONS
HELD_OUT = 5000


@dataclass(frozen=True)
class Case:
    """One headline case and its default configuration."""

    name: str
    system: str
    snapshots: bool
    temperature: float
    dt: float
    n: int
    steps: int
    start: str


@dataclass(frozen=True)
class Config:
    """One point of the sweep: the axis varied and its value, with the full settings."""

    axis: str
    value: str
    temperature: float
    start: str
    n: int
    random_coefficients: bool = False


def cases(snapshot_potentials) -> list[Case]:
    out = [
        Case("double_well", "double_well", False, 0.5, 0.01, 200, 500, "gaussian"),
        Case("muller_brown", "muller_brown", False, 1.0, 1e-4, 100, 2000, "minima"),
        Case("three_well", "three_well", False, 1.0, 0.01, 200, 500, "uniform"),
        Case(
            "rotated_double_well", "rotated_double_well", False, 0.5, 0.01, 200, 500, "uniform"
        ),  # fmt: skip
    ]
    out += [Case(f"snapshots:{p}", p, True, 0.0, 0.01, 1000, 5, "uniform")
            for p in snapshot_potentials]  # fmt: skip
    return out


def configs(case: Case, quick: bool) -> list[Config]:
    """The default configuration, then one factor at a time."""
    base = Config("default", "", case.temperature, case.start, case.n)
    temps = (0.03, 0.1) if case.snapshots else (0.3 * case.temperature, 3 * case.temperature)
    out = [base]
    out += [replace(base, axis="temperature", value=f"{t:g}", temperature=t) for t in temps]
    out += [replace(base, axis="starts", value=s, start=s) for s in START_KINDS if s != case.start]
    out.append(replace(base, axis="coefficients", value="random", random_coefficients=True))
    if not quick:
        out.append(replace(base, axis="size", value=f"n = {case.n // 4}", n=case.n // 4))
    return out


def starts(case: Case, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` start states: Müller–Brown's three minima in turn, or a start distribution of
    :meth:`iel.systems.System.initial_states`."""
    if kind == "minima":
        return MULLER_BROWN_MINIMA[np.arange(n) % len(MULLER_BROWN_MINIMA)]
    return get_system(case.system).initial_states(n, rng, kind)


def simulate(case: Case, config: Config, seed: int):
    rng = np.random.default_rng(seed)
    x0 = starts(case, config.start, config.n, rng)
    return simulate_system(case.system, n=config.n, steps=case.steps, dt=case.dt,
                           temperature=config.temperature, snapshots=case.snapshots, x0=x0,
                           seed=seed)  # fmt: skip


def held_out_states(data, seed: int) -> np.ndarray:
    flat = np.asarray(data.x).reshape(-1, np.asarray(data.x).shape[-1])
    rng = np.random.default_rng(seed)
    return flat[rng.choice(len(flat), min(HELD_OUT, len(flat)), replace=False)]


def random_frame(dim: int, seed: int) -> tuple[float, np.ndarray]:
    """A random scale ``c`` (log-uniform on [0.5, 2]) and shift ``b`` (uniform on
    [−0.5, 0.5]^d): the data ``x' = c x + b`` are exactly Langevin data of the energy
    ``U(x') = c² E((x' − b)/c)`` at temperature ``c² T``, whose coefficients are not round."""
    rng = np.random.default_rng(seed + 7)
    return float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))), rng.uniform(-0.5, 0.5, dim)


def reframed(data, c: float, b: np.ndarray):
    if isinstance(data, iel.Snapshots):
        return iel.Snapshots(c * data.x + b, data.t)
    return iel.Trajectories(c * data.x + b, t=data.t)


def score(case: Case, config: Config, seed: int) -> dict:
    """Fit ``auto`` on one draw and score it on a fresh draw of the same configuration."""
    train, test = simulate(case, config, seed), simulate(case, config, seed + 500)
    truth = get_system(case.system).energy
    c, b, temperature = 1.0, np.zeros(truth_dim(case)), config.temperature
    if config.random_coefficients:
        c, b = random_frame(truth_dim(case), seed)
        train, test, temperature = reframed(train, c, b), reframed(test, c, b), c**2 * temperature
    test_states = held_out_states(test, seed)
    start = time.perf_counter()
    model = iel.fit(train)
    seconds = time.perf_counter() - start
    f_true = c * np.asarray(truth.force((test_states - b) / c))  # ∇U(x') = c ∇E((x' − b)/c)
    err = float(np.sum((np.asarray(model.force(test_states)) - f_true) ** 2)
                / max(float(np.sum(f_true**2)), 1e-300))  # fmt: skip
    t_err = (abs(model.temperature - temperature) / temperature
             if temperature > 0 else float("nan"))  # fmt: skip
    return {"family": model.energy_spec, "relmse": err, "t_err": t_err, "seconds": seconds}


def truth_dim(case: Case) -> int:
    return get_system(case.system).dim


def families(results) -> str:
    counts = Counter(r["family"].removeprefix("auto → ") for r in results)
    return ", ".join(f"{f} ×{c}" if c > 1 else f for f, c in counts.most_common())


def worst(values) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return max(finite) if finite else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds; no size axis")
    parser.add_argument("--cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--snapshot-potentials", nargs="*", default=list(SNAPSHOT_POTENTIALS))
    parser.add_argument("--table", default="robustness", help="docs table name (with --docs)")
    parser.add_argument("--docs", action="store_true")
    args = parser.parse_args()
    n_seeds = 2 if args.quick else args.seeds
    seeds = [1000 + 17 * s for s in range(n_seeds)]
    chosen = [c for c in cases(args.snapshot_potentials) if not args.cases or c.name in args.cases]
    header = (f"{'case':<28} {'axis':<12} {'value':<10} {'median':>9} {'worst':>9} "
              f"{'worst T err':>11} {'s':>5}  families")  # fmt: skip
    print(header)
    print("-" * len(header))
    rows, summary = [], []
    for case in chosen:
        iel.fit(simulate(case, configs(case, True)[0], 1))  # compile before timing
        case_worst = (-1.0, None)
        for config in configs(case, args.quick):
            try:
                results = [score(case, config, seed) for seed in seeds]
            except SimulationDivergedError as err:  # the true system, not the fit
                print(f"{case.name:<28} {config.axis:<12} {config.value:<10} not simulated: "
                      f"{err.summary.split(';')[0]}", flush=True)  # fmt: skip
                rows.append((case.name, config.axis, config.value, "–", "–", "–", "–",
                             "the true system diverges from these starts"))  # fmt: skip
                continue
            errs = [r["relmse"] for r in results]
            med, bad = float(np.median(errs)), max(errs)
            t_bad = worst([r["t_err"] for r in results])
            secs = float(np.median([r["seconds"] for r in results]))
            fams = families(results)
            value = config.value or f"T={config.temperature:g}, {config.start}, n={config.n}"
            print(f"{case.name:<28} {config.axis:<12} {value:<10} {med:>9.2e} {bad:>9.2e} "
                  f"{t_bad:>11.3f} {secs:>5.1f}  {fams}", flush=True)  # fmt: skip
            t_text = "–" if np.isnan(t_bad) else f"{t_bad:.3f}"
            rows.append((case.name, config.axis, value, f"{med:.2e}", f"{bad:.2e}", t_text,
                         f"{secs:.1f}", fams))  # fmt: skip
            if bad > case_worst[0]:
                case_worst = (bad, f"{config.axis} {value}".strip())
        summary.append(f"{case.name}: worst relMSE {case_worst[0]:.2e} ({case_worst[1]})")
    print()
    print("\n".join(summary))
    if args.docs:
        write_markdown_table(
            args.table, f"Robustness sweeps ({n_seeds} fresh seeds per configuration)",
            ["case", "axis", "value", "median relMSE", "worst relMSE", "worst |T̂−T|/T",
             "median s", "families chosen"], rows,
            notes="Worst case of each sweep: " + "; ".join(summary) + ".",
        )  # fmt: skip


if __name__ == "__main__":
    main()
