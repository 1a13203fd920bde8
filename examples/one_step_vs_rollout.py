"""One step versus the rollout: the note's BUG.

**Question** (research note, "Gradients"): the note differentiates one step of gradient descent,
`∂f_θ/∂θ = −η ∂²E_θ/∂x∂θ`, and marks it **BUG**: θ is used again at every inner step, so
"something like BPTT" is needed. Is the one-step gradient right for one step, and what goes
wrong beyond?

**Answer** (THEORY §3). For one step it is exact: with observations one step apart, the
teacher-forced loss `Σₖ ‖xₖ₊₁ − xₖ + η∇E_θ(xₖ)‖²` is least squares in θ (for `E = θᵀφ`), and
its minimiser is the truth to round-off. Over K steps `x_K = Φ_θ^K(z)` and the chain rule
sums over every step (the adjoint / BPTT recursion):
`dx_K/dθ = Σ_{k<K} J_{K−1}⋯J_{k+1} B_k`, `J = I − η∇²E`, `B = −η ∂_θ∇E`. On `E = ½θx²`,
`dx_K/dθ = −Kηz(1 − ηθ)^{K−1}`: the note's last-step term is short by exactly the factor K
(right panel, autodiff through the rollout).

The same error in fitting: when observations are `g` steps apart, the one-step (Euler)
likelihood treats the gap as one step, `x_{k+g} ≈ x_k − gη∇E(x_k)`, and its coefficients are
biased — more so the longer the gap. `iel.fit(..., method="rollout")` rolls `g` substeps through
each gap and differentiates through them (BPTT by autodiff), which removes the bias (left
panel). Data: gradient descent on the double well `E = −2x² + x⁴` (η = 0.01), fitted in
`poly:4`; the error is the RMS over the four coefficients.
"""

from __future__ import annotations

import jax
import numpy as np
from _gallery import Page, plt

import iel

TRUTH = {"x0": 0.0, "x0^2": -2.0, "x0^3": 0.0, "x0^4": 1.0}
ETA = 0.01


def coefficient_error(model) -> float:
    terms = dict(model.energy_module.terms())
    return float(np.sqrt(np.mean([(terms.get(k, 0.0) - v) ** 2 for k, v in TRUTH.items()])))


def states(theta, z, steps: int):
    """`x_1 … x_K` of gradient descent on `E = ½θx²`; reverse-mode autodiff of this is BPTT."""

    def step(x, _):
        x = x - ETA * theta * x
        return x, x

    return jax.lax.scan(step, z, None, length=steps)[1]


def main(argv=None):
    page = Page("one_step_vs_rollout", __doc__, argv)
    energy = iel.get_system("double_well").energy
    starts = np.random.default_rng(0).uniform(-2, 2, (page.pick(30, 100), 1))
    walk = iel.simulate(energy, iel.GradientDescent(), starts, 240, jax.random.PRNGKey(0), ETA)
    gaps = page.pick((1, 8), (1, 3, 10, 30))
    one_step, rollout = [], [np.nan]
    for gap in gaps:
        data = iel.Trajectories(walk.x[:, ::gap], dt=ETA * gap)
        one_step.append(coefficient_error(iel.fit(data, "poly:4", method="onestep")))
        page.number(f"gap {gap} step(s): one-step coefficient error", one_step[-1])
        if gap == 1:  # one step apart the one-step fit is exact: nothing to roll out
            continue
        model = iel.fit(data, "poly:4", method="rollout", substeps=gap, horizon=4, steps=40,
                        optimiser="lbfgs")  # fmt: skip
        rollout.append(coefficient_error(model))
        page.number(f"gap {gap} step(s): rollout coefficient error", rollout[-1])
        page.number(f"gap {gap} step(s): rollout formula", model.formula)

    # the note's formula against autodiff through K steps, on E = ½θx² (θ = 1, z = 1)
    theta, z = 1.0, 1.0
    ks = np.arange(1, 31)
    bptt = np.asarray(jax.jacrev(states)(theta, z, len(ks)))  # dx_K/dθ for K = 1 … 30
    note = -ETA * z * (1 - ETA * theta) ** (ks - 1)  # only the last step's ∂f/∂θ
    analytic = -ks * ETA * z * (1 - ETA * theta) ** (ks - 1)
    ratio = bptt / note
    page.number(
        "BPTT / note's formula at K = 1, 10, 30", ", ".join(f"{r:.6f}" for r in ratio[[0, 9, 29]])
    )
    page.number(
        "largest |BPTT − analytic −Kηz(1−ηθ)^{K−1}|", float(np.max(np.abs(bptt - analytic)))
    )

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    floor = 1e-16
    ax[0].semilogy(gaps, np.maximum(one_step, floor), "o-", label="one-step (Euler) likelihood")
    ax[0].semilogy(
        gaps[1:], np.maximum(rollout[1:], floor), "s-", label="rollout (BPTT through the gap)"
    )
    ax[0].set_xlabel("steps between observations")
    ax[0].set_ylabel("RMS coefficient error")
    ax[0].legend(fontsize=8)
    ax[1].plot(ks, ratio, "o", ms=3, label="autodiff through K steps ÷ note's formula")
    ax[1].plot(ks, ks, "k-", lw=0.8, label="K")
    ax[1].set_xlabel("K (inner gradient steps)")
    ax[1].legend(fontsize=8)
    page.figure(fig)
    page.write()

    assert one_step[0] < 1e-8, "one step apart, the one-step fit is exact"
    assert all(e > 0.1 for e in one_step[1:]), "gaps of several steps bias the one-step fit"
    assert all(e < 1e-4 for e in rollout[1:]), "the rollout removes the bias"
    assert np.allclose(ratio, ks, rtol=1e-9) and np.allclose(bptt, analytic, atol=1e-12)
    return page


if __name__ == "__main__":
    main()
