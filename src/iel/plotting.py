"""Figures.  Every function takes ``ax=None`` (a new figure is made) and returns the axes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless by default; figures are written to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .data.trajectories import Trajectories  # noqa: E402
from .energies.particles import ParticleEnergy
from .estimators.snapshots.interaction import pair_differences
from .estimators.uncertainty import energy_band
from .model import FittedModel  # noqa: E402


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    return ax


def _energy_range(e: np.ndarray, where: str, quantile: float = 0.95) -> tuple[float, float]:
    """``(low, high)`` of the finite energies, ``high`` their ``quantile`` (0.95: one steep
    wall does not flatten the picture); ``low == high`` for a constant energy.  Raises
    :class:`ValueError` when no value is finite."""
    finite = e[np.isfinite(e)]
    if finite.size == 0:
        raise ValueError(f"the energy is not finite anywhere on {where}: nothing to draw")
    low = float(finite.min())
    high = float(np.quantile(finite, quantile))
    if high <= low:
        high = float(finite.max())
    return low, high


def _is_flat(low: float, high: float) -> bool:
    """A spread at round-off of the values: the energy is constant on the plot."""
    return high - low <= 1e-9 * max(1.0, abs(low), abs(high))


def plot_landscape_1d(model: FittedModel, states: np.ndarray, ax=None, truth=None):
    """Energy curve over the data range with the data histogram beneath (1-D states)."""
    ax = _axes(ax)
    flat = states.reshape(-1)
    low, high = flat.min(), flat.max()
    pad = 0.15 * (high - low + 1e-12)
    grid = np.linspace(low - pad, high + pad, 400)
    e = np.asarray(model.energy(grid[:, None]))
    outside = (grid < low) | (grid > high)
    ax.plot(grid, np.where(outside, np.nan, e), color="C0", lw=2, label="learned E")
    ax.plot(grid, np.where(outside, e, np.nan), color="C0", lw=1, ls=":", label="extrapolated")
    _band_1d(model, grid, e, ax)
    if truth is not None:
        t = np.asarray(truth.energy(grid[:, None]))
        t = t - np.min(np.asarray(truth.energy(flat[:, None])))
        ax.plot(grid, t, color="k", lw=1, ls="--", label="true E")
    shown = e[~outside] if np.isfinite(e[~outside]).any() else e
    low_e, high_e = _energy_range(shown, "the plotted range", quantile=1.0)
    if _is_flat(low_e, high_e):  # a constant energy: a flat line in a window around it
        half = max(1.0, abs(low_e))
        ax.set_ylim(low_e - half, low_e + half)
        ax.text(0.02, 0.95, "E is constant over the data", transform=ax.transAxes, fontsize=8,
                va="top")  # fmt: skip
    else:
        span = high_e - low_e
        ax.set_ylim(low_e - 0.1 * span, high_e + 0.3 * span)
    ax.set_xlabel("x0")
    ax.set_ylabel("E(x)  (min over data = 0)")
    twin = ax.twinx()
    twin.hist(flat, bins=60, color="C1", alpha=0.3, density=True)
    twin.set_ylabel("data density", color="C1")
    ax.set_zorder(twin.get_zorder() + 1)  # curves above the histogram
    ax.patch.set_visible(False)
    ax.set_title(model.formula if len(model.formula) < 70 else model.energy_spec, fontsize=9)
    ax.legend(loc="upper center", fontsize=8)
    return ax


def _band_1d(model: FittedModel, grid: np.ndarray, e: np.ndarray, ax) -> None:
    """The ±2σ band of ``E(x) − E(x*)`` (:func:`~iel.estimators.uncertainty.energy_band`;
    the bootstrap's percentile band where it has no covariance): wide where data are sparse."""
    unc = model.uncertainty or {}
    std = energy_band(model, grid[:, None])
    if std is not None and np.isfinite(std).any():
        ax.fill_between(grid, e - 2 * std, e + 2 * std, color="C0", alpha=0.2, lw=0,
                        label="±2 s.e. (E − E at the data minimum)")  # fmt: skip
    elif "energy_band" in unc:
        points = np.asarray(unc["energy_band"]["points"], dtype=float)[:, 0]
        low, high = (np.asarray(unc["energy_band"][k], dtype=float) for k in ("low", "high"))
        ax.fill_between(points, low, high, color="C0", alpha=0.2, lw=0,
                        label=f"bootstrap {100 * unc.get('level', 0.95):.0f} %")  # fmt: skip


def _band_2d(model, grid: np.ndarray, xx, yy, span: float, ax) -> None:
    """Hatching where the ±2σ band of ``E(x) − E(x*)`` is wider than a tenth of the plotted
    energy range: where the data leave the landscape uncertain."""
    std = energy_band(model, grid)
    if std is None or not np.isfinite(std).any() or span <= 0:
        return
    wide = np.where(np.isfinite(std), 2 * std, np.inf) > 0.1 * span
    if wide.any():
        ax.contourf(xx, yy, wide.astype(float), levels=[0.5, 1.5], colors="none",
                    hatches=["///"])  # fmt: skip
        ax.plot([], [], color="k", lw=0, marker="s", mfc="none", label="2 s.e. > 10 % of E range")


def plot_landscape_2d(
    model: FittedModel,
    states: np.ndarray,
    ax=None,
    paths: np.ndarray | None = None,
    slice_at: np.ndarray | None = None,
    max_paths: int = 30,
):
    """Contour plot of ``E`` over the first two coordinates, with sample trajectories.

    For ``d > 2`` the plot is the slice through ``slice_at`` (default: the data mean).
    """
    ax = _axes(ax)
    flat = states.reshape(-1, states.shape[-1])
    low, high = flat[:, :2].min(axis=0), flat[:, :2].max(axis=0)
    pad = 0.1 * (high - low + 1e-12)
    gx = np.linspace(low[0] - pad[0], high[0] + pad[0], 120)
    gy = np.linspace(low[1] - pad[1], high[1] + pad[1], 120)
    xx, yy = np.meshgrid(gx, gy)
    base = flat.mean(axis=0) if slice_at is None else np.asarray(slice_at, dtype=float)
    grid = np.broadcast_to(base, (*xx.shape, flat.shape[1])).copy()
    grid[..., 0], grid[..., 1] = xx, yy
    e = np.asarray(model.energy(grid), dtype=float)
    lo, hi = _energy_range(e, "the plotted grid")
    flat_energy = _is_flat(lo, hi)
    if flat_energy:  # one colour: levels must increase, so a window around the constant
        half = max(1.0, abs(lo)) * 1e-3
        levels = np.linspace(lo - half, lo + half, 3)
    else:
        levels = np.linspace(lo, hi, 25)
    shown = np.ma.clip(np.ma.masked_invalid(e), levels[0], levels[-1])  # NaN/inf left blank
    cs = ax.contourf(xx, yy, shown, levels=levels, cmap="viridis")
    plt.colorbar(cs, ax=ax, label="E(x)")
    _band_2d(model, grid, xx, yy, hi - lo, ax)
    if paths is not None:
        for path in paths[:max_paths]:
            ax.plot(path[:, 0], path[:, 1], color="w", lw=0.5, alpha=0.6)
    else:
        show = flat[np.random.default_rng(0).choice(len(flat), min(len(flat), 3000), False)]
        ax.scatter(show[:, 0], show[:, 1], s=1, color="w", alpha=0.4)
    ax.add_patch(
        plt.Rectangle(low, *(high - low), fill=False, ls="--", ec="r", lw=0.8, label="data range")
    )
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    title = model.formula if len(model.formula) < 70 else f"E: {model.energy_spec}"
    if flat.shape[1] > 2:
        title += f"\n(slice through the data mean, d = {flat.shape[1]})"
    if flat_energy:
        title += "\n(E is constant over the plot)"
    if not np.isfinite(e).all():
        title += f"\n(blank: E not finite at {np.mean(~np.isfinite(e)):.0%} of the grid)"
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    return ax


def plot_diffusion(model: FittedModel, states: np.ndarray, ax=None):
    """The noise level ``tr D(x)/d`` of a model with a state-dependent diffusion: a curve over
    the data range (1-D) or contours over the first two coordinates (slice through the data
    mean for ``d > 2``), with the mean level as the one temperature it replaces."""
    ax = _axes(ax)
    flat = states.reshape(-1, states.shape[-1])
    d = flat.shape[1]
    low, high = flat[:, :2].min(axis=0), flat[:, :2].max(axis=0)
    pad = 0.1 * (high - low + 1e-12)
    if d == 1:
        grid = np.linspace(low[0] - pad[0], high[0] + pad[0], 300)[:, None]
        level = np.trace(np.asarray(model.diffusion(grid)), axis1=-2, axis2=-1)
        ax.plot(grid[:, 0], level, color="C3", lw=2, label="D(x)")
        ax.axhline(float(np.mean(level)), color="k", lw=0.8, ls=":", label="its mean")
        ax.axvspan(low[0], high[0], color="0.9", zorder=0, label="data range")
        ax.set_xlabel("x0")
        ax.set_ylabel("D(x)")
        ax.legend(fontsize=7)
    else:
        gx = np.linspace(low[0] - pad[0], high[0] + pad[0], 80)
        gy = np.linspace(low[1] - pad[1], high[1] + pad[1], 80)
        xx, yy = np.meshgrid(gx, gy)
        grid = np.broadcast_to(flat.mean(axis=0), (*xx.shape, d)).copy()
        grid[..., 0], grid[..., 1] = xx, yy
        level = np.trace(np.asarray(model.diffusion(grid)), axis1=-2, axis2=-1) / d
        cs = ax.contourf(xx, yy, level, levels=20, cmap="magma")
        plt.colorbar(cs, ax=ax, label="tr D(x)/d")
        ax.add_patch(plt.Rectangle(low, *(high - low), fill=False, ls="--", ec="c", lw=0.8))
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    ax.set_title("noise level tr D(x)/d (state-dependent diffusion)", fontsize=9)
    return ax


@dataclass(frozen=True)
class _Landscape:
    """What the landscape plots read of a model: ``energy`` on ``(..., d)``, a title."""

    energy: Callable
    formula: str
    energy_spec: str
    uncertainty: None = None  # no band: the parts of a particle energy carry no covariance
    dynamics: None = None


def particle_landscapes(model: FittedModel, populations: list[np.ndarray]):
    """``[(landscape, points), …]`` for a particle energy ``Σ_i V(x_i) + 1/(2n) Σ W(x_i − x_j)``:
    ``V`` over the particles' states and ``W`` over differences of particles of the same
    snapshot (a sample of about 20 000), each shifted to 0 at its minimum over its points."""

    particle = model.energy_module
    parts = []
    if particle.one_body is not None:
        parts.append((particle.one_body, np.concatenate(populations), "V(x)"))
    if particle.pair is not None:
        parts.append((particle.pair, pair_differences(populations), "W(r), r = x_i − x_j"))
    out = []
    for energy, points, name in parts:
        floor = float(np.min(np.asarray(energy.energy(points))))
        formula = f"{name}: {energy.formula().split('= ', 1)[-1]}"
        shifted = _Landscape(lambda x, e=energy, c=floor: e.energy(x) - c, formula,
                             f"{name}: {model.energy_spec}")  # fmt: skip
        out.append((shifted, points))
    return out


def save_landscape(model: FittedModel, data, path: str | Path, truth=None) -> Path:
    """Write ``landscape.png`` for a model and its data container: 1-D curve with the data
    histogram, 2-D contours with the trajectories, or a 2-D slice for higher ``d``.  A particle
    energy gets one panel for ``V`` and one for ``W`` (over particle differences); a fitted
    state-dependent diffusion a panel of its noise level (:func:`plot_diffusion`)."""

    states = data.observed_states()
    paths = data.x if isinstance(data, Trajectories) else None
    if isinstance(model.energy_module, ParticleEnergy):
        populations = data.populations() if hasattr(data, "populations") else [states]
        panels = particle_landscapes(model, populations)
        truth, paths = None, None
    else:
        panels = [(model, states)]
    noise = getattr(model.dynamics, "diffusion", None) is not None and len(panels) == 1
    count = len(panels) + noise
    fig, axes = plt.subplots(1, count, figsize=(6.5 * count, 5), squeeze=False)
    for ax, (shown, points) in zip(axes[0], panels):
        if states.shape[-1] == 1:
            plot_landscape_1d(shown, points, ax=ax, truth=truth)
        else:
            plot_landscape_2d(shown, points, ax=ax, paths=paths)
    if noise:  # a fitted D(x): its noise level beside the landscape
        plot_diffusion(model, states, ax=axes[0][-1])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_embedding_landscape(adata, basis: str = "X_umap", ax=None, grid: int = 25,
                             max_cells: int = 20_000):  # fmt: skip
    """Cells in a 2-D embedding coloured by ``obs["iel_potential"]``, with the drift as arrows:
    ``obsm["velocity_<b>"]`` (``b`` = ``basis`` without ``X_``; ``velocity_umap`` for
    ``X_umap``) averaged over the cells of each square of a ``grid × grid`` mesh with at least
    three cells (at most ``max_cells`` cells are drawn, a fixed random subset).  Needs what
    :func:`iel.fit_anndata` writes; returns the axes."""
    short = basis[2:] if basis.startswith("X_") else basis
    missing = [f"obsm[{k!r}]" for k in (basis, f"velocity_{short}") if k not in adata.obsm]
    missing += [] if "iel_potential" in adata.obs else ["obs['iel_potential']"]
    if missing:
        keys = ", ".join(map(str, adata.obsm.keys()))
        raise ValueError(f"the embedding plot needs {', '.join(missing)} (written by "
                         f"iel.fit_anndata); obsm has {keys}")  # fmt: skip
    ax = _axes(ax)
    u = np.asarray(adata.obsm[basis], dtype=float)[:, :2]
    v = np.asarray(adata.obsm[f"velocity_{short}"], dtype=float)[:, :2]
    e = np.asarray(adata.obs["iel_potential"], dtype=float)
    show = np.random.default_rng(0).permutation(len(u))[:max_cells]
    low, high = _energy_range(e, "the cells")
    points = ax.scatter(u[show, 0], u[show, 1], c=np.clip(e[show], low, high), s=2,
                        cmap="viridis", rasterized=True)  # fmt: skip
    plt.colorbar(points, ax=ax, label="E (iel_potential)")
    edges = [np.linspace(u[:, j].min(), u[:, j].max() + 1e-12, grid + 1) for j in range(2)]
    cell = [np.clip(np.searchsorted(edges[j], u[:, j], side="right") - 1, 0, grid - 1)
            for j in range(2)]  # fmt: skip
    flat = cell[0] * grid + cell[1]
    counts = np.bincount(flat, minlength=grid * grid)
    keep = counts >= 3
    means = [np.bincount(flat, weights=w, minlength=grid * grid)[keep] / counts[keep]
             for w in (u[:, 0], u[:, 1], v[:, 0], v[:, 1])]  # fmt: skip
    ax.quiver(*means, color="k", angles="xy", width=0.003, alpha=0.8)
    ax.set_xlabel(f"{short} 1")
    ax.set_ylabel(f"{short} 2")
    ax.set_title(f"iel potential and drift −∇E in {basis}", fontsize=9)
    return ax
