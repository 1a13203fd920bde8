"""Energies from population snapshots without particle identities (THEORY §5).

Consecutive snapshots are coupled by exact optimal transport (:mod:`.couplings`); each particle
and its destination make one transition, and the transitions of all snapshot pairs are fitted
by the one-step estimators used for trajectories (``energy="auto"``: description-length
selection over linear families).

Optionally (``refinements``) the snapshots are coupled again from where the fitted drift
takes each particle, ``x + hF̂(x)``, and the fit is repeated.  With noise, the one-step
residual of the pairing underestimates the temperature (transport re-pairs particles whose
noise crossed); ``T`` is calibrated by simulating that noise on the
drift-predicted positions and coupling again (:mod:`.snapshot_temperature`).  A drift the
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
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import numpy as np

from ...data.populations import Snapshots
from ...data.trajectories import Trajectories
from ...energies.features import FeatureEnergy
from ...energies.spec import parse_energy_spec
from ...mdl.codes import default_epsilon
from ...model import FittedModel, observed_dynamics
from ...transport.couplings import couple
from ...transport.registration import (
    REGISTRATION_DEGREE,
    REGISTRATION_MAX_DIMENSION,
    REGISTRATION_MAX_TARGETS,
    REGISTRATION_SOURCES,
    StepDesign,
    registration_library,
    registration_library_name,
)
from ...transport.unbalanced import Growth, GrowthCoupling, growth_summary, resolve_growth
from ..base import AbstractEstimator, with_fixed_temperature
from ..trajectories.closed_form import OneStepClosedForm
from ..trajectories.likelihood import OneStepLikelihood
from .interaction import fit_interaction
from .temperature import (
    calibrated_temperature,
    drift_predicted,
)

PAIRINGS = ("auto", "transport", "registration")
# with noise, rounds of registration in the selected family while its residual drops by 1 %
FITTED_FAMILY_ROUNDS, FITTED_FAMILY_GAIN = 3, 0.01


def paired_transitions(
    data: Snapshots, coupling: str = "auto", force=None, predicted=None,
    growth: Growth | None = None, growth_couplings: list | None = None,
) -> tuple[Trajectories, str]:  # fmt: skip
    """All consecutive snapshot pairs coupled, as two-point trajectories with their times.

    With ``force`` (a fitted drift ``F``), each particle is coupled from where the drift
    would take it, ``x + h F(x)``, so that only the noise is left for the transport to undo;
    ``predicted`` gives those positions directly (one array per snapshot but the last).
    With an active ``growth`` (:mod:`iel.transport.unbalanced`) the couplings allow for
    births and deaths, and each one is appended to ``growth_couplings`` when given.
    """
    pops = data.populations()
    if predicted is not None:
        sources = predicted
    else:
        sources = drift_predicted(data, force) if force is not None else pops[:-1]
    xs, ts, how = [], [], ""
    for k in range(len(pops) - 1):
        if growth is not None and growth.active:
            grown = growth.couple(k, sources[k], pops[k + 1])
            dest, how = grown.destinations, grown.how
            if growth_couplings is not None:
                growth_couplings.append(grown)
        else:
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

UNEQUAL_SIZES_NOTE = (
    "the snapshots hold different numbers of particles ({sizes}), so they are not all the "
    "same particles: this fit pairs them as if they were (particles lost or added aside). If "
    "each snapshot is a fresh sample (cells destroyed when measured), pairing puts the "
    "samples' differences into the displacements; fit with resampled=True (`iel fit "
    "--resampled`), which moves the population by −∇V − T∇log ρ instead"
)


def unexplained_share(model: FittedModel, pairs: Trajectories) -> float:
    """``Σ‖Δx − hF(x)‖² / Σ‖Δx‖²`` over the paired steps: the share of the paired motion the
    fitted drift ``F`` leaves as residual (0 for an exact fit on exact pairs).  Motion below
    the data precision the codes use (:func:`iel.mdl.default_epsilon`) is none: 0."""

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


@dataclass(eq=False)
class SnapshotOneStep(AbstractEstimator):
    """One-step fit of an energy to snapshots through optimal-transport couplings.

    Args:
        energy: spec or ``"auto"`` (shortest description length among the fixed families —
            exponentiated quadratics are asked for by spec; ``poly:4`` with an interaction).
        coupling: ``"auto"``, ``"exact"``, ``"sinkhorn"`` or ``"minibatch"``
            (:func:`.couplings.couple`).
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
            steps; in up to :data:`REGISTRATION_MAX_DIMENSION` coordinates; at most
            :data:`REGISTRATION_SOURCES` particles of the first snapshot, drawn at random,
            are registered onto the whole second one, the others' images counted as
            outliers).  ``"auto"``: both, in up to :data:`REGISTRATION_MAX_DIMENSION`
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
        select: what ``energy="auto"`` runs on the pairs, ``select(pairs, seed) -> model``:
            :func:`iel.selection.select_snapshot_pairs` (what :func:`iel.fit` passes) or any
            function of that form.  Selection sits above the estimators, so it is passed in.
        temperature: fix ``T`` instead of calibrating it (the calibrated value is kept in
            the diagnostics as ``estimated_temperature``).
        growth: births and deaths between snapshots (:mod:`iel.transport.unbalanced`):
            ``None`` (default) uses ``data.growth_rate`` when the snapshots carry it and
            balanced couplings otherwise; ``"none"`` balanced; ``"given"`` the snapshots'
            rates; ``"auto"`` the rates, or an unbalanced plan without them.  With growth the
            particles are paired by transport (registration matches balanced populations) and
            the report gives the assumption and the mass change per interval.
        reg_m: the unbalanced plan's marginal relaxation ``λ`` (default: the data's scale).
    """

    method = "snapshots-ot-onestep"

    energy: str = "auto"
    _: KW_ONLY
    coupling: str = "auto"
    interaction: int | str | None = None
    pairing: str = "auto"
    refinements: int = 0
    steps: int = 3000
    seed: int = 0
    select: Callable[[Trajectories, int], FittedModel] | None = None
    temperature: float | None = None
    growth: str | None = None
    reg_m: float | None = None

    def __post_init__(self):
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.pairing!r}")

    def fit(self, data: Snapshots) -> SnapshotOneStep:
        if not isinstance(data, Snapshots):
            raise TypeError(f"SnapshotOneStep fits snapshots, got {type(data).__name__}")
        start = time.perf_counter()
        growth, growth_why = resolve_growth(self.growth, data.growth_rates(), data.times,
                                            self.reg_m)  # fmt: skip
        if growth.active and (self.interaction or self.pairing == "registration"):
            raise ValueError(
                "growth between snapshots is coupled by transport, without an interaction "
                "or pairing='registration'; pass growth='none'"
            )
        self.growth_ = growth
        grown: list[GrowthCoupling] = []
        pairs, how = paired_transitions(data, self.coupling, growth=growth, growth_couplings=grown)
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
            new_pairs, how = paired_transitions(data, self.coupling, force=model.force,
                                                growth=growth)  # fmt: skip
            rounds += 1
            moved = np.max(np.abs(new_pairs.x[:, 1] - pairs.x[:, 1]))
            pairs = new_pairs
            if moved == 0.0:
                break
        self.pairs_ = pairs
        how += (f"; re-coupled {rounds} time(s) from the drift-predicted positions x + hF(x)"
                if rounds else "")  # fmt: skip
        if model.temperature > 0 and not self.interaction:
            model = _with_calibrated_temperature(model, data, self.coupling, self.seed, growth)
        if not self.interaction:
            share = unexplained_share(model, pairs)
            model = model.with_diagnostics(unexplained_motion_share=share)
            if share > UNEXPLAINED_NOTE_SHARE:
                model = model.with_notes(UNEXPLAINED_NOTE.format(share))
        sizes = [len(p) for p in data.populations()]
        model = _with_growth_report(model, data, growth, growth_why, grown)
        if len(set(sizes)) > 1 and not growth.active:
            shown = ", ".join(map(str, sizes[:6])) + (", …" if len(sizes) > 6 else "")
            model = model.with_notes(UNEQUAL_SIZES_NOTE.format(sizes=shown))
        model = _with_pairing_report(model, how, pairing)
        model = with_fixed_temperature(model, self.temperature)
        self.model_ = model.replace(
            data_kind=data.kind,
            method=f"{self.method} ({model.method})",
            fit_seconds=time.perf_counter() - start,
        )
        return self

    def _chosen_pairing(self, data: Snapshots, pairs: Trajectories,
                        how: str) -> tuple[Trajectories, str, dict]:  # fmt: skip
        """The transport ``pairs`` or the registration's (``pairing``, class docstring), the
        coupling's description, and what was compared."""
        pops = data.populations()
        if self.pairing == "transport" or self.interaction or self.growth_.active:
            why = ("asked for" if self.pairing == "transport" else "with an interaction"
                   if self.interaction else "with growth between snapshots")  # fmt: skip
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
        if self.interaction:
            return fit_interaction(data, pairs, self.energy, self.interaction, self.seed)
        if self.energy == "auto":
            if self.select is None:
                raise ValueError(
                    "energy='auto' on snapshot pairs is a selection among families: pass "
                    "select=iel.selection.select_snapshot_pairs (iel.fit does), or an energy spec"
                )
            return self.select(pairs, self.seed)
        if parse_energy_spec(self.energy, data.dim).is_linear:
            model = OneStepClosedForm(self.energy, seed=self.seed).fit(pairs).model_
        else:  # a few thousand pairs fit in one batch: networks by full-batch L-BFGS
            model = OneStepLikelihood(self.energy, seed=self.seed, steps=self.steps,
                                      optimiser="lbfgs").fit(pairs).model_  # fmt: skip
        return model


