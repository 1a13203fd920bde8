"""Energies from population snapshots without particle identities (THEORY §5).

Consecutive snapshots are coupled by exact optimal transport (:mod:`.couplings`); each particle
and its destination make one transition, and the transitions of all snapshot pairs are fitted
by the one-step estimators used for trajectories (``energy="auto"``: description-length
selection over linear families).

Optionally (``refinements``) the snapshots are coupled again from where the fitted drift
takes each particle, ``x + hF̂(x)``, and the fit is repeated.  With noise, the one-step
residual of the pairing underestimates the temperature (transport re-pairs particles whose
noise crossed); ``T`` is calibrated by simulating that noise on the
drift-predicted positions and coupling again (:func:`_calibrated_temperature`).  A drift the
family cannot represent would count as noise in the residual: ``T`` is read from the
differences of neighbouring particles' residuals instead (:mod:`.noise_level`), which cancel
a smooth misfit.  This needs the same particles in consecutive snapshots, with noise per step
small against their spacing (the JKOnet* protocol); misfit that is not smooth on the particle
spacing (kinks, or folds of the step map that the pairing cannot follow) still inflates ``T``.

Two regimes, two estimators.  Here: the *same* particles seen at every time (colloids imaged
but not tracked; the JKOnet* protocol), where OT pairing recovers identities and the
Brownian increments stay in the displacements.  When each snapshot is a *fresh* sample
(cells destroyed when measured), the displacements carry no increments and the population
moves by ``−∇V − T∇log ρ``: :mod:`.resampled` fits that, entropy term included.  (The score
term does not belong here: pairing the same particles puts ``+2Th∇log ρ`` into the
displacement by Tweedie's formula, where the JKO step has ``−Th∇log ρ``.)  For long gaps or
strong noise, :mod:`.snapshot_rollout` pushes populations through the gap instead.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.populations import Snapshots
from ..data.trajectories import Trajectories
from ..energies.features import EvenMonomials, FeatureEnergy
from ..energies.particles import ParticleEnergy
from ..energies.spec import parse_energy_spec
from ..model import FittedModel
from .base import AbstractEstimator, column_scaled_lstsq, data_range
from .couplings import couple
from .noise_level import neighbour_difference_variance
from .registration import (
    REGISTRATION_DEGREE,
    REGISTRATION_MAX_DIMENSION,
    REGISTRATION_MAX_TARGETS,
    REGISTRATION_SOURCES,
    StepDesign,
    registration_library,
    registration_library_name,
)

PAIRINGS = ("auto", "transport", "registration")
# with noise, rounds of registration in the selected family while its residual drops by 1 %
FITTED_FAMILY_ROUNDS, FITTED_FAMILY_GAIN = 3, 0.01


def paired_transitions(
    data: Snapshots, coupling: str = "auto", force=None, predicted=None
) -> tuple[Trajectories, str]:
    """All consecutive snapshot pairs coupled, as two-point trajectories with their times.

    With ``force`` (a fitted drift ``F``), each particle is coupled from where the drift
    would take it, ``x + h F(x)``, so that only the noise is left for the transport to undo;
    ``predicted`` gives those positions directly (one array per snapshot but the last).
    """
    pops = data.populations()
    if predicted is not None:
        sources = predicted
    else:
        sources = _drift_predicted(data, force) if force is not None else pops[:-1]
    xs, ts, how = [], [], ""
    for k in range(len(pops) - 1):
        dest, how = couple(sources[k], pops[k + 1], coupling)
        xs.append(np.stack([pops[k], dest], axis=1))
        ts.append(np.broadcast_to(data.times[k : k + 2], (len(pops[k]), 2)))
    return Trajectories(np.concatenate(xs), t=np.concatenate(ts)), how


UNEXPLAINED_NOTE_SHARE = 0.05
UNEXPLAINED_NOTE = (
    "the fitted drift leaves {:.0%} of the paired displacements unexplained: noise, a force "
    "the family misses, or pairs optimal transport cannot get right — where the step map "
    "folds (τ·λmax(∇²V) ≥ 1) it is not the gradient of a convex function (Brenier) and "
    "transport pairs particles with others' images; matching whole populations "
    "(method='rollout'; `iel fit --method rollout`) does not need the pairs"
)


def unexplained_share(model: FittedModel, pairs: Trajectories) -> float:
    """``Σ‖Δx − hF(x)‖² / Σ‖Δx‖²`` over the paired steps: the share of the paired motion the
    fitted drift ``F`` leaves as residual (0 for an exact fit on exact pairs).  Motion below
    the data precision the codes use (:func:`iel.selection.select.default_epsilon`) is none: 0."""
    from ..selection.select import default_epsilon  # selection imports estimators

    x0, dx, h = pairs.increments()
    if np.sqrt(np.mean(dx**2)) <= default_epsilon(pairs):
        return 0.0
    residual = dx - h[:, None] * np.asarray(model.force(x0))
    return float(np.sum(residual**2) / float(np.sum(dx**2)))


EXACT_TRANSPORT_REASON = (
    "transport: the registration library explains its pairs exactly (a step that does not "
    "fold), so there is nothing to register"
)


def _exact_residual(pairs: Trajectories) -> float:
    """``Σ ‖r‖²/h`` of residuals at the data precision ``ε`` in every coordinate of every
    paired step: below it a fit is exact."""
    from ..selection.select import default_epsilon  # selection imports estimators

    _, dx, h = pairs.increments()
    return float(dx.shape[1] * default_epsilon(pairs) ** 2 * np.sum(1.0 / h))


def _registered_pairs(
    data: Snapshots,
    design: StepDesign,
    theta: np.ndarray,
    pairs: Trajectories,
    coupling: str,
    seed: int,
) -> tuple[Trajectories, str, dict]:
    """The step ``x ↦ x − h∇(θᵀφ)(x)`` registered onto the second snapshot from ``theta``
    (:func:`.registration.register_step`; ``pairs`` gives the first snapshot's current
    partners), and every snapshot coupled from that step's predictions."""
    pops = data.populations()
    rows = np.arange(len(pops[0]))
    if len(rows) > REGISTRATION_SOURCES:  # a random subset, the same one every round
        rows = np.sort(np.random.default_rng(seed).choice(rows, REGISTRATION_SOURCES,
                                                          replace=False))  # fmt: skip
    theta, info = design.register(rows, pops[1], theta, pairs.x[rows, 1])
    predicted = np.split(design.predicted(theta), np.cumsum([len(p) for p in pops[:-2]]))
    registered, how = paired_transitions(data, coupling, predicted=predicted)
    return registered, how, info


