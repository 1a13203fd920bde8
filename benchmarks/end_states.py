"""End states of gradient descent (THEORY §6): how well each objective recovers what end states
identify — the minima, the share of the prior each basin catches, the starts.

Three-well polynomial ``x⁶/6 − 5x⁴/4 + 2x²`` (minima −2, 0, 2), 1000 converged end states of
plain gradient descent from a normal and from a uniform prior, two seeds each; the latent
objective (default) and the likelihood objective.  Then the push-forward objective on partially
converged ends of 50 steps (η = 0.01) on the double well ``(x² − 1)²`` from N(0.3, 0.6²),
where ``η·E = 0.01x⁴ − 0.02x² + const`` is identifiable.  Prints one line per fit.

Last, the description-length ranking of polynomial degrees 2–8 on 300 of the three-well end
states (two-part code; prequential for degrees 4, 6, 8).

Run: ``python benchmarks/end_states.py [--selection-only] [--docs]`` (``--docs`` also writes the
tables to ``docs/benchmarks/generated/``).
"""

from __future__ import annotations

import time

import jax
import numpy as np
from _tables import docs_flag, write_markdown_table

import iel
from iel.data import Endpoints
from iel.energies.reference import ReferenceEnergy
from iel.estimators.endpoints.end_states import EndStates
from iel.estimators.endpoints.start_priors import (
    NormalPrior,
    UniformPrior,
)

MINIMA = np.array([-2.0, 0.0, 2.0])
THREE_WELL_HEADER = ["prior", "seed", "objective", "max minimum error",
                     "max share error (points)", "transport / flat", "s"]  # fmt: skip
SELECTION_HEADER = ["candidate", "two-part bits", "prequential bits", "minima"]


def descend(name, starts, steps, eta):
    run = iel.simulate(ReferenceEnergy(name, 1), iel.GradientDescent(), starts, steps,
                       jax.random.PRNGKey(0), eta, save_every=steps)  # fmt: skip
    return run.x[:, -1]


def three_well_rows():
    priors = {
        "normal(-0.2, 1)": NormalPrior(np.array([-0.2]), np.array([1.0])),
        "uniform(-2.7, 2.7)": UniformPrior(np.array([-2.7]), np.array([2.7])),
    }
    print("| prior | seed | objective | max minimum error | max share error (points) | "
          "transport / flat | s |\n|---|---|---|---|---|---|---|")  # fmt: skip
    table = []
    for label, prior in priors.items():
        for seed in (0, 1):
            starts = np.clip(prior.sample(np.random.default_rng(seed + 10), 1000), -3.2, 3.2)
            ends = descend("three_well", starts, 4000, 0.002)
            truth = np.bincount(np.argmin(np.abs(ends - MINIMA), axis=1), minlength=3) / len(ends)
            for objective in ("latent", "likelihood"):
                start = time.perf_counter()
                model = (
                    EndStates("poly:6", objective, prior=prior, seed=seed)
                    .fit(Endpoints(ends))
                    .model_
                )
                seconds = time.perf_counter() - start
                rows = sorted(model.diagnostics["minima"], key=lambda r: r["location"][0])
                if len(rows) != 3:
                    print(f"| {label} | {seed} | {objective} | {len(rows)} minima | | | |")
                    table.append((label, seed, objective, f"{len(rows)} minima", "", "", ""))
                    continue
                where = max(abs(r["location"][0] - m) for r, m in zip(rows, MINIMA))
                shares = max(abs(r["prior_share"] - t) for r, t in zip(rows, truth))
                d = model.diagnostics
                ratio = (f"{d['transport_loss'] / d['transport_loss_flat_energy']:.2f}"
                         if "transport_loss" in d else "–")  # fmt: skip
                print(f"| {label} | {seed} | {objective} | {where:.3f} | {100 * shares:.1f} | "
                      f"{ratio} | {seconds:.1f} |", flush=True)  # fmt: skip
                table.append((label, seed, objective, f"{where:.3f}", f"{100 * shares:.1f}",
                              ratio, f"{seconds:.1f}"))  # fmt: skip
    return table


def pushforward_row():
    prior = NormalPrior(np.array([0.3]), np.array([0.6]))
    starts = prior.sample(np.random.default_rng(0), 2000)
    ends = descend("double_well", starts, 50, 0.01)
    start = time.perf_counter()
    est = EndStates("poly:4", "pushforward", prior=prior, descent_steps=50).fit(Endpoints(ends))
    seconds = time.perf_counter() - start
    terms = dict(est.model_.energy_module.terms())
    error = np.abs(est.model_.starts - starts)
    line = (f"push-forward, double well: x⁴ {terms['x0^4']:.5f} (true 0.01), x² "
            f"{terms['x0^2']:.5f} (true −0.02); starts: median error {np.median(error):.4f}, "
            f"max {np.max(error):.3f}; {seconds:.1f} s")  # fmt: skip
    print(f"\n{line}")
    return line


def selection_rows():
    """Degrees 2–8 on 300 three-well end states ranked by two-part code; prequential codes for
    degrees 4, 6, 8 (the configuration of tests/test_selection.py)."""
    from iel.selection import END_STATE_FAMILIES, select_end_states

    prior = NormalPrior(np.array([-0.2]), np.array([1.0]))
    starts = np.clip(prior.sample(np.random.default_rng(3), 300), -3.2, 3.2)
    data = Endpoints(descend("three_well", starts, 4000, 0.002))
    result = select_end_states(data, END_STATE_FAMILIES, prior=prior, steps=250, batch=256)
    preq = select_end_states(data, ("poly:4", "poly:6", "poly:8"), prequential=True,
                             prior=prior, steps=250, batch=256)  # fmt: skip
    prequential = {c.name: c.prequential_bits for c in preq.candidates}
    print("\n| candidate | two-part bits | prequential bits | minima |\n|---|---|---|---|")
    table = []
    for cand in result.ranking():
        p = prequential.get(cand.name, cand.prequential_bits)
        p = "" if p is None else f"{p:.2f}"
        print(f"| {cand.name} | {cand.bits:.1f} | {p} | {cand.n_minima} |")
        table.append((cand.name, f"{cand.bits:.1f}", p, cand.n_minima))
    return table


if __name__ == "__main__":
    import sys

    if "--selection-only" not in sys.argv:
        three_well = three_well_rows()
        pushforward = pushforward_row()
        if docs_flag():
            write_markdown_table(
                "end_states", "End states of gradient descent on the three-well polynomial",
                THREE_WELL_HEADER, three_well, notes=f"Then: {pushforward}.",
            )  # fmt: skip
    selection = selection_rows()
    if docs_flag():
        write_markdown_table(
            "end_states_selection", "Polynomial degrees ranked by the end-state code",
            SELECTION_HEADER, selection,
        )  # fmt: skip
