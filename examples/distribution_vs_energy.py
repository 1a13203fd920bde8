"""Distribution versus energy (the research notes' question, THEORY §2), on the double well.

(a) equilibrium samples → score matching identifies E/T;
(b) Langevin trajectories → the one-step fit identifies E and T separately;
(c) end states of gradient descent → E only up to an increasing map: the minima and how much
    of the prior on starts each basin catches, not the energy's values;
and Langevin driven by ∇p instead of ∇log p = −∇E/T has the wrong stationary law.

Run: ``python examples/distribution_vs_energy.py``; prints what each identifies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import trapezoid

import iel
from iel.energies.base import AbstractForceField
from iel.estimators.endpoints.end_states import EndStates
from iel.estimators.endpoints.start_priors import NormalPrior
from iel.systems import get_system, simulate_system

T = 0.5
energy = get_system("double_well").energy  # E = (x² − 1)²


class DensityGradientField(AbstractForceField):
    """The notes' ``ds/dt = η ∂p/∂s``: drift along ∇p (not ∇log p), p = exp(−E/T)/Z."""

    normaliser: float

    def force_single(self, x):
        return jax.grad(lambda y: jnp.exp(-energy(y) / T) / self.normaliser)(x)

    def config(self):  # pragma: no cover - not saved
        raise TypeError("example field")

    @classmethod
    def from_config(cls, config):  # pragma: no cover
        raise TypeError("example field")


def main() -> dict:
    rng = np.random.default_rng(0)
    # (a) equilibrium samples: exact Boltzmann samples by MALA
    chains = iel.simulate(energy, iel.MALA(T), rng.normal(size=(4000, 1)), 1500,
                          jax.random.PRNGKey(0), 0.02, save_every=1500)  # fmt: skip
    samples = iel.Samples(chains.x[:, -1])
    density_model = iel.fit(samples, "poly:4")
    a = dict(density_model.energy_module.terms())
    what = density_model.identifiability["energy"].split(":")[0]
    print(f"(a) samples     → {what}: x⁴ {a['x0^4']:.3f} (true {1 / T}), "
          f"x² {a['x0^2']:.3f} (true {-2 / T})")  # fmt: skip
    # (b) Langevin trajectories
    traj = simulate_system("double_well", n=200, steps=500, dt=0.01, temperature=T,
                           x0=rng.normal(size=(200, 1)), seed=1)  # fmt: skip
    energy_model = iel.fit(traj)
    print(f"(b) trajectories → E and T: {energy_model.formula}, T = {energy_model.temperature:.4f}")
    # (c) converged end states of gradient descent from starts z ~ N(0.3, 0.8²)
    prior = NormalPrior(np.array([0.3]), np.array([0.8]))
    starts = prior.sample(rng, 600)
    descent = iel.simulate(energy, iel.GradientDescent(), starts, 2000, jax.random.PRNGKey(3),
                           0.01, save_every=2000)  # fmt: skip
    ends = iel.Endpoints(descent.x[:, -1])
    end_model = EndStates("poly:4", prior=prior, steps=500, batch=256).fit(ends).model_
    minima = sorted(end_model.diagnostics["minima"], key=lambda m: m["location"][0])
    barrier = float(end_model.energy(np.zeros((1, 1)))[0] - min(m["energy"] for m in minima))
    print("(c) end states  → E up to an increasing map: minima "
          + ", ".join(f"{m['location'][0]:+.3f} ({m['share']:.0%} of end states, "
                      f"{m['prior_share']:.0%} of the prior)" for m in minima)
          + f"; barrier {barrier:.3g} (true 1: energy values are a convention here)")  # fmt: skip
    # ∇p instead of ∇log p: the stationary law is nearly flat, not exp(−E/T)
    grid = np.linspace(-3, 3, 2001)
    weights = np.exp(-np.asarray(energy.energy(grid[:, None])) / T)
    z = trapezoid(weights, grid)
    boltzmann_std = float(np.sqrt(trapezoid(grid**2 * weights, grid) / z))
    starts = rng.normal(size=(2000, 1))
    wrong = iel.simulate(DensityGradientField(float(z)), iel.Langevin(T), starts, 4000,
                         jax.random.PRNGKey(2), 0.01, save_every=4000)  # fmt: skip
    right = iel.simulate(energy, iel.Langevin(T), starts, 4000, jax.random.PRNGKey(2), 0.01,
                         save_every=4000)  # fmt: skip
    spread_wrong = float(np.std(wrong.x[:, -1]))
    spread_right = float(np.std(right.x[:, -1]))
    print(f"Langevin with ∇log p: std of samples {spread_right:.2f} (Boltzmann law: "
          f"{boltzmann_std:.2f}); with ∇p: {spread_wrong:.2f} (nearly flat: it diffuses "
          "away)")  # fmt: skip
    return {"score_matching": a, "langevin": energy_model.formula, "T": energy_model.temperature,
            "std_grad_log_p": spread_right, "std_grad_p": spread_wrong,
            "std_boltzmann": boltzmann_std, "end_state_minima": minima,
            "end_state_true_shares": [float(np.mean(ends.x < 0)),
                                      float(np.mean(ends.x > 0))]}  # fmt: skip


if __name__ == "__main__":
    main()