def _drift_predicted(data: Snapshots, force) -> list[np.ndarray]:
    """``x + hF(x)`` for every snapshot but the last, ``h`` the time to the next one."""
    pops = data.populations()
    return [pops[k] + (data.times[k + 1] - data.times[k]) * np.asarray(force(pops[k]))
            for k in range(len(pops) - 1)]  # fmt: skip


class SnapshotOneStep(AbstractEstimator):
    """One-step fit of an energy to snapshots through optimal-transport couplings.

    Args:
        energy: spec or ``"auto"`` (shortest description length among the fixed families —
            exponentiated quadratics are asked for by spec; ``poly:4`` with an interaction).
        coupling: ``"auto"``, ``"exact"`` or ``"sinkhorn"`` (:func:`.couplings.couple`).
        interaction: a pair interaction ``W``: a degree ``K`` (even monomials of ``x_i − x_j``,
            degrees 2…K) or any energy spec (``"rbf:10"``, ``"mlp:16"``): the particles of
            each snapshot are one system with energy
            ``Σ_i V(x_i) + 1/(2n) Σ_{i≠j} W(x_i − x_j)`` — closed form for linear families,
            Adam for networks.  With ``energy="auto"`` and a linear W the shortest
            description among ``V + W``, ``W`` alone and ``V`` alone (``V`` from ``poly:4``) is
            kept: one population's mean field of a polynomial W is a polynomial in ``x``, so
            V and W are separated only by how the population changes, and a fit of both
            that the data do not separate cancels itself and fails on other populations.
        pairing: how particles of consecutive snapshots are paired.  ``"transport"``: by
            optimal transport (the monotone map; exact unless the step folds).
            ``"registration"``: by the step itself, fitted in a broad library by coherent
            point drift from the transport pairs (:mod:`.registration`; follows folded
            steps; at most :data:`REGISTRATION_SOURCES` particles of the first snapshot, drawn
            at random, are registered onto the whole second one, the others' images counted
            as outliers).  ``"auto"``: both, in up to :data:`REGISTRATION_MAX_DIMENSION`
            coordinates and :data:`REGISTRATION_MAX_TARGETS` particles in the second snapshot,
            and the pairing that library explains with the smaller residual is kept (one
            permutation each, the same library: the shorter description); transport alone
            beyond those sizes and with an interaction.
        refinements: for noisy data, after the first fit couple again from the
            drift-predicted positions ``x + hF̂(x)`` and refit, up to this many times (stops
            when the pairing no longer changes).  The transport then only has the noise to
            undo.  Off by default: each round costs a full refit, and in the trials made
            for it (an Ornstein–Uhlenbeck population, the JKOnet* suite) it changed the
            pairing and the fit little.  Noise-free data are never re-coupled.
        steps: optimiser steps for network energies: full-batch L-BFGS iterations on the
            paired steps (early-stopped on held-out pairs); Adam steps for a network
            interaction.
        seed: for data-chosen centres and initialisation.
    """

    method = "snapshots-ot-onestep"

    def __init__(
        self,
        energy: str = "auto",
        *,
        coupling: str = "auto",
        interaction: int | str | None = None,
        pairing: str = "auto",
        refinements: int = 0,
        steps: int = 3000,
        seed: int = 0,
    ):
        self.energy = energy
        self.coupling = coupling
        self.interaction = interaction
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
        self.pairing = pairing
        self.refinements = refinements
        self.steps = steps
        self.seed = seed

    def fit(self, data: Snapshots) -> SnapshotOneStep:
        if not isinstance(data, Snapshots):
            raise TypeError(f"SnapshotOneStep fits snapshots, got {type(data).__name__}")
        start = time.perf_counter()
        pairs, how = paired_transitions(data, self.coupling)
        pairs, how, pairing = self._chosen_pairing(data, pairs, how)
        model = self.fit_pairs(data, pairs)
        if pairing["kept"] == "registration" and model.temperature > 0:
            pairs, how, model = self._registered_in_fitted_family(data, pairs, how, model, pairing)
        rounds = 0
        while True:
            if rounds:
                model = self.fit_pairs(data, pairs)
            if rounds == self.refinements or model.temperature == 0:
                break  # noise-free pairs need no re-coupling: the first pairing is the map's
            # couple again from where the fitted drift takes each particle
            new_pairs, how = paired_transitions(data, self.coupling, force=model.force)
            rounds += 1
            moved = np.max(np.abs(new_pairs.x[:, 1] - pairs.x[:, 1]))
            pairs = new_pairs
            if moved == 0.0:
                break
        self.pairs_ = pairs
        how += (f"; re-coupled {rounds} time(s) from the drift-predicted positions x + hF(x)"
                if rounds else "")  # fmt: skip
        if model.temperature > 0 and not self.interaction:
            measured = model.temperature
            model.temperature, whole = _calibrated_temperature(data, model, self.coupling,
                                                               self.seed)  # fmt: skip
            model.diagnostics["pairing_residual_temperature"] = measured
            model.diagnostics["residual_temperature"] = whole
            model.diagnostics["force_misfit_share"] = max(0.0, 1.0 - model.temperature / whole)
            model.diagnostics["temperature_calibration"] = (
                "T is the noise in the neighbour differences of the pairing residuals (which "
                "cancel a force the family misses, where it is smooth), calibrated by "
                "simulating the noise on the drift-predicted positions and coupling again: the "
                "transport undoes part of the noise (it pairs particles whose noise crossed "
                "over). residual_temperature counts the whole residual as noise; "
                "force_misfit_share is the part of it that is not"
            )
        if not self.interaction:
            share = unexplained_share(model, pairs)
            model.diagnostics["unexplained_motion_share"] = share
            if share > UNEXPLAINED_NOTE_SHARE:
                model.diagnostics.setdefault("notes", []).append(UNEXPLAINED_NOTE.format(share))
        model.data_kind = data.kind
        model.method = f"{self.method} ({model.method})"
        model.diagnostics["coupling"] = how
        model.diagnostics["pairing"] = pairing
        registered = pairing["kept"] == "registration"
        model.diagnostics["method_reason"] = (
            "snapshots: one step per consecutive pair of snapshots, particles paired by "
            + ("registration of the step (coherent point drift)" if registered
               else "optimal transport")
        )  # fmt: skip
        model.identifiability = {
            **model.identifiability,
            "pairing": (
                "particle identities are inferred by registering a gradient step in a broad "
                "library (coherent point drift), which follows folded steps; exact when that "
                "library holds the step map and the registration finds it"
                if registered else
                "particle identities are inferred by optimal transport; exact when the step "
                "map is the gradient of a convex function (τ∇²V ≺ I)"
            ),
        }  # fmt: skip
        model.fit_seconds = time.perf_counter() - start
        self.model_ = model
        return self

    def _chosen_pairing(self, data: Snapshots, pairs: Trajectories,
                        how: str) -> tuple[Trajectories, str, dict]:  # fmt: skip
        """The transport ``pairs`` or the registration's (``pairing``, class docstring), the
        coupling's description, and what was compared."""
        pops = data.populations()
        if self.pairing == "transport" or self.interaction:
            why = "asked for" if self.pairing == "transport" else "with an interaction"
            return pairs, how, {"kept": "transport", "reason": f"transport {why}"}
        if self.pairing == "registration" and data.dim > REGISTRATION_MAX_DIMENSION:
            raise ValueError(
                f"pairing='registration' is built for up to {REGISTRATION_MAX_DIMENSION} "
                f"coordinates (its library, poly:{REGISTRATION_DEGREE} plus Fourier modes, "
                f"grows as the degree-{REGISTRATION_DEGREE} monomials of d coordinates), got "
                f"snapshots in {data.dim}; use pairing='transport' or 'auto'"
            )
        if self.pairing == "auto" and (
            data.dim > REGISTRATION_MAX_DIMENSION or len(pops[1]) > REGISTRATION_MAX_TARGETS
        ):
            reason = (
                f"transport: registration is tried up to {REGISTRATION_MAX_DIMENSION} "
                f"coordinates and {REGISTRATION_MAX_TARGETS} particles in the second snapshot"
            )
            return pairs, how, {"kept": "transport", "reason": reason}  # fmt: skip
        if self.pairing == "auto" and not np.ptp(pops[0], axis=0).max() > 0:
            return pairs, how, {"kept": "transport", "reason": "transport: the first snapshot "
                                "sits at one point, so no library spans its range"}  # fmt: skip
        library = registration_library(pops[0])
        design = StepDesign(library, pairs)
        [(start, by_transport)] = design.fits(pairs)
        if self.pairing == "auto" and by_transport <= _exact_residual(pairs):
            return pairs, how, {"kept": "transport", "reason": EXACT_TRANSPORT_REASON}
        registered, registered_how, info = _registered_pairs(data, design, start, pairs,
                                                             self.coupling, self.seed)  # fmt: skip
        [(_, by_registration)] = design.fits(registered)
        residuals = {"transport": by_transport, "registration": by_registration}
        kept = (
            "registration"
            if self.pairing == "registration" or residuals["registration"] < residuals["transport"]
            else "transport"
        )
        summary = {
            "kept": kept,
            "reason": "asked for" if self.pairing == "registration" else
            "the smaller residual in the registration library",
            "library": registration_library_name(library),
            "residuals": residuals,
            "registration_iterations": info["iterations"],
            "registration_variance": info["variance"],
            "registered_particles": f"{info['sources']} of the first snapshot onto the "
            f"{info['targets']} of the second",
        }  # fmt: skip
        if kept == "transport":
            return pairs, how, summary
        return registered, (
            f"paired by registering the step (coherent point drift, {info['iterations']} "
            f"iterations; residual {residuals['registration']:.3g} against "
            f"{residuals['transport']:.3g} by transport), each snapshot coupled from the "
            f"registered step's predictions: {registered_how}"
        ), summary  # fmt: skip

    def _registered_in_fitted_family(self, data: Snapshots, pairs: Trajectories, how: str,
                                     model: FittedModel, pairing: dict):  # fmt: skip
        """Where the fit on the registered pairs leaves a residual (noise, or pairs still
        wrong), registration again in the family selected on them (a linear family: its few
        terms at their fitted frequencies register more surely than the broad library, and
        the pairs they give let selection fit the frequencies closer), up to
        :data:`FITTED_FAMILY_ROUNDS` times; each round's pairs are kept, and the fit
        repeated, while that family explains them with a residual smaller by
        :data:`FITTED_FAMILY_GAIN` or more, and until a fit is exact."""
        rounds = pairing.setdefault("refined_in_fitted_family", [])
        for _ in range(FITTED_FAMILY_ROUNDS):
            energy = model.energy_module
            if model.temperature == 0 or not isinstance(energy, FeatureEnergy):
                break
            design = StepDesign(energy.library, pairs)
            again, again_how, info = _registered_pairs(data, design, np.asarray(energy.theta),
                                                       pairs, self.coupling, self.seed)  # fmt: skip
            (_, before), (_, after) = design.fits(pairs, again)
            better = after < (1 - FITTED_FAMILY_GAIN) * before
            rounds.append({"residuals": {"before": before, "after": after},
                           "iterations": info["iterations"], "kept": bool(better)})  # fmt: skip
            if not better:
                break
            pairs, model = again, self.fit_pairs(data, again)
            how = (f"{how}; registered again in the fitted family ({info['iterations']} "
                   f"iterations): {again_how}")  # fmt: skip
        return pairs, how, model

    def fit_pairs(self, data: Snapshots, pairs: Trajectories) -> FittedModel:
        """The energy (``T`` from the pairs' residual) fitted to given transitions ``pairs``
        between consecutive snapshots of ``data`` — the step :meth:`fit` takes on each
        pairing.  Given the true pairing (when identities are known, as in a benchmark), it
        tells the error of the fit apart from the error of the optimal-transport pairing.
        With an interaction, ``pairs`` lists each snapshot's particles in the order ``data``
        gives them (the mean field of each source is read from its own snapshot)."""
        from .fit import fit as fit_trajectories

        if self.interaction:
            return self._fit_with_interaction(data, pairs)
        if self.energy == "auto":
            return _selected_on_pairs(pairs, self.seed)
        family = parse_energy_spec(self.energy, data.dim)
        # a few thousand pairs fit in one batch: networks by full-batch L-BFGS
        options = {} if family.is_linear else {"optimiser": "lbfgs"}
        return fit_trajectories(pairs, self.energy, method="onestep", seed=self.seed,
                                steps=self.steps, **options)  # fmt: skip

    def _fit_with_interaction(self, data: Snapshots, pairs: Trajectories) -> FittedModel:
        """``Δx_i/h = −∇V(x_i) − (1/n) Σ_{j≠i} ∇W_e(x_i − x_j)``, ``W_e(r) = ½(W(r) + W(−r))``.

        Linear ``V`` and ``W`` (``interaction`` a degree or a linear spec): least squares.
        A network ``W`` (``"mlp:16"``): Adam on the same squared residual, ``V`` starting from
        the closed form without interaction (see :func:`fit_network_interaction`)."""
        from ..selection.select import default_epsilon  # selection imports estimators

        spec = "poly:4" if self.energy == "auto" else self.energy
        family = parse_energy_spec(spec, data.dim)
        if not family.is_linear:
            raise ValueError("interaction fits need a linear one-body family")
        states = data.observed_states()
        one_body = family.library.adapt(states, seed=self.seed)
        if isinstance(self.interaction, int):
            pair, pair_spec = (
                EvenMonomials(data.dim, self.interaction),
                (f"even poly:{self.interaction}"),
            )
        else:
            pair_family = parse_energy_spec(self.interaction, data.dim)
            pair_spec = pair_family.spec
            if not pair_family.is_linear:
                return fit_network_interaction(data, pairs, one_body, pair_family, spec,
                                               self.seed)  # fmt: skip
            diffs = pair_differences(data.populations())
            pair = pair_family.library.adapt(diffs, seed=self.seed)
        x0, dx, h = pairs.increments()
        blocks = [
            _interaction_design(one_body, pair, jnp.asarray(population))
            for population in data.populations()[:-1]
        ]
        design = np.concatenate(blocks)  # (K, d, p + q)
        rows = (np.sqrt(h)[:, None, None] * design).reshape(-1, design.shape[-1])
        target = (dx / np.sqrt(h)[:, None]).reshape(-1)
        p = one_body.n_features
        parts = _interaction_parts(self.energy == "auto", p, rows.shape[1])
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
            model.diagnostics["interaction_codes_bits"] = {
                k: round(v[0], 1) for k, v in codes.items()
            }
            model.diagnostics["notes"].append(INTERACTION_CHOICE_NOTE.format(chosen=chosen))
        return model


