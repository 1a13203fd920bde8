"""End states and their starts: the note's Setting.

**Question** (research note, "Setting"): we observe only the states `x_i` a minimising process
settled into. Find an energy E and initial conditions `z_i` such that minimising E from `z_i`
leads to `x_i`.

**Answer** (THEORY §6). As stated the problem is degenerate: `E ≡ const, z_i = x_i` explains
anything. End states fix E only up to an increasing transform `g(E)` (same descent paths, same
end points): they determine the **minima**, and — given a prior `z ~ p₀` on where starts come
from — how much of the prior each **basin** must catch (the share of end states found there);
not barrier heights or energy values. Each start is known only up to its basin.
`iel.fit(Endpoints(x), "poly:6", prior=...)` (the latent objective) draws starts from the
prior, assigns them to the end states by optimal transport and trains E through the unrolled
descent `Φ_θ^K(z_i) ≈ x_i`; the prior rules out the flat energy (its transport loss is
`W₂²(p₀, data) > 0`).

Data: gradient descent on the three-well polynomial `x⁶/6 − 5x⁴/4 + 2x²` (wells at 0 and ±2,
basin boundaries at ±1) from starts uniform on [−2.7, 2.7]; only the end states are kept.
Reported: the minima of the learned E, the share of end states in each basin, the share of the
prior its basins catch (the fit matches the first; both scatter around the prior mass of the
true basins by the sampling error of a finite sample), and the recovered starts — checked by
descending each on the *true* energy: it should land in the minimum of its own end state.
"""

from __future__ import annotations

import jax
import numpy as np
from _gallery import Page, plt

import iel

LOW, HIGH = -2.7, 2.7


def main(argv=None):
    page = Page("end_states_and_starts", __doc__, argv)
    energy = iel.get_system("three_well").energy
    rng = np.random.default_rng(0)
    starts = rng.uniform(LOW, HIGH, (page.pick(300, 1000), 1))
    key = jax.random.PRNGKey(0)
    descent = iel.simulate(energy, iel.GradientDescent(), starts, 2000, key, 0.005, save_every=2000)
    ends = iel.Endpoints(descent.x[:, -1])
    model = iel.fit(ends, "poly:6", prior=f"uniform:{LOW}:{HIGH}", steps=page.pick(200, 1500),
                    batch=page.pick(128, 512))  # fmt: skip
    minima = sorted(model.diagnostics["minima"], key=lambda m: m["location"][0])
    page.number("learned energy (scale is a convention)", model.formula)
    # the true basins are (LOW, −1), (−1, 1), (1, HIGH): the prior mass each catches
    true_mass = np.array([-1 - LOW, 2.0, HIGH - 1]) / (HIGH - LOW)
    for m, mass in zip(minima, true_mass):
        page.number(f"minimum at {m['location'][0]:+.4f}: share of end states / prior share of "
                    "the learned basin / of the true basin",
                    f"{m['share']:.3f} / {m['prior_share']:.3f} / {mass:.3f}")  # fmt: skip
    mismatch = max(abs(m["prior_share"] - m["share"]) for m in minima)
    page.number("largest |prior share of a learned basin − share of end states in it|", mismatch)
    off_truth = max(abs(m["prior_share"] - mass) for m, mass in zip(minima, true_mass))
    page.number("largest |prior share of a learned basin − of the true basin|", off_truth)
    location_error = max(abs(m["location"][0] - t) for m, t in zip(minima, (-2, 0, 2)))
    page.number("largest error of a minimum's location", location_error)
    page.number("transport loss: fitted E / flat E ≡ const",
                f"{model.diagnostics['transport_loss']:.4g} / "
                f"{model.diagnostics['transport_loss_flat_energy']:.4g}")  # fmt: skip

    recovered = np.asarray(model.starts)
    back = iel.simulate(energy, iel.GradientDescent(), recovered, 2000, key, 0.005,
                        save_every=2000).x[:, -1]  # fmt: skip
    own_basin = float(np.mean(np.abs(back - ends.x) < 0.05))
    page.number("recovered starts that descend (true E) to their own end state", f"{own_basin:.1%}")

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.linspace(LOW, HIGH, 271)[:, None]
    true = np.asarray(energy.energy(x))
    learned = np.asarray(model.energy(x))
    ax[0].plot(x, (true - true.min()) / np.ptp(true), "k-", label="true E (rescaled)")
    ax[0].plot(x, (learned - learned.min()) / np.ptp(learned), "C3--", label="learned E (rescaled)")
    for m in minima:
        ax[0].axvline(m["location"][0], color="C3", lw=0.5)
    ax[0].set_xlabel("x")
    ax[0].legend(fontsize=7)
    ax[0].set_title("minima, not energy values", fontsize=9)
    bins = np.linspace(LOW, HIGH, 28)
    ax[1].hist(starts[:, 0], bins, alpha=0.5, label="true starts (unseen)")
    ax[1].hist(recovered[:, 0], bins, alpha=0.5, label="recovered starts")
    for b in (-1, 1):
        ax[1].axvline(b, color="k", lw=0.8)
    ax[1].set_title("starts, each known only up to its basin", fontsize=9)
    ax[1].legend(fontsize=7)
    page.figure(fig)
    page.write()

    assert len(minima) == 3 and location_error < 0.01, "the three minima"
    assert mismatch < page.pick(0.08, 0.03), "basins catch the prior as the end states say"
    sampling = 3 * np.sqrt(true_mass * (1 - true_mass) / len(starts)).max()  # 3σ of the shares
    assert off_truth < sampling + 0.02, "… which is the true basins' share up to sampling"
    assert own_basin > 0.85, "recovered starts lie in the basin of their end state"
    return page


if __name__ == "__main__":
    main()
