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

import math
import time

import jax.numpy as jnp
import numpy as np

from ...data.populations import (
    Samples,
    Snapshots,
)
from ...energies.base import compiled_vmap
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


SUBSAMPLES = 5  # disjoint subsamples of every snapshot whose fits give T's standard error
IDENTIFIED_Z = 3.0  # T counts as identified when T̂ is at least this many standard errors


def _jko_coefficients(data: Snapshots, library, density: str, coupling: str, seed: int):
    """``(coef, a, b, how)``: the least-squares ``(θ, T)`` of the trapezoid JKO condition, its
    rows ``a`` and targets ``b``, and how the pairs were made.  The Jacobian program is the
    cached :func:`~iel.energies.base.compiled_vmap`, so the subsample refits reuse it."""

    def jacobian(x):
        return compiled_vmap(library.jacobian, x)

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
    return column_scaled_lstsq(a, b), a, b, how


def temperature_stderr(data: Snapshots, library, density: str, coupling: str, seed: int,
                       parts: int = SUBSAMPLES) -> tuple[float, list[float]]:  # fmt: skip
    """Standard error of ``T̂`` from ``parts`` disjoint random subsamples of every snapshot,
    each fitted on its own: ``std(T_g)/√parts`` (with the subsample estimates).

    The least-squares formula ``σ/‖s⊥‖`` misses most of the error: the score column is itself
    estimated (score matching on each snapshot), and its error is not in the residual
    (measured on Ornstein–Uhlenbeck populations: it says ±0.0003 where T̂ misses 0.5 by 0.02).
    At one equilibrium the score is ``−∇V/T``, a combination of the gradient columns: what
    separates ``T`` from ``V`` is sampling noise, and the subsample estimates scatter as
    widely as ``T̂`` itself."""
    rng = np.random.default_rng(seed)
    splits = [np.array_split(rng.permutation(len(pop)), parts) for pop in data.populations()]
    estimates = []
    for g in range(parts):
        pops = [pop[split[g]] for pop, split in zip(data.populations(), splits)]
        sub = Snapshots(np.concatenate(pops), np.repeat(data.times, [len(p) for p in pops]))
        coef = _jko_coefficients(sub, library, density, coupling, seed)[0]
        estimates.append(float(coef[-1]))
    return float(np.std(estimates, ddof=1) / math.sqrt(parts)), estimates


def fit_resampled(
    data: Snapshots, energy: str = "poly:4", *, density: str | None = None,
    coupling: str = "auto", seed: int = 0,
) -> FittedModel:  # fmt: skip
    """Least squares of the trapezoid JKO condition in ``(θ, T)`` (module docstring), with the
    standard error of ``T̂`` (:func:`temperature_stderr`): when ``T̂`` is not
    :data:`IDENTIFIED_Z` standard errors above zero the data do not separate ``V`` from
    ``T`` and the report says so (``temperature_identified`` false, a note)."""
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
    coef, a, b, how = _jko_coefficients(data, library, density, coupling, seed)
    theta, temperature = coef[:-1], float(coef[-1])
    resid = b - a @ coef
    stderr, estimates = temperature_stderr(data, library, density, coupling, seed)
    identified = temperature >= IDENTIFIED_Z * stderr
    notes = []
    if not identified:
        notes.append(
            f"T is not identified by these data: T̂ = {temperature:.3g} ± {stderr:.2g} (standard "
            f"error over {SUBSAMPLES} subsamples: {', '.join(f'{t:.3g}' for t in estimates)}) — "
            "the populations do not change enough to separate the energy from the entropy "
            "term (at one equilibrium only E/T = −log ρ is determined); E and T here are one "
            "split of many"
        )
    if temperature < 0:
        notes.append(
            f"the entropy term's coefficient came out negative ({temperature:.3g}); T is set to "
            "0 — the populations may be at equilibrium, or not re-sampled (tracked particles "
            "with noise: fit without resampled=True)"
        )
        temperature = 0.0
    if identified:
        t_entry = (
            f"T from how the populations spread: T̂ = {temperature:.4g} ± {stderr:.2g} "
            f"(standard error over {SUBSAMPLES} subsamples)"
        )
        e_entry = "E up to an additive constant, where the populations go"
    else:
        t_entry = (
            f"not identified: T̂ = {temperature:.3g} ± {stderr:.2g}; the populations do not "
            "change enough (every snapshot near the same equilibrium) to separate E from T"
        )
        e_entry = "only E/T (= −log ρ up to a constant) where the populations are; E's scale is not"
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
            "temperature_stderr": stderr,
            "temperature_subsamples": estimates,
            "temperature_identified": bool(identified),
            "notes": notes,
        },
        identifiability={
            "energy": e_entry,
            "temperature": t_entry,
            "constant": "shifted so min over the data = 0",
        },
        stop_reason="closed form: least squares",
        fit_seconds=time.perf_counter() - start,
        states=states,
    )