SNAPSHOT_AUTO_NOTE = (
    "snapshot auto: exponentiated quadratics (expquad:M) are not among the candidates — on "
    "noise-free pairs their variable-projection search runs to its step limit and takes tens "
    "of seconds; ask for them with energy='expquad:6'"
)
# the network tried by snapshot auto when no formula explains the pairs, and its L-BFGS budget:
# 500 iterations below HIGH_DIMENSION (a fit of a few seconds in the plane), 1500 from there on,
# where the network reads ten or more inputs and 500 iterations leave it short (JKOnet* suite,
# d = 10, `python benchmarks/jkonet_suite.py --dim 10` at ce7b878 → e739485: double_exp
# 2.1e-3 → 1.4e-3, holder_table 3.9e-2 → 3.2e-2)
SNAPSHOT_NETWORK_STEPS, HIGH_DIMENSION_NETWORK_STEPS = 500, 1500
# below HIGH_DIMENSION the network is one hidden layer of 64 units: in the plane 257 weights, a
# fifth of the 32×32 network's, so its code is shorter and each iteration cheaper (JKOnet*
# suite, d = 2: see the README's table); from HIGH_DIMENSION on the 32×32 network is kept (the
# d = 10–50 tables were measured with it; one hidden layer was not tried there)
SNAPSHOT_NETWORK, HIGH_DIMENSION_NETWORK = "mlp:64", "mlp:32x32:radial"


