"""Recovery of a state-dependent diffusion D(x) and of the force (issue 28), worst of seeds.

Systems (both simulated by :class:`iel.StateLangevin`, mobility form, Euler–Maruyama):

* 1-D: ``E = x⁴ − 2x²`` (kT), ``D(x) = 0.5(1 + x²)``; 300 trajectories × 400 steps, h = 0.002;
* 2-D: ``E = ½x0² + x1² + x0⁴/4``, diagonal ``D = diag(0.4(1 + x0²), 0.3 + 0.15x1 + 0.1x1²)``;
  300 × 400 steps, h = 0.002.

Fitted with ``iel.fit(data, energy="poly:4", diffusion=KIND)``.  Printed: the largest relative
error of ``D(x)`` (Frobenius) over 400 states uniform in the central 96 % box of the data, the
relative L2 error of the force ``−∇E`` over the same states, and the constant-temperature
verdict; then one temperature's data (the Langevin double well, T = 0.5) through the test.

    python benchmarks/diffusion_recovery.py [--seeds 5] [--fish]

``--fish``: the fish school (needs PyDaddy): the test's numbers, the fitted ``D(x)`` and the
mean ``|m|`` of ``exp(−E/T)`` (one temperature) and ``exp(−E)`` (with ``D(x)``) on the unit disc.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import iel
from iel.dynamics import PolynomialDiffusion, StateLangevin, simulate
from iel.energies import FeatureEnergy, Monomials


def systems():
    e1 = FeatureEnergy(Monomials(1, 4), jnp.array([0.0, -2.0, 0.0, 1.0]))
    d1 = PolynomialDiffusion("scalar", 2, [[0.5], [0.0], [0.5]], [0.0], [1.0], 1e-3)
    names = Monomials(2, 4).names()
    theta = np.zeros(len(names))
    theta[names.index("x0^2")], theta[names.index("x1^2")] = 0.5, 1.0
    theta[names.index("x0^4")] = 0.25
    e2 = FeatureEnergy(Monomials(2, 4), jnp.asarray(theta))
    c = np.zeros((6, 2))
    c[0], c[3, 0], c[2, 1], c[5, 1] = [0.4, 0.3], 0.4, 0.15, 0.1
    d2 = PolynomialDiffusion("diagonal", 2, c, [0.0, 0.0], [1.0, 1.0], 1e-3)
    return [("1-D scalar", e1, d1, "scalar", 1.0), ("2-D diagonal", e2, d2, "diagonal", 0.7)]


def errors(model, energy, diffusion, data):
    states = data.observed_states()
    low, high = np.quantile(states, [0.02, 0.98], axis=0)
    grid = np.random.default_rng(0).uniform(low, high, size=(400, states.shape[1]))
    true_d, fit_d = np.asarray(diffusion(grid)), np.asarray(model.diffusion(grid))
    d_err = np.max(
        np.linalg.norm(fit_d - true_d, axis=(1, 2)) / np.linalg.norm(true_d, axis=(1, 2))
    )
    f_true, f_fit = -np.asarray(energy.gradient(grid)), np.asarray(model.force(grid))
    return float(d_err), float(np.linalg.norm(f_fit - f_true) / np.linalg.norm(f_true))


def main(seeds: int) -> None:
    for name, energy, diffusion, kind, spread in systems():
        worst_d, worst_f, verdicts = 0.0, 0.0, []
        for seed in range(seeds):
            x0 = jnp.asarray(np.random.default_rng(seed).normal(size=(300, diffusion.dim)) * spread)
            data = simulate(energy, StateLangevin(diffusion), x0, 400, jax.random.PRNGKey(seed),
                            0.002)  # fmt: skip
            model = iel.fit(data, energy="poly:4", diffusion=kind)
            d_err, f_err = errors(model, energy, diffusion, data)
            worst_d, worst_f = max(worst_d, d_err), max(worst_f, f_err)
            verdicts.append(model.diagnostics["constant_temperature"])
        print(f"{name}: worst of {seeds} seeds: D(x) max relative error {worst_d:.3f}, force "
              f"relative L2 error {worst_f:.3f}; constant temperature: {verdicts}")  # fmt: skip
    worst_p, worst_ratio, verdicts = 1.0, 1.0, []
    for seed in range(seeds):
        data = iel.simulate_system("double_well", n=200, steps=300, dt=0.01, temperature=0.5,
                                   seed=seed)  # fmt: skip
        test = iel.fit(data, energy="poly:4").diagnostics
        verdicts.append(test["constant_temperature"])
        worst_p = min(worst_p, test["constant_temperature_test"]["p_value"])
        worst_ratio = max(worst_ratio, test["constant_temperature_test"]["noise_level_ratio_95_5"])
    print(f"one temperature (double well, T = 0.5): verdicts {verdicts}, smallest p "
          f"{worst_p:.3g}, largest 95/5 ratio {worst_ratio:.3f}")  # fmt: skip


def fish() -> None:
    data = iel.load_fish_school()
    one = iel.fit(data, energy="poly:4", method="onestep")
    print("fish, one temperature:", one.temperature, one.diagnostics["constant_temperature_test"])
    noisy = iel.fit(data, energy="poly:4", diffusion="scalar:2")
    print("fish, D(x):", noisy.diagnostics["diffusion"])
    for q in (0.1, 0.5, 0.9):
        print(
            f"  D at |m| = {q}: {float(np.asarray(noisy.diffusion(np.array([q, 0.0])))[0, 0]):.4g}"
        )
    r = np.linalg.norm(data.observed_states(), axis=1)
    g = np.linspace(-1.1, 1.1, 301)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    inside = np.linalg.norm(grid, axis=1) <= 1.0
    print(f"data mean |m|: {r.mean():.3f}")
    for name, model, t in (("exp(-E/T)", one, one.temperature), ("exp(-E), D(x)", noisy, 1.0)):
        e = np.asarray(model.energy(grid)) / t
        w = np.where(inside, np.exp(-(e - e[inside].min())), 0.0)
        print(f"{name}: mean |m| {np.sum(w * np.linalg.norm(grid, axis=1)) / w.sum():.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fish", action="store_true")
    args = parser.parse_args()
    fish() if args.fish else main(args.seeds)