TEMPERATURE_CALIBRATION = (
    "T is the noise in the neighbour differences of the pairing residuals (which cancel a "
    "force the family misses, where it is smooth), calibrated by simulating the noise on the "
    "drift-predicted positions and coupling again: the transport undoes part of the noise (it "
    "pairs particles whose noise crossed over). residual_temperature counts the whole residual "
    "as noise; force_misfit_share is the part of it that is not"
)


def _with_calibrated_temperature(
    model: FittedModel, data: Snapshots, coupling: str, seed: int, growth: Growth | None = None
) -> FittedModel:
    """The model with ``T`` calibrated for the pairing (:mod:`.temperature`) in place of the
    pairing residual's, which transport lowers."""
    measured = model.temperature
    calibrated, whole = calibrated_temperature(data, model, coupling, seed, growth=growth)
    entries = {
        "pairing_residual_temperature": measured,
        "residual_temperature": whole,
        "force_misfit_share": max(0.0, 1.0 - calibrated / whole),
        "temperature_calibration": TEMPERATURE_CALIBRATION,
    }
    if (model.diagnostics.dynamics or "").startswith("Langevin"):
        entries["dynamics"] = (
            f"Langevin (T = {calibrated:.4g} calibrated, {measured:.4g} in the pairing "
            "residual; noise-free descent codes worse)"
        )
    return model.replace(dynamics=observed_dynamics(calibrated)).with_diagnostics(**entries)


