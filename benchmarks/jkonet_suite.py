"""JKOnet*'s potential benchmark (BENCHMARKS §A, experiment 4.1) for iel's snapshot estimator.

Protocol: for each of the fifteen potentials, 2000 particles uniform on [−4, 4]^d, 5 explicit
steps x ← x − dt∇V(x) (dt = 0.01; with ``--beta`` Langevin noise √(2β dt) ξ), 6 snapshots.
Half the particles (chosen at random) are held out; training sees only the other half's
snapshots, without identities.  Metric: one-step-ahead W1 — for t = 0..4 every held-out
particle at t is moved one explicit step with the learned energy and the exact earth mover's
distance (Euclidean cost, uniform weights, POT's exact solver) to the held-out population at
t + 1 is computed; mean ± std over the 5 steps.  With noise the temperature column is read
from the neighbour differences of the drift-corrected OT pairing's residuals, calibrated for
the noise the transport undoes (iel.estimators.snapshots, iel.estimators.noise_level); the
target is T within 10 %.
"no motion" moves nobody; the true potential scores 0 (without noise).  "pairing" is the
one the fit kept: optimal transport or the registration of the step that follows folds
(:mod:`iel.estimators.registration`).  The last column says where one-step pairing by
optimal transport cannot be exact: the largest ``τλmax(∇²V)`` of the
true potential over the first snapshot and the share of particles where it reaches 1 (the step
map folds there, Brenier).  iel runs ``iel.fit(snapshots)`` with its defaults.  Fit times
are taken in fresh processes, as ``iel fit`` runs: "cold s" is the first fit, on an empty
compilation cache (every program compiled, as a first ``iel fit`` or one with
``IEL_COMPILATION_CACHE=0``; "programs" counts them), "warm s" a second process on the cache the
first one filled (:mod:`iel.compilation_cache`: programs loaded from disk, still traced); each
the fastest of ``--repeats`` pairs of processes.  ``--timing in-process`` times the fit this
process makes for the errors instead (with the compilation cache the ``iel`` command switches
on, or ``--compilation-cache``: a folder, or ``off``), one column.
``--identities`` adds the error of the same fit on the training half's true pairs (the
identities the estimator is not given): where it is as large as iel's, the fitted family, not
the pairing, sets the error; and the share of the pairs the fit used that join a particle to
its own next position ("pairs right"; the fit is then ``SnapshotOneStep`` itself, which
``iel.fit`` runs for snapshots, so that its pairs can be read); with noise also the
temperature the same calibration reads with the true drift in place of the fitted one
("T̂, true force": near β where the fit's is not, the force the family misses biases T).
"unexplained" is the share of the paired displacements the fitted drift leaves as residual
(the report's ``unexplained_motion_share``).

Writes ``jkonet_suite.md`` (the table) and ``jkonet_suite.png`` (error per potential, log
scale) into ``--out``.

Run: ``python benchmarks/jkonet_suite.py [--dim 2] [--n 2000] [--beta 0] [--out bench-out]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import ot
from _tables import write_markdown_table

import iel
from iel.compilation_cache import compilation_cache_contents
from iel.data.trajectories import Trajectories
from iel.energies.particles import ParticleEnergy
from iel.energies.reference import JKONET_POTENTIALS
from iel.estimators.snapshots.onestep import SnapshotOneStep
from iel.estimators.snapshots.temperature import calibrated_temperature
from iel.selection.snapshot_pairs import select_snapshot_pairs
from iel.systems import get_system, simulate_system

JKONET_2D = {  # BENCHMARKS §A: closed form (V), MLP (V)
    "styblinski_tang": (4.15e-04, 9.06e-02), "holder_table": (4.74e-02, 4.48e-02),
    "flowers": (5.40e-03, 3.16e-03), "oakley_ohagan": (3.53e-03, 3.26e-02),
    "watershed": (2.50e-04, 4.07e-04), "ishigami": (7.32e-03, 5.29e-03),
    "friedman": (4.54e-02, 4.72e-02), "sphere": (4.48e-04, 1.51e-01),
    "bohachevsky": (1.25e-01, 2.16e-01), "wavy_plateau": (1.62e-02, 2.02e-01),
    "zigzag_ridge": (1.88e-03, 1.13e-02), "double_exp": (4.47e-03, 1.92e-02),
    "relu": (3.61e-02, 1.04e-02), "rotational": (1.82e-02, 1.22e-01), "flat": (1.01e-04, 3.80e-04),
}  # fmt: skip
PAPER_HIGH_D = {  # BENCHMARKS §A: JKOnet*_V at d = 10–50, read off the paper's figure
    "styblinski_tang": (0.2, 1), "holder_table": (0.3, 1.2), "wavy_plateau": (0.8, 1.4),
    "sphere": (0.4, 0.8), "zigzag_ridge": (0.1, 0.3), "oakley_ohagan": (0.1, 0.3),
    "flowers": (0.04, 0.12), "bohachevsky": (0.05, 0.12), "watershed": (0.01, 0.025),
    "friedman": (0.01, 0.018), "ishigami": (1e-3, 3e-3), "double_exp": (1.5e-3, 2.5e-3),
    "rotational": (4e-3, 7e-3), "flat": (1e-3, 3e-3),
}  # fmt: skip


def simulate(name, n, dim, beta, seed, interaction=False):
    """``(n, 6, d)`` states: 5 explicit steps from uniform on [−4, 4]^d.  ``interaction``:
    the potential is the pair energy ``W`` of one system of all ``n`` particles (no ``V``),
    each moved by ``−(1/n) Σ_j ∇W(x_i − x_j)`` (its even part: the paper's experiment 4.3) —
    what ``iel simulate NAME --interaction`` writes."""
    x0 = np.random.default_rng(seed).uniform(-4, 4, size=(n, dim))
    return np.asarray(simulate_system(name, n=n, steps=5, dt=0.01, temperature=beta, dim=dim,
                                      seed=seed, x0=x0, interaction=interaction).x)  # fmt: skip


def true_energy(name, dim, interaction=False):
    energy = get_system(name, dim).energy
    return ParticleEnergy(None, energy) if interaction else energy


def temperature_with_true_force(name, dim, snaps, model) -> float:
    """The snapshot estimator's temperature calibration (neighbour differences of the pairing
    residuals, calibrated by simulation) run with the true drift in place of the fitted one,
    from the fit's ``T``: where it is near β and the fit's is not, the force the family
    misses, not the pairing, biases ``T``."""
    truth = true_energy(name, dim)
    stand_in = types.SimpleNamespace(force=lambda s: np.asarray(truth.force(jnp.asarray(s))),
                                     temperature=model.temperature)  # fmt: skip
    return calibrated_temperature(snaps, stand_in, "auto", seed=0)[0]


def _split(x):
    """``(train, test, orders)``: half the particles (chosen at random) for training, the other
    half for testing, and the order each training snapshot is shuffled into."""
    order = np.random.default_rng(1).permutation(len(x))
    train, test = x[order[: len(x) // 2]], x[order[len(x) // 2 :]]
    shuffle = np.random.default_rng(2)
    return train, test, [shuffle.permutation(len(train)) for _ in range(train.shape[1])]


def split_snapshots(x):
    """Half the particles (chosen at random) as unpaired training snapshots (each snapshot
    shuffled, times 0, 0.01, …), the other half as the tracked test set."""
    train, test, orders = _split(x)
    snaps = iel.Snapshots(
        np.concatenate([train[o, k] for k, o in enumerate(orders)]),
        np.repeat(np.arange(len(orders)) * 0.01, len(train)),
    )
    return snaps, test


def identity_pairs(x) -> Trajectories:
    """The training snapshots' true transitions ``(x_k, x_{k+1})`` (identities kept), each
    snapshot's particles in the order :func:`split_snapshots` gives them."""
    train, _, orders = _split(x)
    steps = range(train.shape[1] - 1)
    states = np.concatenate([train[orders[k]][:, k : k + 2] for k in steps])
    times = np.concatenate([np.broadcast_to([k * 0.01, (k + 1) * 0.01], (len(train), 2))
                            for k in steps])  # fmt: skip
    return Trajectories(states, t=times)