def _selected_on_pairs(pairs: Trajectories, seed: int) -> FittedModel:
    """``energy="auto"`` on the paired steps: description-length selection over the fixed
    families (:func:`~iel.selection.select.auto_families` without free parameters) and,
    unless a sparse formula explains the pairs exactly (residuals at the data precision), a
    small network (:data:`SNAPSHOT_NETWORK`, full-batch L-BFGS; from ``HIGH_DIMENSION`` on
    :data:`HIGH_DIMENSION_NETWORK` with more iterations), coded by its parameter count.  The
    general-drift comparison is not made: OT pairs are gradient displacements by
    construction."""
    from ..selection.select import EXP_QUADRATIC_DIMENSION, HIGH_DIMENSION, auto_families, select

    families = auto_families(pairs.dim, free_parameters=False)
    high = pairs.dim >= HIGH_DIMENSION
    model = select(
        pairs, families, prequential=False, seed=seed, search_free=False,
        networks=(HIGH_DIMENSION_NETWORK if high else SNAPSHOT_NETWORK,),
        network_steps=HIGH_DIMENSION_NETWORK_STEPS if high else SNAPSHOT_NETWORK_STEPS,
        network_optimiser="lbfgs", gradient_test=False,
    ).model  # fmt: skip
    model.diagnostics["gradient_system_note"] = (
        "not tested: optimal-transport pairs are displaced by the gradient of a convex "
        "function (Brenier's theorem), so a non-gradient drift cannot show in them"
    )
    if pairs.dim <= EXP_QUADRATIC_DIMENSION:
        model.diagnostics.setdefault("notes", []).append(SNAPSHOT_AUTO_NOTE)
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
    from ..selection.codes import Stats, two_part_linear

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
    low, high = data_range(data.observed_states())
    return FittedModel(
        energy_module=energy,
        temperature=temperature,
        energy_spec=spec,
        method=method,
        data_kind=data.kind,
        time_convention="dx_i/dt = −∇V(x_i) − (1/n) Σ_j ∇W(x_i − x_j)",
        diagnostics={"n_transitions": int(n), "notes": []},
        identifiability={
            "energy": "V and the even part of W up to additive constants; a quadratic W is "
            "confounded with a quadratic V when the population mean barely moves",
            "constant": "not fixed for particle energies",
        },
        data_low=low,
        data_high=high,
        stop_reason=stop,
        history=history or {},
    )


