"""Snapshots of interacting particles: a one-body energy ``V`` and a pair energy ``W``.

The particles of each snapshot are one system with energy
``Σ_i V(x_i) + 1/(2n) Σ_{i≠j} W(x_i − x_j)``, so a paired step reads

    Δx_i / h = −∇V(x_i) − (1/n) Σ_{j≠i} ∇W_e(x_i − x_j),    W_e(r) = ½(W(r) + W(−r)),

linear in the coefficients of linear ``V`` and ``W`` (least squares on the paired steps of
:class:`.snapshots.SnapshotOneStep`), Adam for a network ``W``.  Only the even part of ``W``
acts on the particles, and the mean field of a polynomial ``W`` over one population is a
polynomial in ``x``: ``V`` and ``W`` are told apart only by how the population changes between
snapshots (:data:`INTERACTION_CHOICE_NOTE`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ...data.populations import Snapshots
from ...data.trajectories import Trajectories
from ...energies.features import (
    EvenMonomials,
    FeatureEnergy,
)
from ...energies.particles import ParticleEnergy
from ...energies.spec import parse_energy_spec
from ...linear.least_squares import column_scaled_lstsq
from ...mdl.codes import (
    Stats,
    default_epsilon,
    two_part_linear,
)
from ...model import FittedModel
from ...training import (
    adam_step,
    run_training,
    warmup_cosine_adam,
)
from ..base import fitted_model
from ..trajectories.closed_form import OneStepClosedForm


def fit_interaction(data: Snapshots, pairs: Trajectories, energy: str, interaction: int | str,
                    seed: int) -> FittedModel:  # fmt: skip
    """``Δx_i/h = −∇V(x_i) − (1/n) Σ_{j≠i} ∇W_e(x_i − x_j)``, ``W_e(r) = ½(W(r) + W(−r))``.

    Linear ``V`` and ``W`` (``interaction`` a degree or a linear spec): least squares.
    A network ``W`` (``"mlp:16"``): Adam on the same squared residual, ``V`` starting from
    the closed form without interaction (see :func:`fit_network_interaction`)."""

    spec = "poly:4" if energy == "auto" else energy
    family = parse_energy_spec(spec, data.dim)
    if not family.is_linear:
        raise ValueError("interaction fits need a linear one-body family")
    states = data.observed_states()
    one_body = family.library.adapt(states, seed=seed)
    if isinstance(interaction, int):
        pair, pair_spec = (
            EvenMonomials(data.dim, interaction),
            (f"even poly:{interaction}"),
        )
    else:
        pair_family = parse_energy_spec(interaction, data.dim)
        pair_spec = pair_family.spec
        if not pair_family.is_linear:
            return fit_network_interaction(data, pairs, one_body, pair_family, spec,
                                           seed)  # fmt: skip
        diffs = pair_differences(data.populations())
        pair = pair_family.library.adapt(diffs, seed=seed)
    x0, dx, h = pairs.increments()
    blocks = [
        _interaction_design(one_body, pair, jnp.asarray(population))
        for population in data.populations()[:-1]
    ]
    design = np.concatenate(blocks)  # (K, d, p + q)
    rows = (np.sqrt(h)[:, None, None] * design).reshape(-1, design.shape[-1])
    target = (dx / np.sqrt(h)[:, None]).reshape(-1)
    p = one_body.n_features
    parts = _interaction_parts(energy == "auto", p, rows.shape[1])
    codes = _part_codes(rows, target, parts, default_epsilon(pairs), float(np.mean(h)))
    chosen = min(codes, key=lambda name: codes[name][0]) if len(codes) > 1 else "V + W"
    coef = codes[chosen][1]
    energy = ParticleEnergy(
        FeatureEnergy(one_body, coef[:p]) if chosen != "W" else None,
        FeatureEnergy(pair, coef[p:]) if chosen != "V" else None,
    )
    resid = target - rows @ coef
    temperature = float(resid @ resid / (2 * max(len(target) - len(parts[chosen]), 1)))
    described = {"V + W": f"{spec} + interaction {pair_spec}", "W": f"interaction {pair_spec}",
                 "V": f"{spec} (no interaction)"}[chosen]  # fmt: skip
    model = _interaction_model(data, energy, temperature, described,
                               "onestep-closed-form with pair interaction", len(x0),
                               "closed form: least squares")  # fmt: skip
    if len(codes) > 1:
        model = model.with_diagnostics(
            interaction_codes_bits={k: round(v[0], 1) for k, v in codes.items()}
        ).with_notes(INTERACTION_CHOICE_NOTE.format(chosen=chosen))
    return model


INTERACTION_CHOICE_NOTE = (
    "interaction with energy='auto': the shortest description among V + W, W alone and V "
    "alone was kept ({chosen}). The mean field of a polynomial W over one population is a "
    "polynomial in x, so V and W are told apart only by how the population changes between "
    "snapshots; fitting both when the data do not separate them gives large cancelling "
    "coefficients that fail on any other population. Name the one-body family (energy='poly:4') "
    "to fit V + W regardless"
)


def _interaction_parts(choose: bool, p: int, columns: int) -> dict[str, np.ndarray]:
    """The design's columns of each candidate: ``V`` the first ``p``, ``W`` the rest."""
    both = {"V + W": np.arange(columns)}
    if not choose:
        return both
    return {**both, "W": np.arange(p, columns), "V": np.arange(p)}


