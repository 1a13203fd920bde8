"""An agent walking to a goal: its energy is the squared distance.

**Question** (research note, "Setting"): given many observations, can we *explain* them by a
simple energy? An agent heads for a goal `g` it never tells us: each step it moves a fraction
η of the way, `x_{t+1} = x_t − η(x_t − g) + σξ_t`. What does it minimise?

**Answer**: `x_t − η(x_t − g)` is one gradient step on `E(x) = ½‖x − g‖²`, since `∇E = x − g`,
so the agent is Langevin (Euler–Maruyama) on that energy with time step η and temperature
`T = σ²/(2η)`. `iel.fit(trajectories, "quadratic")` fits `E(x) = ½(x − c)ᵀA(x − c)` in closed
form and returns the goal as the centre `c` and `A ≈ I`.

Scale convention (what the report states): the fit returns the energy *in the time units of
the data*. With the step's duration given as η (`Trajectories(x, dt=η)`) the energy is
`½‖x − g‖²` and `T = σ²/(2η)`; with one step = one time unit (`dt = 1`) the same data give
`η·E = (η/2)‖x − g‖²` and `T = σ²/2`. Only `η·E` and the additive constant are fixed by the
data (`model.identifiability`); the goal, the minimum, is fixed either way.
"""

from __future__ import annotations

import numpy as np
from _gallery import Page, plt

import iel

GOAL = np.array([2.0, -1.0])
ETA, SIGMA = 0.1, 0.05


def main(argv=None):
    page = Page("agent_to_goal", __doc__, argv)
    rng = np.random.default_rng(0)
    n, steps = page.pick((40, 60), (200, 100))
    x = np.empty((n, steps + 1, 2))
    x[:, 0] = rng.uniform(-4, 4, (n, 2))
    for t in range(steps):  # the agent: not an iel dynamics, just its policy
        x[:, t + 1] = x[:, t] - ETA * (x[:, t] - GOAL) + SIGMA * rng.standard_normal((n, 2))

    model = iel.fit(iel.Trajectories(x, dt=ETA), "quadratic", method="onestep")
    quadratic = model.energy_module
    centre, matrix = np.asarray(quadratic.centre), np.asarray(quadratic.matrix)
    page.number("fitted (dt = η)", model.formula)
    page.number(
        "recovered goal c", f"({centre[0]:.4f}, {centre[1]:.4f}); true ({GOAL[0]}, {GOAL[1]})"
    )
    page.number("|c − g|", float(np.linalg.norm(centre - GOAL)))
    page.number("largest |A − I|", float(np.max(np.abs(matrix - np.eye(2)))))
    page.number("temperature (true σ²/2η = 0.0125)", model.temperature)
    unit = iel.fit(iel.Trajectories(x, dt=1.0), "quadratic", method="onestep")
    unit_matrix = np.asarray(unit.energy_module.matrix)
    page.number(
        "same data with dt = 1: A (≈ η·I)",
        "; ".join(", ".join(f"{v:.4f}" for v in row) for row in unit_matrix),
    )
    page.number("same data with dt = 1: temperature (true σ²/2 = 0.00125)", unit.temperature)
    page.number("what the data determine", model.identifiability["energy"])

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.8))
    axis = np.linspace(-4.5, 4.5, 91)
    grid = np.stack(np.meshgrid(axis, axis), -1)
    ax[0].contour(axis, axis, np.asarray(model.energy(grid)), 15, colors="0.7", linewidths=0.6)
    for path in x[:15]:
        ax[0].plot(*path.T, "-", lw=0.8)
    ax[0].plot(*GOAL, "k*", ms=14, label="true goal g")
    ax[0].plot(*centre, "r+", ms=14, mew=2, label="minimum of the fitted E")
    ax[0].set_aspect("equal")
    ax[0].legend(fontsize=7, loc="upper left")
    ax[0].set_title("agents and the contours of the fitted E", fontsize=9)
    states = x.reshape(-1, 2)
    ax[1].plot(0.5 * np.sum((states - GOAL) ** 2, 1), model.energy(states), ".", ms=2)
    ax[1].plot([0, 30], [0, 30], "k-", lw=0.8)
    ax[1].set_xlabel("½‖x − g‖²")
    ax[1].set_ylabel("fitted E(x)")
    page.figure(fig)
    page.write()

    assert np.linalg.norm(centre - GOAL) < 0.02, "the goal is the fitted minimum"
    assert np.max(np.abs(matrix - np.eye(2))) < 0.05, "E = ½‖x − g‖²"
    assert np.max(np.abs(unit_matrix - ETA * np.eye(2))) < 0.005, "dt = 1: η·E"
    assert abs(model.temperature - SIGMA**2 / (2 * ETA)) < 0.1 * SIGMA**2 / (2 * ETA)
    return page


if __name__ == "__main__":
    main()
