"""Learning a distribution versus learning an energy.

**Question** (research note, "Related work"): "What is the difference between learning a
distribution and learning an energy? Obviously, the distribution needs to be normalised. But
is that the only difference?" — and is `ds/dt = −η ∂p/∂s` the right flow?

**Answer** (THEORY §2). In state space only the score matters, `∇log p = −∇E/T`: Z drops out
of the dynamics. What differs is what the *data* identify, on the double well `E = (x² − 1)²`:

* (a) **equilibrium samples** `x ~ exp(−E/T)/Z` (a distribution): score matching identifies
  `E/T` up to a constant — never E and T apart;
* (b) **Langevin trajectories** with known times: the one-step fit identifies E and T
  separately (drift gives ∇E, the quadratic variation gives T);
* (c) **end states of gradient descent**: E only up to an increasing map `g(E)` — the minima
  and how much of the prior on starts each basin catches, not the energy's values: see
  [end states and their starts](end_states_and_starts.md).

And the flow must follow the score `∇log p = −∇E/T`, not `∇p` (the note's `∂p/∂s`, which
also runs uphill with its minus sign): Langevin driven by `∇p` has a nearly flat stationary law
— where p is small, `∇p` is small too, so nothing pulls the particles back (right panel).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _gallery import Page, plt
from scipy.integrate import trapezoid

import iel
from iel.energies import AbstractForceField

T = 0.5
ENERGY = iel.get_system("double_well").energy  # E = (x² − 1)²


class DensityGradientField(AbstractForceField):
    """The notes' ``ds/dt = η ∂p/∂s``: drift along ∇p (not ∇log p), p = exp(−E/T)/Z."""

    normaliser: float

    def force_single(self, x):
        return jax.grad(lambda y: jnp.exp(-ENERGY(y) / T) / self.normaliser)(x)

    def config(self):  # pragma: no cover - not saved
        raise TypeError("example field")

    @classmethod
    def from_config(cls, config):  # pragma: no cover
        raise TypeError("example field")


def main(argv=None):
    page = Page("distribution_vs_energy", __doc__, argv)
    rng = np.random.default_rng(0)
    # (a) equilibrium samples: exact Boltzmann samples by MALA
    n, mala_steps = page.pick((2000, 1000), (4000, 1500))
    chains = iel.simulate(ENERGY, iel.MALA(T), rng.normal(size=(n, 1)), mala_steps,
                          jax.random.PRNGKey(0), 0.02, save_every=mala_steps)  # fmt: skip
    density_model = iel.fit(iel.Samples(chains.x[:, -1]), "poly:4")
    a = dict(density_model.energy_module.terms())
    page.number("(a) samples identify", density_model.identifiability["energy"].split(":")[0])
    page.number("(a) x⁴ coefficient (true 1/T = 2)", a["x0^4"])
    page.number("(a) x² coefficient (true −2/T = −4)", a["x0^2"])
    # (b) Langevin trajectories
    traj = iel.systems.simulate_system("double_well", n=200, steps=500, dt=0.01,
                                       temperature=T, x0=rng.normal(size=(200, 1)),
                                       seed=1)  # fmt: skip
    energy_model = iel.fit(traj)  # energy "auto": the shortest description
    b = {**{"x0^2": 0.0, "x0^4": 0.0}, **dict(energy_model.energy_module.terms())}
    page.number("(b) trajectories: formula (energy 'auto')", energy_model.formula)
    page.number("(b) trajectories: temperature (true 0.5)", energy_model.temperature)
    # ∇p instead of ∇log p: the stationary law is nearly flat, not exp(−E/T)
    grid = np.linspace(-3, 3, 2001)
    weights = np.exp(-np.asarray(ENERGY.energy(grid[:, None])) / T)
    z = trapezoid(weights, grid)
    boltzmann_std = float(np.sqrt(trapezoid(grid**2 * weights, grid) / z))
    starts = rng.normal(size=(page.pick(1000, 2000), 1))
    key = jax.random.PRNGKey(2)
    wrong = iel.simulate(DensityGradientField(float(z)), iel.Langevin(T), starts, 4000, key, 0.01,
                         save_every=4000).x[:, -1, 0]  # fmt: skip
    right = iel.simulate(ENERGY, iel.Langevin(T), starts, 4000, key, 0.01,
                         save_every=4000).x[:, -1, 0]  # fmt: skip
    page.number("std of Langevin samples with ∇log p (Boltzmann law)",
                f"{np.std(right):.3f} ({boltzmann_std:.3f})")  # fmt: skip
    page.number("std of Langevin samples with ∇p", float(np.std(wrong)))

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    x = grid[np.abs(grid) < 2]
    true = np.asarray(ENERGY.energy(x[:, None]))
    for label, values, style in (
        ("true E", true, "k-"),
        ("(a) samples: T·(E/T), true T", T * np.asarray(density_model.energy(x[:, None])), "C0--"),
        ("(b) trajectories: E", np.asarray(energy_model.energy(x[:, None])), "C1:"),
    ):
        ax[0].plot(x, values - values.min(), style, label=label)
    ax[0].set_xlabel("x")
    ax[0].legend(fontsize=7)
    ax[0].set_title("what each kind of data identifies", fontsize=9)
    bins = np.linspace(-8, 8, 81)
    ax[1].hist(right, bins, density=True, alpha=0.6, label="Langevin on ∇log p")
    ax[1].hist(wrong, bins, density=True, alpha=0.6, label="Langevin on ∇p")
    ax[1].plot(grid, weights / z, "k-", lw=1, label="exp(−E/T)/Z")
    ax[1].set_xlabel("x")
    ax[1].legend(fontsize=7)
    page.figure(fig)
    page.write()

    assert abs(a["x0^4"] - 1 / T) < 0.05 / T and abs(a["x0^2"] + 2 / T) < 0.1 / T, "E/T"
    assert abs(b["x0^4"] - 1) < 0.03 and abs(b["x0^2"] + 2) < 0.06, "E and T apart"
    assert abs(energy_model.temperature - T) < 0.02 * T
    assert abs(np.std(right) - boltzmann_std) < 0.1 * boltzmann_std
    assert np.std(wrong) > 3 * boltzmann_std, "∇p: the wrong stationary law"
    return page


if __name__ == "__main__":
    main()
