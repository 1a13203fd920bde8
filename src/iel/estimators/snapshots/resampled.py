"""Energy and temperature from re-sampled populations: the JKO condition with its entropy term.

When every snapshot is a fresh sample of the population (cells are destroyed when measured),
particles of consecutive snapshots are not the same particles and their displacements carry no
Brownian increments; the population moves by the deterministic velocity field of the
Fokker–Planck equation ``∂ρ/∂t = ∇·(ρ∇V) + TΔρ``,

    ``v_t(x) = −∇V(x) − T ∇log ρ_t(x)``,

and the optimal-transport map between consecutive snapshots follows it: the JKO step's
optimality condition (THEORY §5) is ``(y − x)/h = −∇V(y) − T∇log ρ_{k+1}(y)`` for the OT pair
``x ↦ y``.  Here the velocity is averaged over both ends (the trapezoid rule, second order in
``h`` where the implicit JKO form is first order):

    ``(y − x)/h = ½[−∇V(x) − T∇log ρ_k(x)] + ½[−∇V(y) − T∇log ρ_{k+1}(y)]``.

The score ``∇log ρ_k`` of each snapshot is estimated by closed-form score matching on that
snapshot alone (:class:`~iel.estimators.equilibrium.ScoreMatching` with the density family,
``log ρ_k ≈ −U_k``).  For ``V = θᵀφ`` the condition is linear in ``(θ, T)`` and is solved by
least squares.  ``T`` is identifiable only when the populations are not all at the same
equilibrium: at equilibrium ``∇log ρ = −∇V/T`` and the velocity vanishes.  For a Gaussian
population the score is linear, so with a quadratic ``V`` the population must change its
spread (or shift its mean) between snapshots for ``V`` and ``T`` to separate.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ...data.populations import (
    Samples,
    Snapshots,
)
from ...energies.features import FeatureEnergy
from ...energies.spec import parse_energy_spec
from ...linear.least_squares import column_scaled_lstsq
from ...model import FittedModel
from ...transport.couplings import couple
from ..base import (
    fitted_model,
    shift_to_zero_min,
)
from ..samples.equilibrium import ScoreMatching


def snapshot_scores(data: Snapshots, density: str, seed: int = 0) -> list:
    """``∇log ρ_k`` of every snapshot, by closed-form score matching with ``density``."""
    scores = []
    for population in data.populations():
        model = ScoreMatching(density, seed=seed).fit(Samples(population)).model_
        scores.append(model.force)  # −∇U_k = ∇log ρ_k
    return scores


def fit_resampled(
    data: Snapshots, energy: str = "poly:4", *, density: str | None = None,
    coupling: str = "auto", seed: int = 0,
) -> FittedModel:  # fmt: skip
    """Least squares of the trapezoid JKO condition in ``(θ, T)`` (module docstring)."""
    start = time.perf_counter()
    spec = "poly:4" if energy == "auto" else energy
    family = parse_energy_spec(spec, data.dim)
    if not family.is_linear:
        raise ValueError(
            f"re-sampled populations are fitted in closed form and need a linear energy family; "
            f"{spec!r} has a network term"
        )
    density = density or spec
    states = data.observed_states()
    library = family.library.adapt(states, seed=seed)
    jacobian = jax.jit(jax.vmap(library.jacobian))
    scores = snapshot_scores(data, density, seed)
    pops = data.populations()
    rows, targets, how = [], [], ""
    for k in range(len(pops) - 1):
        h = data.times[k + 1] - data.times[k]
        y = pops[k + 1]
        # pair each particle of the later snapshot with its source (barycentric projection)
        x, how = couple(y, pops[k], coupling)
        grads = -0.5 * (np.asarray(jacobian(jnp.asarray(x))) + np.asarray(jacobian(jnp.asarray(y))))
        score = 0.5 * (np.asarray(scores[k](x)) + np.asarray(scores[k + 1](y)))  # (n, d)
        design = np.concatenate([np.swapaxes(grads, 1, 2), -score[:, :, None]], axis=2)
        rows.append(design.reshape(-1, design.shape[-1]))
        targets.append(((y - x) / h).reshape(-1))
    a, b = np.concatenate(rows), np.concatenate(targets)
    coef = column_scaled_lstsq(a, b)
    theta, temperature = coef[:-1], float(coef[-1])
    notes = []
    if temperature < 0:
        notes.append(
            f"the entropy term's coefficient came out negative ({temperature:.3g}); T is set to "
            "0 — the populations may be at equilibrium, or not re-sampled (tracked particles "
            "with noise: fit without resampled=True)"
        )
        temperature = 0.0
    resid = b - a @ coef
    return fitted_model(
        data,
        shift_to_zero_min(FeatureEnergy(library, theta), states),
        temperature=temperature,
        energy_spec=family.spec,
        method="snapshots-resampled-jko (trapezoid JKO condition with entropy term)",
        diagnostics={
            "coupling": how,
            "density_family": density,
            "n_pairs": int(len(b) // data.dim),
            "velocity_residual_rms": float(np.sqrt(np.mean(resid**2))),
            "method_reason": "re-sampled populations: the optimal-transport map follows the "
            "Fokker–Planck velocity −∇E − T∇log ρ, with ∇log ρ of each snapshot by score matching",
            "notes": notes,
        },
        identifiability={
            "energy": "E up to an additive constant, where the populations go",
            "temperature": "T from how the populations spread; not identifiable when every "
            "snapshot is at the same equilibrium",
            "constant": "shifted so min over the data = 0",
        },
        stop_reason="closed form: least squares",
        fit_seconds=time.perf_counter() - start,
        states=states,
    )
