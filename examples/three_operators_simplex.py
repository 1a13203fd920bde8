"""Three operators on the simplex, one energy, fitted back from each.

**Question** (research note, "Alternative formalisations"): is the multiplicative update
`x ← x ⊙ e^{−η∇E(x)}/Z` equivalent to gradient descent, and how do both relate to sampling
`x ~ exp(−E/T)/Z`?  Here for proportions: three strategies of a potential game whose
potential is a quadratic `E(x) = ½(x − c)ᵀA(x − c)`, `c = (0.5, 0.3, 0.2)`, on the simplex.

**Answer**.

* *Shared fixed points.* The interior critical point of E restricted to the simplex (here `c`,
  where `P∇E = 0` with `P = I − 11ᵀ/3`) is a fixed point of projected gradient descent
  `x ← Π(x − η∇E)` and of the multiplicative update (exponentiated gradient, EG: mirror descent
  with the entropy map); the Boltzmann law concentrates there as `T → 0` (its spread shrinks as
  `√T`).
* *Different fixed points.* Every vertex is a fixed point of EG (a strategy that is absent
  stays absent: replicator dynamics) but not of projected GD, which leaves a vertex unless E
  pushes into it.
* *Different paths.* EG is a gradient flow in the Fisher–Rao metric: it moves a share `xᵢ` in
  proportion to itself, so paths from near a face crawl along it before turning to `c`; GD
  moves straight down the Euclidean gradient.
* *Fitted back.* E on the simplex is identified only up to a constant and any function constant
  there (e.g. of `Σxᵢ`), so the three fits are compared by the gauge-free coefficients of E in
  orthonormal coordinates `u` of the simplex's plane (`restricted_coefficients`): from GD paths
  (`OneStepClosedForm` in `u`), from Boltzmann samples (`ScoreMatching` in `u`, which gives
  `E/T`), from EG paths (`iel fit --dynamics exponentiated`, noise-free and with
  logistic-normal noise, which also gives `T`).  The deterministic operators give E to
  round-off; samples and noisy steps to their sampling error.

So the multiplicative update is not gradient descent (other paths, more fixed points), but it
is descent on the same E and shares its interior minimum; the data of each operator identify
the same E when the operator is the one assumed.
"""

from __future__ import annotations

import jax
import numpy as np
from _gallery import Page, plt

import iel
from iel.estimators.trajectories.mirror_descent import restricted_coefficients, simplex_basis

CENTRE = np.array([0.5, 0.3, 0.2])
MATRIX = 8.0 * np.array([[2.0, -0.5, 0.3], [-0.5, 1.5, 0.4], [0.3, 0.4, 1.0]])
ETA = 0.02
NOISE_T = 0.005
BASIS = simplex_basis(3)


def ternary(x):
    """Simplex points ``(..., 3)`` to 2-D plot coordinates."""
    x = np.asarray(x)
    return np.stack([x[..., 1] + 0.5 * x[..., 2], np.sqrt(3) / 2 * x[..., 2]], -1)


def project_simplex(y):
    """Euclidean projection of each row onto the probability simplex (sort and threshold)."""
    s = -np.sort(-y, axis=1)
    cums = np.cumsum(s, axis=1) - 1.0
    k = np.arange(1, y.shape[1] + 1)
    rho = np.sum(s - cums / k > 0, axis=1)
    theta = cums[np.arange(len(y)), rho - 1] / rho
    return np.maximum(y - theta[:, None], 0.0)


def gradient(x):
    return (x - CENTRE) @ MATRIX  # A symmetric


def projected_gd(starts, steps):
    path = [starts]
    for _ in range(steps):
        path.append(project_simplex(path[-1] - ETA * gradient(path[-1])))
    return np.stack(path, 1)


def to_u(x):
    return (np.asarray(x) - 1.0 / 3) @ BASIS