def fit_network_interaction(data, pairs, one_body, pair_family, spec, seed, steps=400,
                            learning_rate=2e-2) -> FittedModel:  # fmt: skip
    """Adam on ``Σ_i h‖Δx_i/h + ∇V(x_i) + (1/n)Σ_j ∇W_e(x_i − x_j)‖²`` over all snapshot pairs,
    one snapshot pair per step, the best parameters on the full loss kept."""
    from .closed_form import OneStepClosedForm
    from .training import adam_step, run_training, warmup_cosine_adam

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
        steps=steps, patience=20, score_name="full",
    )  # fmt: skip
    v, w = eqx.combine(result.params, static)
    n_rows = len(x0) * data.dim
    temperature = result.best_score * len(x0) / (2 * n_rows)
    return _interaction_model(
        data, ParticleEnergy(v, w), float(temperature),
        f"{spec} + interaction {pair_family.spec}", "onestep-adam with network pair interaction",
        len(x0), result.stop_reason, result.history,
    )  # fmt: skip


def _calibrated_temperature(data: Snapshots, model: FittedModel, coupling: str, seed: int,
                            iterations: int = 2) -> tuple[float, float]:  # fmt: skip
    """``(T, T_residual)``: the noise temperature whose simulated pairing matches the observed
    one (indirect inference), from neighbour differences and from the whole residual.

    Each snapshot of the calibration pairs (:func:`_calibration_pairs`) is moved by the
    fitted drift, ``p = x + hF̂(x)``, and coupled to the next; ``u = (x' − p)/√(2h)`` holds
    the noise (per coordinate variance ``T``) and the force the family misses.  ``T`` comes
    from the neighbour differences of ``u``
    (:func:`.noise_level.neighbour_difference_variance`), which cancel a smooth misfit;
    ``T_residual`` from ``mean |u|²``, which counts it as noise.  Both statistics shrink under
    the pairing (transport re-pairs particles whose noise crossed) and the first under its
    trimming, so a trial ``T`` is simulated — ``p + √(2Th) ξ`` coupled back to ``p`` — and
    ``T ← T · observed / simulated`` repeated; ``T_residual`` is the last simulation's ratio
    applied to the whole residual."""
    rng = np.random.default_rng(seed + 1)
    pops = data.populations()
    predictions = _drift_predicted(data, model.force)
    gaps = np.diff(data.times)

    def statistics(pairs, destinations) -> tuple[float, float]:
        whole = differences = 0.0
        for k, dest in zip(pairs, destinations):
            u = (dest - predictions[k]) / np.sqrt(2 * gaps[k])
            whole += float(np.mean(u**2)) / len(pairs)
            differences += neighbour_difference_variance(pops[k], u) / len(pairs)
        return whole, differences

    # observed and simulated on the same pairs: the ratio compares like with like, and large
    # populations couple one pair instead of all (four fewer exact couplings of 5000 particles)
    calibration_pairs = _calibration_pairs([len(p) for p in predictions], gaps)
    observed = statistics(calibration_pairs, [
        couple(predictions[k], pops[k + 1], coupling)[0] for k in calibration_pairs
    ])  # fmt: skip
    temperature = model.temperature
    for _ in range(iterations):
        noisy = [
            predictions[k]
            + np.sqrt(2 * temperature * gaps[k]) * rng.standard_normal(predictions[k].shape)
            for k in calibration_pairs
        ]
        simulated = statistics(calibration_pairs, [
            couple(predictions[k], y, coupling)[0] for k, y in zip(calibration_pairs, noisy)
        ])  # fmt: skip
        if not min(simulated) > 0:
            return model.temperature, model.temperature
        residual_temperature = temperature * observed[0] / simulated[0]
        temperature = temperature * observed[1] / simulated[1]
    return float(temperature), float(residual_temperature)


CALIBRATION_PARTICLES = 5000  # simulated particles per calibration round, at least


def _calibration_pairs(sizes: list[int], gaps: np.ndarray) -> list[int]:
    """The snapshot pairs the noise is observed and simulated on: with equal gaps the pairing
    shrinks the noise alike on every pair, so the first pairs holding
    :data:`CALIBRATION_PARTICLES` particles give the factor (with 5000 particles per
    snapshot, one pair instead of all: large populations spend most of the calibration in
    these couplings); with unequal gaps every pair."""
    if not np.allclose(gaps, gaps[0], rtol=1e-6):
        return list(range(len(sizes)))
    chosen, total = [], 0
    for k, size in enumerate(sizes):
        chosen.append(k)
        total += size
        if total >= CALIBRATION_PARTICLES:
            break
    return chosen


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
