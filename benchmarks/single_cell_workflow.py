"""The single-cell workflow at realistic size: .h5ad in → ``iel.fit_anndata`` → .h5ad out.

A simulated time course: fresh cells on non-consecutive days (every snapshot a new sample, as
when cells are destroyed by measurement) of a known Ornstein–Uhlenbeck process in the PCA
coordinates, ``dX = −a∘X dt + √(2T) dW`` (``E = ½ Σ aᵢ xᵢ²``, ``aᵢ`` from 0.1 to 0.5 per day,
``T = 0.05``), started from a narrow population away from the rest point.  Each cell gets
``obsm["X_pca"]`` (its exact OU marginal sample), ``obsm["X_umap"]`` (a fixed smooth 2-D
picture of PC 1–2), ``obs["day"]`` as categorical strings (``"day0"``, ``"day2"``, …) and a
sparse ``X`` of gene counts (unrelated to the state: it is there for its size).

Stages, each timed (wall seconds) with the process' peak resident memory after it
(``resource.getrusage(...).ru_maxrss``: the peak so far, so it only grows):

1. write the input ``.h5ad``;
2. read it (``anndata.read_h5ad``);
3. ``iel.fit_anndata`` (reading the time labels and the basis, the fit with the single-cell
   defaults, the write-back; the estimator's own time is ``model.fit_seconds``);
4. write the annotated ``.h5ad``.

Then the fitted error against the truth: the relative RMS error of the drift ``−∇E`` on the
cells, and ``T̂`` against ``T``.

Sizes: default 5 days × 5 000 cells × 30 components; ``--large``: 10 × 50 000 × 50; ``--quick``:
3 × 400 × 5 (a smoke run).  ``--n-components K`` fits the first K components only.
Run: ``python benchmarks/single_cell_workflow.py [--quick | --large] [--docs]`` (``--docs``
writes the table to ``docs/benchmarks/generated/single_cell_workflow.md``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _tables import write_markdown_table

import iel

TEMPERATURE = 0.05
SIZES = {  # (days, cells per day, components, genes)
    "quick": ((0, 2, 5), 400, 5, 200),
    "default": ((0, 1, 2, 4, 7), 5000, 30, 2000),
    "large": ((0, 1, 2, 3, 5, 7, 9, 12, 15, 20), 50_000, 50, 2000),
}


def stiffness(dim: int) -> np.ndarray:
    return np.linspace(0.1, 0.5, dim)


def simulate(days, n: int, dim: int, genes: int, seed: int = 0):
    """The AnnData of the time course (module docstring)."""
    import anndata
    import pandas as pd
    import scipy.sparse as sparse

    rng = np.random.default_rng(seed)
    a = stiffness(dim)
    start = np.where(np.arange(dim) < 3, 2.0, 0.3 * rng.choice([-1.0, 1.0], dim))
    start_var = 0.05
    xs = []
    for day in days:  # exact OU marginals from N(start, start_var): fresh cells each day
        mean = start * np.exp(-a * day)
        var = TEMPERATURE / a + (start_var - TEMPERATURE / a) * np.exp(-2 * a * day)
        xs.append(mean + np.sqrt(var) * rng.standard_normal((n, dim)))
    x = np.concatenate(xs)
    umap = np.column_stack([x[:, 0] + 0.3 * np.tanh(x[:, 1]), x[:, 1] - 0.2 * x[:, 0] ** 2 / 4])
    labels = [f"day{d}" for d in days]
    obs = pd.DataFrame(
        {"day": pd.Categorical(np.repeat(labels, n), categories=labels)},
        index=[f"cell{i}" for i in range(len(x))],
    )
    counts = sparse.random(len(x), genes, density=0.05, format="csr", random_state=seed,
                           data_rvs=lambda k: rng.poisson(2.0, k) + 1.0)  # fmt: skip
    return anndata.AnnData(X=counts.astype(np.float32), obs=obs,
                           obsm={"X_pca": x, "X_umap": umap})  # fmt: skip


def peak_mib() -> float:
    """The process' peak resident memory so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def run(size: str, n_components: int | None, seed: int, folder: Path) -> tuple[list, dict]:
    import anndata

    days, n, dim, genes = SIZES[size]
    rows = []

    def stage(name, work):
        start = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - start
        rows.append((name, f"{seconds:.1f}", f"{peak_mib():.0f}"))
        print(f"{name:<34} {seconds:8.1f} s   peak RSS {peak_mib():8.0f} MiB", flush=True)
        return result

    adata = stage("simulate the cells", lambda: simulate(days, n, dim, genes, seed))
    source = folder / "cells.h5ad"
    stage("write the input .h5ad", lambda: adata.write_h5ad(source))
    adata = None  # the cells are read back from the file
    cells = stage("read it (anndata.read_h5ad)", lambda: anndata.read_h5ad(source))
    model = stage("iel.fit_anndata", lambda: iel.fit_anndata(cells, n_components=n_components))
    rows.append(("  of which the estimator", f"{model.fit_seconds:.1f}", ""))
    stage("write the annotated .h5ad", lambda: cells.write_h5ad(folder / "cells.iel.h5ad"))
    k = n_components or dim
    x = np.asarray(cells.obsm["X_pca"])[:, :k]
    truth = -stiffness(dim)[:k] * x
    drift = np.asarray(cells.obsm["velocity_pca"])[:, :k]
    error = float(np.sqrt(np.mean((drift - truth) ** 2) / np.mean(truth**2)))
    summary = {
        "size": f"{len(days)} days × {n} cells × {dim} components (fitted: {k}), {genes} genes",
        "energy": model.energy_spec,
        "method": model.method,
        "drift_error": error,
        "temperature": model.temperature,
        "temperature_stderr": model.diagnostics.get("temperature_stderr"),
        "file_mib": source.stat().st_size / 2**20,
    }
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="3 days × 400 cells × 5 components")
    which.add_argument("--large", action="store_true", help="10 × 50 000 × 50")
    parser.add_argument("--n-components", type=int, default=None, help="fit the first K only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true", help="write the docs table")
    args = parser.parse_args()
    size = "quick" if args.quick else "large" if args.large else "default"
    with tempfile.TemporaryDirectory() as folder:
        rows, summary = run(size, args.n_components, args.seed, Path(folder))
    stderr = summary["temperature_stderr"]
    lines = [
        f"{summary['size']}; input file {summary['file_mib']:.0f} MiB",
        f"fit: {summary['energy']}, {summary['method']}",
        f"drift −∇E on the cells: relative RMS error {summary['drift_error']:.3f}",
        f"T̂ = {summary['temperature']:.4g}"
        + (f" ± {stderr:.2g}" if stderr is not None else "")
        + f" (true T = {TEMPERATURE})",
    ]
    load = os.getloadavg()[0]
    lines.append(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print("\n".join(lines))
    if args.docs:
        write_markdown_table(
            "single_cell_workflow"
            + ("" if size == "default" else f"_{size}")
            + (f"_k{args.n_components}" if args.n_components else ""),
            "Single-cell workflow: .h5ad → iel.fit_anndata → .h5ad",
            ["stage", "wall s", "peak RSS MiB (so far)"],
            rows,
            notes="\n\n".join(lines),
        )


if __name__ == "__main__":
    main()