def right_share(pairs: Trajectories, truth: Trajectories) -> float:
    """Share of paired steps ending at the particle's own next position (``truth``: the true
    pairs from the same sources in the same order; transport rounds: 1e-9)."""
    return float(np.mean(np.all(np.abs(pairs.x[:, 1] - truth.x[:, 1]) < 1e-9, axis=1)))


def fit_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → ``(key, value)``, the value read as a number or boolean where it is one."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--fit-option expects KEY=VALUE, got {text!r}")
    if value in ("True", "False"):
        return key, value == "True"
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def folds(name, dim, x0, dt=0.01):
    """How far the true step map ``x − dt∇V(x)`` is from a gradient of a convex function
    (Brenier's condition for optimal transport to pair each particle with itself): the largest
    ``dt·λmax(∇²V)`` over the first snapshot and the share of its particles where it is ≥ 1."""
    energy = get_system(name, dim).energy
    top = jax.jit(jax.vmap(lambda z: jnp.linalg.eigvalsh(jax.hessian(energy)(z))[-1]))
    stiffness = dt * np.asarray(top(jnp.asarray(x0)))
    return float(np.max(stiffness)), float(np.mean(stiffness >= 1.0))


def w1(a, b):
    cost = ot.dist(a, b, metric="euclidean")
    return ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                   numItermax=10_000_000)  # fmt: skip