def _part_codes(rows, target, parts, epsilon, h_mean) -> dict[str, tuple[float, np.ndarray]]:
    """``{name: (bits, coefficients)}``: each candidate's least-squares fit on its columns and
    its two-part code (:func:`iel.selection.codes.two_part_linear`).  Columns that are zero on
    the data (odd monomials of W, whose even part vanishes) are neither fitted nor coded."""

    live = np.flatnonzero(np.any(rows != 0, axis=0))
    stats = Stats(rows.T @ rows, rows.T @ target, float(target @ target), float(len(target)),
                  0.0)  # fmt: skip
    out = {}
    for name, columns in parts.items():
        support = np.intersect1d(columns, live)
        coef = np.zeros(rows.shape[1])
        coef[support] = column_scaled_lstsq(rows[:, support], target, rcond=1e-12)
        code = two_part_linear(stats, support, coef[support], n_library=0, epsilon=epsilon,
                               h_mean=h_mean)  # fmt: skip
        out[name] = (code.total, coef)
    return out


def pair_differences(populations: list[np.ndarray], limit: int = 20000) -> np.ndarray:
    """Differences ``x_i − x_j`` within each population (a sample of about ``limit``, ``i ≠ j``):
    where a pair energy is evaluated — to place its features on, or to plot it."""
    rng = np.random.default_rng(0)
    out = []
    for population in populations:
        i, j = rng.integers(0, len(population), (2, limit // len(populations) + 1))
        keep = i != j
        out.append(population[i[keep]] - population[j[keep]])
    return np.concatenate(out)


def _interaction_model(
    data, energy, temperature, spec, method, n, stop, history=None
) -> FittedModel:
    return fitted_model(
        data,
        energy,
        temperature=temperature,
        energy_spec=spec,
        method=method,
        diagnostics={"n_transitions": int(n), "notes": []},
        identifiability={
            "energy": "V and the even part of W up to additive constants; a quadratic W is "
            "confounded with a quadratic V when the population mean barely moves",
            "constant": "not fixed for particle energies",
        },
        stop_reason=stop,
        history=history or {},
    )


def fit_network_interaction(data, pairs, one_body, pair_family, spec, seed, steps=400,
                            learning_rate=2e-2) -> FittedModel:  # fmt: skip
    """Adam on ``Σ_i h‖Δx_i/h + ∇V(x_i) + (1/n)Σ_j ∇W_e(x_i − x_j)‖²`` over all snapshot pairs,
    one snapshot pair per step, the best parameters on the full loss kept."""

    linear = OneStepClosedForm(one_body).fit(pairs).energy_
    pair = pair_family.build(jax.random.PRNGKey(seed), pair_differences(data.populations()))
    params, static = eqx.partition((linear, pair), eqx.is_inexact_array)
    x0, dx, h = pairs.increments()
    sizes = [len(p) for p in data.populations()[:-1]]
    bounds = np.cumsum([0, *sizes])
    chunks = [tuple(jnp.asarray(a[bounds[k]:bounds[k + 1]]) for a in (x0, dx, h))
              for k in range(len(sizes))]  # fmt: skip

    def loss(params, x, dx, h):
        v, w = eqx.combine(params, static)
        even = jax.vmap(jax.vmap(lambda r: 0.5 * (w.gradient_single(r) - w.gradient_single(-r))))
        force = -jax.vmap(v.gradient_single)(x) - jnp.mean(even(x[:, None] - x[None]), axis=1)
        return jnp.mean(jnp.sum((dx / h[:, None] - force) ** 2, axis=1) * h)

    optimiser = warmup_cosine_adam(learning_rate, steps)
    step = adam_step(optimiser, loss)
    evaluate = jax.jit(loss)
    rng = np.random.default_rng(seed)
    result = run_training(
        params, optimiser.init(params), step, lambda: chunks[rng.integers(len(chunks))],
        lambda p, _: float(np.mean([evaluate(p, *c) for c in chunks])),
        steps=steps, patience=20, score_name="full", rng=rng,
    )  # fmt: skip
    v, w = eqx.combine(result.params, static)
    n_rows = len(x0) * data.dim
    temperature = result.best_score * len(x0) / (2 * n_rows)
    return _interaction_model(
        data, ParticleEnergy(v, w), float(temperature),
        f"{spec} + interaction {pair_family.spec}", "onestep-adam with network pair interaction",
        len(x0), result.stop_reason, result.history,
    )  # fmt: skip


@eqx.filter_jit
def _design_rows(one_body, pair, population):
    n = population.shape[0]
    g_one = jax.vmap(one_body.jacobian)(population)  # (n, p, d)
    diffs = population[:, None, :] - population[None, :, :]  # (n, n, d)
    # the even part's Jacobian ½(J(r) − J(−r)): zero at r = 0, so the i = j terms drop out
    g_pair = jax.vmap(jax.vmap(lambda r: 0.5 * (pair.jacobian(r) - pair.jacobian(-r))))(diffs)
    g_pair = jnp.sum(g_pair, axis=1) / n  # (n, q, d)
    return -jnp.concatenate([jnp.swapaxes(g_one, 1, 2), jnp.swapaxes(g_pair, 1, 2)], axis=2)


def _interaction_design(one_body, pair, population) -> np.ndarray:
    return np.asarray(_design_rows(one_body, pair, population))