def _with_growth_report(model: FittedModel, data: Snapshots, growth: Growth, why: str,
                        couplings: list[GrowthCoupling]) -> FittedModel:  # fmt: skip
    """The model with the growth assumption and, with growth, the relative mass change of each
    interval (the plan's mass over the source's) and the spread of descendants per particle."""
    entries: dict = {"growth": {"mode": growth.mode, "reason": why,
                                "assumption": growth.assumption}}  # fmt: skip
    if not growth.active:
        return model.with_diagnostics(**entries)
    entries["growth"]["mass_change"] = growth_summary(data.times, couplings)
    changes = ", ".join(f"{c.mass_change:.3g}" for c in couplings[:6])
    more = ", …" if len(couplings) > 6 else ""
    note = (f"growth ({growth.mode}): relative mass change per interval {changes}{more}; "
            + ("from the given rates, mean exp(g·Δt)" if growth.mode == "given" else
               "the plan's mass over the source's with every particle the same mass, so it "
               "is the ratio of snapshot sizes — a population change only where the sizes "
               "count the population; the descendants per particle (their spread in the "
               "report) tell where it grows"))  # fmt: skip
    identifiability = {**model.identifiability, "growth": growth.assumption}
    return (model.replace(identifiability=identifiability).with_diagnostics(**entries)
            .with_notes(note))  # fmt: skip


def _with_pairing_report(model: FittedModel, how: str, pairing: dict) -> FittedModel:
    """The model with how its particles were paired: the coupling, the pairing compared, why
    this estimator, and what the pairing makes identifiable."""
    registered = pairing["kept"] == "registration"
    entries = {
        "coupling": how,
        "pairing": pairing,
        "pairing_summary": pairing_summary(pairing),
        "method_reason": (
            "snapshots: one step per consecutive pair of snapshots, particles paired by "
            + ("registration of the step (coherent point drift)" if registered
               else "optimal transport")
        ),
    }  # fmt: skip
    if registered and model.diagnostics.gradient_system_note is not None:
        entries["gradient_system_note"] = (
            "not tested: registered pairs are the images of a gradient step by construction, "
            "so a non-gradient drift cannot show in them"
        )
    identifiability = {
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
    return model.replace(identifiability=identifiability).with_diagnostics(**entries)


def pairing_summary(pairing: dict) -> str:
    """The pairing in one line, e.g. ``registration (the smaller residual …): residual 5.66
    registered, 4.81e+03 by transport``."""
    line = f"{pairing['kept']} ({pairing['reason']})"
    residuals = pairing.get("residuals")
    if residuals:
        line += (f": residual {residuals['registration']:.3g} registered, "
                 f"{residuals['transport']:.3g} by transport")  # fmt: skip
    rounds = pairing.get("refined_in_fitted_family", [])
    if rounds:
        kept = sum(r["kept"] for r in rounds)
        line += f"; registered again in the fitted family {kept} time(s)"
    return line
