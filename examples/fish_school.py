"""A real school of fish: an energy for the drift, and the noise it cannot hold.

**Data**: the polarisation `m = (1/N) Σᵢ (cos θᵢ, sin θᵢ)` of a school of the cichlid fish
*Etroplus suratensis* (Jhawar et al., "Noise-induced schooling of fish", Nature Physics 16,
2020): 24 635 frames 0.12 s apart, read at run time from the file that ships with PyDaddy
(`pip install --no-deps pydaddy`, then `iel.load_fish_school()`); iel holds no copy of it.
`|m| ≈ 1` is a school swimming one way, `|m| ≈ 0` disorder; the 16 frames where the file has
NaN are marked missing.

**Question**: the fish spend most of the time ordered, `|m|` near 1. Is order the minimum of an
energy — does `dm = −∇E dt + √(2T) dW`, with one temperature, explain both how m moves and
where it stays?

**Answer**: no, and the run measures why (table below; the example asserts each point).

* The drift's energy has no ring of minima. The one-step fit of the steps (`poly:4`, and
  energy `"auto"`) is lowest near `|m| ≈ 0`: a bowl. The histogram says the opposite:
  `−T̂ log p(m)` is lowest at `|m| ≈ 1`, with a barrier in between. With one temperature the
  two would agree (`p ∝ exp(−E/T)`); they do not, and `exp(−E/T̂)` on the unit disc puts the
  mean `|m|` well below the data's.
* The noise depends on the state. The local `⟨|Δm|²⟩/(2dΔt)` is about two (over 0.6 s) to five
  (over 0.12 s) times larger in disorder (`|m|` near 0) than in order (`|m|` near 0.9). With
  a diffusion `D(m)` that falls with `|m|` the stationary law is `∝ exp(−∫∇E/D)/D`, which piles
  up where D is small: order induced by noise, the finding of Jhawar et al. and of PyDaddy's
  analysis of these data (a linear drift and a quadratic diffusion). One temperature cannot
  say this; a state-dependent `D(x)` is issue 28. Part of the fall near `|m| = 1` is
  geometric: m cannot leave the unit disc, so its steps outward shrink there.
* The drift is weak and hard to read. It explains about 1 % of the variance of the steps, and
  the one-step residuals are anticorrelated (tracking noise on m; the noise measured over
  0.12 s is about twice that over 0.6 s), so `iel.fit(data)` — method and energy automatic —
  switches to the rollout, which here returns `T̂ = 0` and an energy nearly flat over the data.
  The codes lie within a few hundred bits of the null code `E ≡ const` over ~25 000 steps:
  `poly:4` codes shorter than the null, the bowl is resolved; finer shape is not. Energy
  `"auto"` picks a dense `poly:6+rbf:30` (its notes: the shortest code, `expquad:2`, was
  set aside as a likely local optimum) whose code is *longer* than the null's and than
  `poly:4`'s — the wiggles of its curve are not supported by the data.
* The gradient-system test (an energy against a general drift on the same features) does not
  settle it: `poly:4` against a general quartic drift wins by about one bit, and the general
  drift codes shorter than energy `"auto"`'s pick. It asks whether the drift is a gradient,
  not whether one temperature is right. The report's identifiability (`E` up to a constant
  where the data go, `T` from the quadratic variation) covers the drift and the noise
  *level*; nothing in it checks that the noise is constant — this page does that by hand.
"""

from __future__ import annotations

import numpy as np
from _gallery import Page, plt
from matplotlib.colors import LogNorm

import iel

EDGES = np.linspace(0.0, 1.0, 21)  # |m| bins of width 0.05
LAGS = (1, 5)  # frames: 0.12 s and 0.6 s
DT = iel.datasets.FISH_SCHOOL_DT


def radial_bins(r: np.ndarray) -> np.ndarray:
    """Bin index of each |m| (the last bin takes |m| = 1 and the few frames just above)."""
    return np.clip(np.digitize(r, EDGES) - 1, 0, len(EDGES) - 2)


def boltzmann_on_disc(model, temperature: float, n: int = 201):
    """Mean |m| under exp(−E/T) on the disc |m| ≤ 1 (a grid quadrature)."""
    axis = np.linspace(-1.0, 1.0, n)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    grid = grid[np.linalg.norm(grid, axis=1) <= 1.0]
    energy = np.asarray(model.energy(grid))
    weights = np.exp(-(energy - energy.min()) / temperature)
    return float(np.sum(weights * np.linalg.norm(grid, axis=1)) / np.sum(weights))