def one_step_w1(force, test, dt=0.01):
    errs = [w1(test[:, k] + dt * force(test[:, k]), test[:, k + 1]) for k in range(5)]
    return float(np.mean(errs)), float(np.std(errs))


def docs_table_name(args) -> str:
    """``jkonet_suite_d2``, ``jkonet_suite_d2_beta0.1_interaction_identities``, …: the setting
    in the name, so that each run writes its own table for the documentation."""
    name = f"jkonet_suite_d{args.dim}"
    if args.n != 2000:
        name += f"_n{args.n}"
    if args.beta > 0:
        name += f"_beta{args.beta:g}"
    if args.interaction:
        name += f"_interaction-{args.interaction.replace(':', '-')}"
    if args.identities:
        name += "_identities"
    return name


def fit_snapshots(args, snaps, options, more):
    """``(model, estimator)``: the fit the table reports (``estimator`` with ``--identities``,
    else ``None``)."""
    if args.identities:  # the estimator iel.fit runs, kept to read its pairs
        estimator = SnapshotOneStep(args.energy, select=select_snapshot_pairs, **options, **more)
        return estimator.fit(snaps).model_, estimator
    return iel.fit(snaps, args.energy, method=args.method, **options, **more), None


def timed_child(args, name: str) -> None:
    """``--timed-child``: fit ``name`` once in this (fresh) process with the compilation cache
    of ``--compilation-cache`` and print ``{"seconds", "programs"}`` (programs compiled or
    loaded, from JAX's compile log)."""
    import logging

    counted = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Finished XLA compilation"):
                counted.append(record)

    if args.compilation_cache != "off":
        iel.enable_compilation_cache(args.compilation_cache)
    x = simulate(name, args.n, args.dim, args.beta, seed=0, interaction=bool(args.interaction))
    snaps, _ = split_snapshots(x)
    options, more = fit_options(args)
    for logger in ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler"):
        logging.getLogger(logger).addHandler(Count(logging.DEBUG))
        logging.getLogger(logger).setLevel(logging.DEBUG)
    logging.getLogger("jax").propagate = False
    jax.config.update("jax_log_compiles", True)
    start = time.perf_counter()
    fit_snapshots(args, snaps, options, more)
    print(json.dumps({"seconds": time.perf_counter() - start, "programs": len(counted)}))