def u_coefficients(energy_of_u, n=300):
    """Coefficients of a function of ``u`` as a quadratic (u0, u1, u0², u0u1, u1²)."""
    u = to_u(np.random.default_rng(5).dirichlet(np.ones(3), n))
    design = np.stack([np.ones(n), u[:, 0], u[:, 1], u[:, 0] ** 2, u[:, 0] * u[:, 1],
                       u[:, 1] ** 2], 1)  # fmt: skip
    return np.linalg.lstsq(design, np.asarray(energy_of_u(u)), rcond=None)[0][1:]


def main(argv=None):
    page = Page("three_operators_simplex", __doc__, argv)
    energy = iel.Quadratic.from_matrix(CENTRE, MATRIX)
    _, truth = restricted_coefficients(energy, 3, 2)
    error = lambda c: float(np.max(np.abs(c - truth)) / np.max(np.abs(truth)))  # noqa: E731
    key = jax.random.PRNGKey(0)

    # fixed points: c for both; vertices for EG only
    eg_step = lambda x: np.asarray(  # noqa: E731
        iel.simulate(energy, iel.ExponentiatedGradient(), x, 1, key, ETA).x[:, -1]
    )
    vertices = np.eye(3)
    page.number("GD: |step(c) − c|", float(np.max(np.abs(projected_gd(CENTRE[None], 1)[0, 1]
                                                           - CENTRE))))  # fmt: skip
    page.number("EG: |step(c) − c|", float(np.max(np.abs(eg_step(CENTRE[None]) - CENTRE))))
    eg_moves = float(np.max(np.abs(eg_step(vertices) - vertices)))
    gd_moves = np.abs(projected_gd(vertices, 1)[:, 1] - vertices).max(1)
    page.number("EG: largest move of a vertex in one step", eg_moves)
    page.number("GD: move of each vertex in one step", ", ".join(f"{m:.3f}" for m in gd_moves))

    # paths from the same starts near the faces
    starts = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9],
                       [0.02, 0.49, 0.49], [0.49, 0.02, 0.49], [0.49, 0.49, 0.02]])  # fmt: skip
    steps = page.pick(300, 600)
    gd_paths = projected_gd(starts, steps)
    eg_paths = np.asarray(iel.simulate(energy, iel.ExponentiatedGradient(), starts, steps, key,
                                       ETA).x)  # fmt: skip
    apart = float(np.max(np.abs(gd_paths - eg_paths)))
    page.number("largest distance between the GD and EG paths from the same start", apart)
    page.number("GD end states: largest distance to c",
                float(np.max(np.abs(gd_paths[:, -1] - CENTRE))))  # fmt: skip
    page.number("EG end states: largest distance to c",
                float(np.max(np.abs(eg_paths[:, -1] - CENTRE))))  # fmt: skip

    # Boltzmann law on the simplex (Lebesgue on its plane): E is quadratic in u, so the law is
    # a Gaussian N(u_c, T (VᵀAV)⁻¹) cut to the triangle; drawn exactly by rejection
    rng = np.random.default_rng(1)
    cov = np.linalg.inv(BASIS.T @ MATRIX @ BASIS)
    samples_at = {}
    for temperature in (0.2, 0.05, 0.0125):
        u = rng.multivariate_normal(to_u(CENTRE), temperature * cov, page.pick(3000, 20000))
        x = 1.0 / 3 + u @ BASIS.T
        samples_at[temperature] = x[np.all(x > 0, axis=1)]
        spread = float(np.sqrt(np.mean(np.sum((samples_at[temperature] - CENTRE) ** 2, 1))))
        page.number(f"Boltzmann T = {temperature}: rms distance of samples to c", spread)

    # fitted back from each operator's data, compared in the gauge-free coefficients
    rows = {}
    interior = np.random.default_rng(2).dirichlet(3 * np.ones(3), page.pick(30, 100))
    gd_data = projected_gd(interior, 40)
    assert np.all(gd_data > 0), "the GD fit uses interior paths (no projection active)"
    gd_fit = iel.OneStepClosedForm("poly:2").fit(iel.Trajectories(to_u(gd_data), dt=ETA))
    rows["GD paths (one-step closed form in u)"] = u_coefficients(gd_fit.model_.energy)
    sample_t = 0.05
    sm = iel.ScoreMatching("poly:2").fit(iel.Samples(to_u(samples_at[sample_t])))
    rows[f"Boltzmann samples, T = {sample_t} (score matching: E/T, times T)"] = (
        sample_t * u_coefficients(sm.model_.energy)
    )
    eg_data = iel.simulate(energy, iel.ExponentiatedGradient(), interior, 40, key, ETA)
    eg_fit = iel.fit(eg_data, "poly:2", dynamics="exponentiated")
    rows["EG paths (--dynamics exponentiated)"] = restricted_coefficients(
        eg_fit.energy_module, 3, 2
    )[1]
    noisy = iel.simulate(energy, iel.ExponentiatedGradient(temperature=NOISE_T),
                         np.repeat(interior, page.pick(3, 10), 0), 40, key, ETA)  # fmt: skip
    noisy_fit = iel.fit(noisy, "poly:2", dynamics="exponentiated")
    rows[f"EG paths with logistic-normal noise, T = {NOISE_T}"] = restricted_coefficients(
        noisy_fit.energy_module, 3, 2
    )[1]
    errors = {label: error(coef) for label, coef in rows.items()}
    for label, value in errors.items():
        page.number(f"coefficient error of E (max |ĉ − c| / max |c|): {label}", value)
    page.number("EG with noise: fitted T", noisy_fit.temperature)
    page.number("EG with noise: reported dynamics", noisy_fit.report()["dynamics"]["type"])

    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    mesh = np.random.default_rng(3).dirichlet(np.ones(3), 4000)
    values = np.asarray(energy.energy(mesh))
    for a in ax:
        a.tricontour(*ternary(mesh).T, values, np.linspace(0, values.max(), 14) ** 1.0,
                     colors="0.8", linewidths=0.6)  # fmt: skip
        a.plot(*ternary(vertices[[0, 1, 2, 0]]).T, "k-", lw=0.8)
        a.plot(*ternary(CENTRE).T, "k*", ms=10,
               label="c: fixed point of all three" if a is ax[0] else None)  # fmt: skip
        a.set_aspect("equal")
        a.axis("off")
    ax[0].plot(*ternary(vertices).T, "o", mfc="none", mec="C1", ms=10,
               label="vertices: fixed points of EG only")  # fmt: skip
    for i in range(len(starts)):
        ax[0].plot(*ternary(gd_paths[i]).T, "C0-", lw=1.2, label="projected GD" if i == 0 else None)
        ax[0].plot(*ternary(eg_paths[i]).T, "C1--", lw=1.2, label="EG (multiplicative)" if i == 0
                   else None)  # fmt: skip
    ax[0].set_title("same E: shared interior minimum, different paths", fontsize=9, pad=14)
    for temperature, colour in zip(samples_at, ("C2", "C4", "C3")):
        pts = ternary(samples_at[temperature][:600])
        ax[1].plot(*pts.T, ".", color=colour, ms=2, label=f"Boltzmann T = {temperature}")
    ax[1].set_title("exp(−E/T) concentrates at c as T → 0", fontsize=9, pad=14)
    for a, scale in zip(ax, (0.7, 3)):
        a.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.02), frameon=False,
                 markerscale=scale)  # fmt: skip
    page.figure(fig)
    page.write()

    assert eg_moves == 0.0 and np.all(gd_moves > 1e-3), "vertices: EG fixed, GD moves"
    assert np.max(np.abs(eg_paths[:, -1] - CENTRE)) < 1e-2 and apart > 0.05
    assert errors["GD paths (one-step closed form in u)"] < 1e-8
    assert errors["EG paths (--dynamics exponentiated)"] < 1e-8
    assert max(errors.values()) < 0.15
    assert abs(noisy_fit.temperature / NOISE_T - 1) < 0.1
    return page


if __name__ == "__main__":
    main()