def local_temperature(traj, lag: int):
    """⟨|m(t + kΔt) − m(t)|²⟩ / (2 d kΔt) in each |m(t)| bin: the temperature a Langevin
    model would need there (``d = 2``: the per-coordinate value, in the units of T̂)."""
    x, observed = traj.x[0], traj.observed[0]
    ok = observed[:-lag] & observed[lag:]
    start, step = x[:-lag][ok], (x[lag:] - x[:-lag])[ok]
    which = radial_bins(np.linalg.norm(start, axis=1))
    squares = np.sum(step**2, axis=1) / (2 * traj.dim * lag * float(traj.time_steps()[0]))
    counts = np.bincount(which, minlength=len(EDGES) - 1)
    sums = np.bincount(which, squares, minlength=len(EDGES) - 1)
    return np.where(counts >= 20, sums / np.maximum(counts, 1), np.nan), counts


def main(argv=None):
    page = Page("fish_school", __doc__, argv)
    traj = iel.load_fish_school(*page.pick((6000, 9000), (0, None)))
    states = traj.observed_states()
    radius = np.linalg.norm(states, axis=1)
    page.number("frames (observed) × dt", f"{traj.n_times} ({len(states)}) × {DT} s")
    page.number("mean |m| of the data", float(radius.mean()))

    # 1. everything automatic
    automatic = iel.fit(traj)
    page.number("iel.fit(data): method", automatic.method)
    page.number("iel.fit(data): why", automatic.diagnostics["method_reason"])
    page.number("iel.fit(data): T̂", automatic.temperature)
    values = np.asarray(automatic.energy(states))
    flat = float(values.max() - values.min())
    page.number("iel.fit(data): max − min of E over the data", flat)
    # 2. one-step fits, as a Kramers–Moyal analysis reads the steps
    models = {}
    if not page.quick:  # the full description-length search: minutes on the whole series
        selected = iel.fit(traj, "auto", method="onestep")
        models[selected.energy_spec] = selected
        page.number("energy 'auto' (one-step): family", selected.energy_spec)
        page.number("energy 'auto' (one-step): T̂", selected.temperature)
        page.number("energy 'auto': code − null code (bits)",
                    selected.diagnostics["code_length"]["total_bits"]
                    - selected.diagnostics["null_code_bits"])  # fmt: skip
        page.number("energy 'auto': gradient system (its code ≤ a general drift's)",
                    str(selected.diagnostics["gradient_system"]))  # fmt: skip
    test = iel.select(traj, ("poly:4",), search_free=False, collective=False,
                      prequential=False).as_dict()  # fmt: skip
    margin = test["gradient_system_margin_bits"]
    page.number("poly:4 against a general quartic drift: gradient system",
                f"{test['gradient_system']} (margin {margin:.1f} bits)")  # fmt: skip
    poly = iel.fit(traj, "poly:4", method="onestep")
    temperature = poly.temperature
    models = {"poly:4": poly, **models}
    page.number("poly:4 (one-step): T̂", temperature)
    page.number("identifiability (energy)", poly.identifiability["energy"])
    page.number("identifiability (temperature)", poly.identifiability["temperature"])
    page.number("poly:4: drift R² of the steps", poly.diagnostics["drift_r2"])
    values = np.asarray(poly.energy(states))
    spread = float(values.max() - values.min())
    page.number("poly:4: max − min of E over the data", spread)
    bits = poly.diagnostics["code_length_bits"] - poly.diagnostics["null_code_bits"]
    page.number("poly:4: code − null code (bits)", bits)

    # 3. E along |m| against −T̂ log p(m)
    which = radial_bins(radius)
    counts = np.bincount(which, minlength=len(EDGES) - 1)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    area = np.pi * (EDGES[1:] ** 2 - EDGES[:-1] ** 2)
    enough = counts >= 20
    density = counts / (len(states) * area)  # the 2-D density of m, averaged on each ring
    boltzmann = np.where(enough, -temperature * np.log(np.maximum(density, 1e-300)), np.nan)
    boltzmann -= np.nanmin(boltzmann)
    curves = {}
    for name, model in models.items():
        energy = np.asarray(model.energy(states))
        mean = np.bincount(which, energy, minlength=len(EDGES) - 1) / np.maximum(counts, 1)
        mean = np.where(enough, mean, np.nan)
        curves[name] = mean - np.nanmin(mean)
    e_poly = curves["poly:4"]
    page.number("|m| where −T̂ log p is lowest", float(centres[np.nanargmin(boltzmann)]))
    page.number("|m| where E (poly:4) is lowest", float(centres[np.nanargmin(e_poly)]))
    low, ring = np.flatnonzero(enough)[0], len(EDGES) - 3  # first filled bin; |m| ≈ 0.875
    page.number(f"−T̂ log p at |m| ≈ {centres[low]:.3f} minus at |m| ≈ {centres[ring]:.3f}",
                float(boltzmann[low] - boltzmann[ring]))  # fmt: skip
    page.number(f"E (poly:4) at |m| ≈ {centres[low]:.3f} minus at |m| ≈ {centres[ring]:.3f}",
                float(e_poly[low] - e_poly[ring]))  # fmt: skip
    predicted = boltzmann_on_disc(poly, temperature)
    page.number("mean |m| under exp(−E/T̂) on the disc (poly:4)", predicted)

    # 4. the noise depends on the state
    local = {lag: local_temperature(traj, lag)[0] for lag in LAGS}
    overall = {lag: local_temperature(traj, lag) for lag in LAGS}
    overall = {lag: np.nansum(t * c) / np.sum(c[np.isfinite(t)]) for lag, (t, c) in overall.items()}
    page.number("all states: ⟨|Δm|²⟩/(2dΔt) at lag 0.12 s / at lag 0.60 s",
                float(overall[1] / overall[5]))  # fmt: skip
    inner = np.flatnonzero(np.isfinite(local[1]))[0]
    ratios = {lag: local[lag][inner] / local[lag][ring] for lag in LAGS}
    for lag in LAGS:
        page.number(f"local T at |m| ≈ {centres[inner]:.3f} / at |m| ≈ {centres[ring]:.3f} "
                    f"(lag {lag * DT:.2f} s)", float(ratios[lag]))  # fmt: skip

    fig, ax = plt.subplots(1, 4, figsize=(17, 3.6), layout="constrained")
    ax[0].hist2d(states[:, 0], states[:, 1], bins=60, range=[[-1, 1], [-1, 1]], cmap="Greys",
                 norm=LogNorm())  # fmt: skip
    ax[0].set_title("where m goes (2-D histogram, log scale)", fontsize=9)
    axis = np.linspace(-1, 1, 121)
    grid = np.stack(np.meshgrid(axis, axis), -1)
    energy = np.array(poly.energy(grid.reshape(-1, 2))).reshape(grid.shape[:2])
    energy[np.linalg.norm(grid, axis=-1) > 1] = np.nan
    contour = ax[1].contourf(axis, axis, energy - np.nanmin(energy), 20, cmap="viridis")
    fig.colorbar(contour, ax=ax[1])
    ax[1].set_title("fitted E (poly:4, one-step)", fontsize=9)
    for a in ax[:2]:
        a.set_aspect("equal")
        a.set_xlabel("m_x")
        a.set_ylabel("m_y")
    ax[2].plot(centres, boltzmann, "k-", label="−T̂ log p(m)")
    for i, (name, curve) in enumerate(curves.items()):
        ax[2].plot(centres, curve, ("C0--", "C1:")[i], label=f"E, {name}")
    ax[2].set_xlabel("|m|")
    ax[2].set_title("energy along |m| (ring averages)", fontsize=9)
    ax[2].legend(fontsize=6, loc="upper left")
    for lag, style in zip(LAGS, ("C3o-", "C2s--"), strict=True):
        ax[3].plot(centres, local[lag], style, ms=3, label=f"lag {lag * DT:.2f} s")
    ax[3].axhline(temperature, color="k", lw=0.8, label="T̂ (poly:4)")
    ax[3].set_xlabel("|m|")
    ax[3].set_title("local noise ⟨|Δm|²⟩/(2dΔt)", fontsize=9)
    ax[3].legend(fontsize=7)
    page.figure(fig)
    page.write()

    assert centres[np.nanargmin(boltzmann)] >= 0.8, "the data sit on a ring |m| ≈ 1"
    assert centres[np.nanargmin(e_poly)] < 0.5, "the drift's energy has no ring"
    assert predicted < radius.mean() - 0.1, "exp(−E/T̂) puts m closer to 0 than the data"
    assert ratios[1] > 2 and ratios[5] > 1.5, "the noise is larger in disorder"
    assert automatic.temperature < 0.1 * temperature and flat < 0.5 * spread, "rollout: flat"
    assert overall[1] > 1.5 * overall[5], "the 0.12 s steps carry tracking noise"
    return page


if __name__ == "__main__":
    main()
