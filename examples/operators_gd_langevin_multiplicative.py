"""Gradient descent, Boltzmann sampling and the multiplicative update.

**Question** (research note, "Alternative formalisations"): `x ← x − η∇E(x)`, `x ~ exp(−E)/Z`
and `x ← x ⊙ e^{∇E(x)}/Z` — how are they related, and do they find the same minima?

**Answer** (THEORY §1). One energy on the probability simplex `p = (p₁, p₂, p₃)`,
`E(p) = 20((p₁ − p₂)² − 0.16)² + 5(p₃ − 0.2)² + 0.05p₁`: two minima near (0.6, 0.2, 0.2)
and (0.2, 0.6, 0.2), a saddle between them.

* *Gradient descent* (here on the chart `x = (p₁, p₂)`, `p₃ = 1 − p₁ − p₂`) stops where
  `∇E = 0`: at the minimum of the basin it starts in — its end is a function of the start.
* *Exponentiated gradient* `p ← p ⊙ exp(−η∇E(p))/Z` (mirror descent with the entropy map;
  the note's `exp(+∇E)` *ascends* E) stops where `∂ᵢE − Σⱼ pⱼ∂ⱼE = 0`: the KKT points of E on
  the simplex. In the interior these are exactly the chart's `∇E = 0`, so both operators share
  their fixed points. The paths differ: EG is a gradient flow in the Fisher–Rao metric
  (`ṗᵢ = −pᵢ(∂ᵢE − Σⱼpⱼ∂ⱼE)`), slow near the faces, so a start close to the basin boundary
  can end in the other minimum.
* *Langevin* `x ← x − h∇E + √(2hT)ξ` samples `exp(−E/T)/Z`: it finds the same minima as the
  modes of its law, but forgets the start — chains started in one well fill both wells in the
  Boltzmann proportions. As `T → 0` it becomes gradient flow (GD's continuous limit). (Here it
  runs on the chart, where E is a polynomial defined everywhere, so a few samples step just
  outside the simplex.)

So "both find the minima" with a qualifier: descent keeps the start's basin, sampling does
not. iel fits E back from the descent paths (noise-free: exact) and from the Langevin paths
(E and T); from *multiplicative* (simplex) data with `--dynamics exponentiated`, see
[Three operators on the simplex](three_operators_simplex.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _gallery import Page, plt

import iel
from iel.energies import AbstractEnergy

T = 0.15


class SimplexWell(AbstractEnergy):
    """The energy above, on the simplex (`chart=False`, 3 coordinates) or on its chart."""

    chart: bool = False

    def __call__(self, x):
        p = jnp.stack([x[0], x[1], 1.0 - x[0] - x[1]]) if self.chart else x
        return 20.0 * ((p[0] - p[1]) ** 2 - 0.16) ** 2 + 5.0 * (p[2] - 0.2) ** 2 + 0.05 * p[0]

    def config(self):  # pragma: no cover - an example energy is not saved
        raise TypeError("example energy")

    @classmethod
    def from_config(cls, config):  # pragma: no cover
        raise TypeError("example energy")


def ternary(p):
    """Simplex points `(..., 3)` (or chart points `(..., 2)`) to 2-D plot coordinates."""
    p = np.asarray(p)
    p3 = p[..., 2] if p.shape[-1] == 3 else 1 - p[..., 0] - p[..., 1]
    return np.stack([p[..., 1] + 0.5 * p3, np.sqrt(3) / 2 * p3], -1)


def main(argv=None):
    page = Page("operators_gd_langevin_multiplicative", __doc__, argv)
    simplex, chart = SimplexWell(False), SimplexWell(True)
    rng = np.random.default_rng(0)
    starts = rng.dirichlet(np.ones(3), page.pick(100, 400))
    key = jax.random.PRNGKey(0)
    gd = iel.simulate(chart, iel.GradientDescent(), starts[:, :2], 2000, key, 0.01)
    eg = iel.simulate(simplex, iel.ExponentiatedGradient(), starts, 2000, key, 0.01)
    gd_end, eg_end = gd.x[:, -1], eg.x[:, -1, :2]
    minima = np.unique(np.round(gd_end, 3), axis=0)  # then each as the mean of its cluster
    minima = np.array([gd_end[np.linalg.norm(gd_end - m, axis=1) < 0.01].mean(0) for m in minima])
    page.number(
        "minima reached by GD (p₁, p₂)", "; ".join(f"({a:.3f}, {b:.3f})" for a, b in minima)
    )
    shared = float(np.max(np.min(np.linalg.norm(eg_end[:, None] - minima[None], axis=-1), 1)))
    page.number("largest distance of an EG end state to a GD minimum", shared)
    kkt = float(np.max(np.abs(chart.gradient(eg_end))))
    page.number("largest |∇E| (chart) at the EG end states", kkt)
    same = float(np.mean((gd_end[:, 0] > gd_end[:, 1]) == (eg_end[:, 0] > eg_end[:, 1])))
    page.number("starts whose GD and EG runs end in the same minimum", f"{same:.1%}")
    ascent = iel.simulate(simplex, iel.ExponentiatedGradient(sign=1), starts, 200, key, 0.01)
    rises = float(np.mean(simplex.energy(ascent.x[:, -1]) > simplex.energy(starts)))
    page.number("note's exp(+∇E): runs whose energy rose", f"{rises:.0%}")

    # Langevin from one well: it forgets the start and fills both wells as exp(−E/T) does
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 2, 301)] * 2), -1).reshape(-1, 2)
    weight = np.exp(-(np.asarray(chart.energy(grid)) - np.min(chart.energy(grid))) / T)
    boltzmann = float(weight[grid[:, 0] > grid[:, 1]].sum() / weight.sum())
    one_well = np.tile([[0.2, 0.6]], (page.pick(300, 1000), 1))
    chains = iel.simulate(chart, iel.Langevin(T), one_well, 4000, jax.random.PRNGKey(1), 0.005)
    share = float(np.mean(chains.x[:, -1, 0] > chains.x[:, -1, 1]))
    page.number(f"Langevin (T = {T}) from the p₂ well: share ending in the p₁ well", share)
    page.number("Boltzmann weight of the p₁ well", boltzmann)

    # fit E back from GD paths (exact) and from short Langevin paths (E and T)
    gd_short = iel.Trajectories(gd.x[:, :301], dt=0.01)  # the first 300 steps
    walk = iel.Trajectories(chains.x[:100, : page.pick(400, 1000) + 1], dt=0.005)
    errors = {}
    for label, data in (("GD", gd_short), ("Langevin", walk)):
        model = iel.fit(data, "poly:4", method="onestep")
        x = data.x.reshape(-1, 2)
        true = np.asarray(chart.gradient(x))
        errors[label] = float(np.linalg.norm(model.grad(x) - true) / np.linalg.norm(true))
        page.number(f"fit from {label} paths: relative error of ∇E on the data", errors[label])
        if label == "Langevin":
            page.number("fit from Langevin paths: temperature", model.temperature)
    refit = iel.simulate(model.energy_module, iel.GradientDescent(), minima + 0.02, 2000, key,
                         0.01)  # fmt: skip
    moved = float(np.max(np.abs(refit.x[:, -1] - minima)))
    page.number("minima of the energy fitted from Langevin paths: largest shift", moved)

    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    mesh = np.stack(np.meshgrid(*[np.linspace(0, 1, 81)] * 2), -1).reshape(-1, 2)
    mesh = mesh[mesh.sum(1) <= 1]
    levels = np.min(chart.energy(mesh)) + np.linspace(0, 1.5, 16) ** 2
    vertices = np.eye(3)
    for a in ax:
        a.tricontour(*ternary(mesh).T, np.asarray(chart.energy(mesh)), levels, colors="0.75",
                     linewidths=0.6)  # fmt: skip
        a.plot(*ternary(vertices[[0, 1, 2, 0]]).T, "k-", lw=0.8)
        for v, name in zip(ternary(vertices), ("p₁ = 1", "p₂ = 1", "p₃ = 1")):
            a.annotate(name, v, ha="center", va="top" if v[1] == 0 else "bottom", fontsize=8)
        a.plot(*ternary(minima).T, "r*", ms=12, label="minima (shared fixed points)")
        a.set_aspect("equal")
        a.axis("off")
    for i in range(12):
        ax[0].plot(
            *ternary(gd.x[i, ::10]).T, "C0-", lw=1, label="gradient descent" if i == 0 else None
        )
        ax[0].plot(*ternary(eg.x[i, ::10]).T, "C1--", lw=1, label="exponentiated gradient" if i == 0
                   else None)  # fmt: skip
    ax[0].set_title("same E, same fixed points, different paths", fontsize=9, pad=14)
    ax[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.02), frameon=False)
    ends = ternary(chains.x[:, -1])
    ax[1].plot(*ends.T, ".", color="C2", ms=2, label=f"Langevin T = {T}, t = 20")
    ax[1].plot(*ternary(one_well[:1]).T, "ko", ms=6, label="all chains start here")
    ax[1].set_title(f"sampling forgets the start ({share:.0%} vs Boltzmann {boltzmann:.0%})",
                    fontsize=9, pad=14)  # fmt: skip
    ax[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.02), frameon=False)
    page.figure(fig)
    page.write()

    assert len(minima) == 2 and shared < 1e-2 and kkt < 1e-3, "EG and GD must share fixed points"
    assert same > 0.9 and rises > 0.9
    assert abs(share - boltzmann) < 0.1, "Langevin must reach the Boltzmann proportions"
    assert errors["GD"] < 1e-6 and errors["Langevin"] < 0.15 and moved < 0.03
    return page


if __name__ == "__main__":
    main()