def cold_and_warm(name: str, repeats: int) -> tuple[float, float, int]:
    """``(cold s, warm s, programs compiled cold)``: this script re-run with ``--timed-child``
    for ``name``, first on an empty compilation cache, then on the one it filled; the
    fastest of ``repeats`` such pairs."""
    argv = [a for a in sys.argv[1:] if a != "--docs"]
    drop = {"--potentials", "--compilation-cache", "--out", "--timing", "--repeats"}
    kept, skip = [], False
    for a in argv:  # the options that set the fit, without the ones the child sets itself
        if a.startswith("--"):
            skip = a.split("=")[0] in drop
        if not skip:
            kept.append(a)
    runs = []
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="iel-jkonet-cache-")
        pair = []
        for _ in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, __file__, *kept, "--potentials", name, "--timed-child",
                 "--compilation-cache", folder],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
                env={**os.environ, "IEL_COMPILATION_CACHE": "1"},
            )  # fmt: skip
            pair.append(json.loads(out.stdout.strip().splitlines()[-1]))
        runs.append(pair)
    cold = min(runs, key=lambda r: r[0]["seconds"])[0]
    return cold["seconds"], min(r[1]["seconds"] for r in runs), cold["programs"]


def fit_options(args) -> tuple[dict, dict]:
    """``(options, more)``: the interaction and the ``--fit-option``/``--refinements`` keyword
    arguments of the fit."""
    spec = args.interaction
    options = {"interaction": int(spec) if spec.isdigit() else spec} if spec else {}
    more = dict(fit_option(text) for text in args.fit_option)
    if args.refinements:
        more["refinements"] = args.refinements
    return options, more


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--potentials", nargs="*", default=list(JKONET_POTENTIALS))
    parser.add_argument("--energy", default="auto", help="energy spec (auto: selection)")
    parser.add_argument("--refinements", type=int, default=0,
                        help="re-couple from the fitted drift's predictions, R times")  # fmt: skip
    parser.add_argument("--interaction", default=None,
                        help="potentials as pair energies W, fitted with this spec")  # fmt: skip
    parser.add_argument("--method", default="auto", help="iel.fit's method (onestep, rollout)")
    parser.add_argument("--fit-option", action="append", default=[], metavar="KEY=VALUE",
                        help="more iel.fit options, e.g. batch_size=1000 (repeatable)")  # fmt: skip
    parser.add_argument("--identities", action="store_true",
                        help="also fit on the true pairs: pairing vs model error")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--compilation-cache", default="default",
                        help="'default' (the iel command's), 'off', or a folder")  # fmt: skip
    parser.add_argument("--docs", action="store_true",
                        help="also write the table to docs/benchmarks/generated/")  # fmt: skip
    parser.add_argument("--timing", choices=("processes", "in-process"), default="processes",
                        help="cold and warm fits in new processes, or this one's fit")  # fmt: skip
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="pairs of cold and warm processes per potential (the fastest)",
    )
    parser.add_argument("--timed-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_child:
        timed_child(args, args.potentials[0])
        return
    if args.identities and args.method == "rollout":
        parser.error("--identities fits one step on the true pairs: it compares with "
                     "--method onestep or auto, not rollout")  # fmt: skip
    options, more = fit_options(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.compilation_cache != "off":
        folder = None if args.compilation_cache == "default" else args.compilation_cache
        cache = iel.enable_compilation_cache(folder)
        held = compilation_cache_contents(cache)[0] if cache is not None else 0
        print(f"compilation cache: {cache} ({held} compiled programs before this run)")
    rows = []
    paper = ("JKOnet* (V)", "JKOnet*_V MLP") if args.dim == 2 else ("paper low", "paper high")
    if args.interaction:  # no published figures; the true W's own error instead of 0
        paper = ("true W (test half's mean field)", "-")
    timing = (["cold s", "warm s", "programs"] if args.timing == "processes"
              else ["fit s (in-process)"])  # fmt: skip
    columns = ["potential", "iel W1", "no motion", paper[0], paper[1], "T̂", "unexplained",
               *timing, "energy", "pairing", "max τλ (share ≥ 1)"]  # fmt: skip
    if args.identities:
        columns += ["W1, true pairs", "pairs right"]
        if args.beta > 0:
            columns.append("T̂, true force")
    head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|"
    print(head)
    table = []  # the cells of each printed line, for --docs
    for name in args.potentials:
        x = simulate(name, args.n, args.dim, args.beta, seed=0, interaction=bool(args.interaction))
        snaps, test = split_snapshots(x)
        start = time.perf_counter()
        model, estimator = fit_snapshots(args, snaps, options, more)
        seconds = [f"{time.perf_counter() - start:.1f}"]
        if args.timing == "processes":
            cold, warm, programs = cold_and_warm(name, args.repeats)
            seconds = [f"{cold:.1f}", f"{warm:.1f}", str(programs)]
        err, spread = one_step_w1(lambda s, m=model: np.asarray(m.force(s)), test)
        still, _ = one_step_w1(lambda s: np.zeros_like(s), test)
        figures = JKONET_2D if args.dim == 2 else PAPER_HIGH_D
        lin, mlp = figures.get(name, (float("nan"),) * 2)
        fold = "{:.2g} ({:.0%})".format(*folds(name, args.dim, x[:, 0]))
        if args.interaction:  # a mean field over half the particles: not exact even for W
            truth = true_energy(name, args.dim, interaction=True)
            lin, mlp = one_step_w1(lambda s, w=truth: np.asarray(w.force(s)), test)[0], float("nan")
            fold = "-"
        rows.append((name, err, still, lin, mlp))
        share = model.diagnostics.get("unexplained_motion_share")
        unexplained = "-" if share is None else f"{share:.2g}"
        cells = [
            name, f"{err:.2e} ± {spread:.1e}", f"{still:.2e}", f"{lin:.2e}", f"{mlp:.2e}",
            f"{model.temperature:.3g}", unexplained, *seconds, model.energy_spec,
            model.diagnostics.get("pairing", {}).get("kept", "-"), fold,
        ]  # fmt: skip
        if args.identities:  # the same fit on the true pairing: what the pairing costs
            truth = identity_pairs(x)
            known = estimator.fit_pairs(snaps, truth)
            right = right_share(estimator.pairs_, truth)
            cells += [f"{one_step_w1(lambda s, m=known: np.asarray(m.force(s)), test)[0]:.2e}",
                      f"{right:.1%}"]  # fmt: skip
            if args.beta > 0:  # the temperature calibrated with the true drift: the family's part
                cells.append(f"{temperature_with_true_force(name, args.dim, snaps, model):.3g}")
        line = "| " + " | ".join(str(c) for c in cells) + " |"
        table.append(cells)
        print(line, flush=True)
        head += "\n" + line
        jax.clear_caches()  # each potential compiles its own libraries: free their code
    setting = f"d = {args.dim}, N = {args.n}, beta = {args.beta}, energy = {args.energy}"
    if args.interaction:
        setting += f", interaction = {args.interaction}"
    (args.out / "jkonet_suite.md").write_text(f"JKOnet* suite, {setting}\n\n{head}\n")
    if args.docs:
        write_markdown_table(docs_table_name(args), f"JKOnet* suite, {setting}", columns, table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    idx = np.arange(len(rows))
    for offset, col, label in ((-0.3, 1, "iel"), (-0.1, 3, paper[0]), (0.1, 4, paper[1]),
                               (0.3, 2, "no motion")):  # fmt: skip
        ax.bar(idx + offset, [max(r[col], 1e-12) for r in rows], width=0.2, label=label)
    ax.set_yscale("log")
    ax.set_xticks(idx, [r[0] for r in rows], rotation=60, ha="right")
    ax.set_ylabel("one-step W1")
    ax.set_title(f"JKOnet* potential suite, {setting}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "jkonet_suite.png", dpi=110)


if __name__ == "__main__":
    main()
