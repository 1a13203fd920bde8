"""Energies compose: learn two, add them, predict a third system.

**Question**: if one system minimises `E₁` and another `E₂`, does learning each separately give
the pieces of a system that minimises `E₁ + E₂`?

**Answer**: yes, because forces add: `−∇(E₁ + E₂) = −∇E₁ − ∇E₂`. Each fit identifies its energy
up to an additive constant (Langevin trajectories with known times fix E itself, not `E/T` or
`η·E`, so the two pieces are on the same scale); the sum is then determined up to one constant,
which moves no minimum. In iel energies are Equinox modules and form a vector space:
`e1 + e2` is a `SumEnergy`, `c * e` a `ScaledEnergy` (`iel.energies`), so the learned sum is
one line and simulates like any energy.

Here system 1 is a tilted bowl `E₁ = 0.15(x₀² + x₁²) − 0.3x₀` (fitted in `poly:2`), system 2 a
ripple `E₂ = −cos 2x₀ − 0.5 cos 2x₁` (fitted in `fourier:2`), each observed as Langevin
trajectories at T = 0.3 (time steps 0.05 and 0.01). Neither alone has the minima of the sum:
the bowl has one, the ripple a whole lattice. Gradient descent on `Ê₁ + Ê₂` from a grid of
starts is compared with descent on the true `E₁ + E₂` from the same starts: the same nine
minima, each start in the same basin.
(Caveat: each piece is known only where its data went; the sum is trusted on the overlap.)
"""

from __future__ import annotations

import jax
import numpy as np
from _gallery import Page, plt

import iel

T = 0.3


def feature_energy(library, coefficients):
    theta = np.array([coefficients.get(name, 0.0) for name in library.names()])
    return iel.FeatureEnergy(library, theta=theta)


def main(argv=None):
    page = Page("composing_energies", __doc__, argv)
    bowl = feature_energy(iel.Monomials(2, 2), {"x0^2": 0.15, "x1^2": 0.15, "x0": -0.3})
    ripple = feature_energy(iel.Fourier(2, 2), {"cos(2*x0)": -1.0, "cos(2*x1)": -0.5})
    true_sum = bowl + ripple  # a SumEnergy
    rng = np.random.default_rng(0)
    n, steps = page.pick((100, 300), (400, 1000))
    fits = []
    systems = ((bowl, "poly:2", 0.05), (ripple, "fourier:2", 0.01))  # the bowl is slow: longer h
    for i, (truth, family, dt) in enumerate(systems):
        walk = iel.simulate(truth, iel.Langevin(T), rng.uniform(-4, 4, (n, 2)), steps,
                            jax.random.PRNGKey(i), dt)  # fmt: skip
        model = iel.fit(walk, family, method="onestep")
        error = float(np.max(np.abs(model.energy_module.theta - truth.theta)))
        page.number(f"system {i + 1} ({family}): fitted", model.formula)
        page.number(f"system {i + 1}: largest coefficient error", error)
        page.number(f"system {i + 1}: temperature", model.temperature)
        fits.append((model, error))
    learned_sum = fits[0][0].energy_module + fits[1][0].energy_module
    page.number("learned sum", type(learned_sum).__name__ + " of two learned energies")

    starts = np.stack(np.meshgrid(*[np.linspace(-4, 4, page.pick(9, 17))] * 2), -1).reshape(-1, 2)
    key = jax.random.PRNGKey(0)
    ends = {}
    for label, energy in (("true", true_sum), ("learned", learned_sum)):
        run = iel.simulate(energy, iel.GradientDescent(), starts, 2000, key, 0.05, save_every=2000)
        ends[label] = run.x[:, -1]
    minima = np.unique(np.round(ends["true"], 1), axis=0)
    learned_minima = np.unique(np.round(ends["learned"], 1), axis=0)
    shift = np.linalg.norm(ends["learned"] - ends["true"], axis=1)
    same_basin = float(np.mean(shift < 0.3))
    page.number("minima of the true sum reached from the grid", len(minima))
    page.number("minima of the learned sum reached from the grid", len(learned_minima))
    page.number("starts ending in the same minimum (learned vs true sum)", f"{same_basin:.0%}")
    page.number("largest distance between corresponding end states", float(np.max(shift)))

    axis = np.linspace(-4, 4, 81)
    grid = np.stack(np.meshgrid(axis, axis), -1)
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.6))
    panels = (("Ê₁ (from system 1)", fits[0][0].energy_module),
              ("Ê₂ (from system 2)", fits[1][0].energy_module),
              ("Ê₁ + Ê₂ and its minima", learned_sum))  # fmt: skip
    for a, (title, energy) in zip(ax, panels):
        a.contourf(axis, axis, np.asarray(energy.energy(grid)), 20, cmap="viridis")
        a.set_title(title, fontsize=9)
        a.set_aspect("equal")
    ax[2].plot(*ends["true"].T, "wx", ms=9, mew=2, label="true sum's minima")
    ax[2].plot(*ends["learned"].T, "r.", ms=5, label="learned sum's minima")
    ax[2].legend(fontsize=7, loc="lower left")
    page.figure(fig)
    page.write()

    assert fits[0][1] < 0.1 and fits[1][1] < 0.1, "each piece recovered"
    assert len(minima) == len(learned_minima) == 9, "the sum has the lattice of nine minima"
    assert same_basin == 1.0 and np.max(shift) < 0.25, "same minima from the same starts"
    return page


if __name__ == "__main__":
    main()
