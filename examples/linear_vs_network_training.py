"""Training an energy linear in its parameters versus a network.

**Question** (research note, "Gradients"): "How are the dynamics of training with this update
different from GD? Linear layers behave differently?"

**Answer** (THEORY §4). For an energy linear in its parameters, `E_θ(x) = θᵀφ(x)`, the drift is
`−∇E_θ(x) = −G(x)θ` with `G = [∇φ₁ … ∇φ_p]`, and the one-step loss
`L(θ) = Σₖ ‖Δxₖ + hGₖθ‖² / h` is a quadratic in θ with Hessian `2h ΣₖGₖᵀGₖ ⪰ 0`: **convex**,
with one minimiser `θ̂ = −(ΣGₖᵀGₖ)⁻¹ ΣGₖᵀvₖ` (`vₖ = Δxₖ/h`) found by one linear solve —
`iel.fit(data, "poly:4")` does exactly that. Training θ by gradient steps instead is a linear
ODE `θ̇ = −A(θ − θ̂)`: every start converges to the same θ̂, the error decaying as
`Σᵢ e^{−λᵢt}` over the eigenvalues of A (the slow directions are the ill-conditioned feature
combinations), down to round-off. A network energy `E_w(x) = MLP_w(x)` enters the drift
nonlinearly: the loss is non-convex in w, training shows plateaus and sudden drops, and where it
ends depends on the initialisation — two seeds give two different energies, each with a loss
above the linear family's round-off floor.

Data: noise-free gradient descent on the double well `E = (x² − 1)²` (100 starts, η = 0.01).
Left: the held-out one-step loss while training (`model.history`), Adam for both families
(`iel.estimators.OneStepLikelihood`; peak learning rate 0.5 for the linear family, 0.01 for the
network), the linear one from a random θ. Right: the
energies (constants removed; the data cover −2 … 2).
"""

from __future__ import annotations

import numpy as np
from _gallery import Page, plt

import iel
from iel.estimators import OneStepLikelihood

TERMS = ("x0", "x0^2", "x0^3", "x0^4")


def centred(model, grid):
    e = np.array(model.energy(grid))
    return e - e.mean()


def main(argv=None):
    page = Page("linear_vs_network_training", __doc__, argv)
    system = iel.get_system("double_well")
    data = iel.systems.simulate_system("double_well", n=100, steps=100, dt=0.01, seed=0)
    grid = np.linspace(-1.6, 1.6, 101)[:, None]
    true = np.array(system.energy.energy(grid))
    true -= true.mean()
    rms = {}

    closed = iel.fit(data, "poly:4", method="onestep")  # one linear solve
    rms["closed form"] = float(np.sqrt(np.mean((centred(closed, grid) - true) ** 2)))
    page.number("closed form: formula", closed.formula)
    page.number("closed form: fit time (s, one solve incl. compile)", round(closed.fit_seconds, 2))
    page.number("closed form: RMS energy error", rms["closed form"])

    steps = page.pick(400, 3000)
    settings = dict(steps=steps, batch_size=512, patience=steps)  # no early stop: whole curves
    theta0 = np.random.default_rng(1).normal(size=4)
    runs = {}
    energy = iel.FeatureEnergy(iel.Monomials(1, 4), theta=theta0)
    runs["linear, random θ₀"] = (
        OneStepLikelihood(energy, learning_rate=0.5, **settings).fit(data).model_
    )
    for seed in (0, 1):
        network = OneStepLikelihood("mlp:32x32", seed=seed, learning_rate=1e-2, **settings)
        runs[f"MLP 32×32, seed {seed}"] = network.fit(data).model_
    for label, model in runs.items():
        rms[label] = float(np.sqrt(np.mean((centred(model, grid) - true) ** 2)))
        page.number(f"{label}: final held-out loss", model.history["heldout_loss"][-1])
        page.number(f"{label}: RMS energy error", rms[label])
    linear = [closed, runs["linear, random θ₀"]]
    thetas = [np.array([dict(m.energy_module.terms()).get(k, 0.0) for k in TERMS]) for m in linear]
    spread_linear = float(np.max(np.abs(thetas[0] - thetas[1])))
    mlp = [m for k, m in runs.items() if k.startswith("MLP")]
    spread_mlp = float(np.sqrt(np.mean((centred(mlp[0], grid) - centred(mlp[1], grid)) ** 2)))
    page.number("linear: largest |θ(Adam from random θ₀) − θ(one solve)|", spread_linear)
    page.number("MLP: RMS difference of E between the two seeds", spread_mlp)

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    for (label, model), style in zip(runs.items(), ("C0-", "C1-", "C1--")):
        h = model.history
        ax[0].semilogy(h["step"], h["heldout_loss"], style, label=label)
    ax[0].set_xlabel("Adam step")
    ax[0].set_ylabel("held-out one-step loss")
    ax[0].legend(fontsize=7)
    ax[1].plot(grid[:, 0], true, "k-", lw=2, label="true (x² − 1)²")
    ax[1].plot(grid[:, 0], centred(closed, grid), "C0:", lw=2, label="closed form (one solve)")
    for label, model in runs.items():
        if label.startswith("MLP"):
            ax[1].plot(grid[:, 0], centred(model, grid), "C1-" if "0" in label[-1] else "C1--",
                       label=label)  # fmt: skip
    ax[1].set_xlabel("x")
    ax[1].legend(fontsize=7)
    page.figure(fig)
    page.write()

    assert rms["closed form"] < 1e-8, "noise-free data in the true family: exact"
    assert rms["linear, random θ₀"] < 1e-4, "convex: Adam from anywhere reaches the minimiser"
    assert spread_linear < 1e-4, "one minimiser: every start ends at the same θ"
    losses = {k: m.history["heldout_loss"][-1] for k, m in runs.items()}
    assert max(losses[k] for k in losses if k.startswith("MLP")) > 100 * max(
        losses[k] for k in losses if k.startswith("linear")
    ), "the network stays far above the linear family's floor"
    return page


if __name__ == "__main__":
    main()
