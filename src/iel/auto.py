"""``iel.fit``: one call from data to a fitted model, choosing the estimator for the data.

Methods for trajectories:

* ``"onestep"`` — the one-step (Euler) likelihood: closed form for families linear in their
  parameters, Optax otherwise.  Right when steps are short and observations clean.
* ``"rollout"`` — roll the dynamics through the gaps and compare with later observations.
  Right for long gaps, observation noise, hidden starts and partial observations.
* ``"auto"`` (default) — rollout when a projection or learned starts are asked for; otherwise
  fit one step first and switch to rollout when either diagnostic says Euler differences are
  unreliable:

  0. an exact one-step fit (noise-free steps, residuals at round-off) stays one-step;
  1. *observation noise*: residuals of the one-step fit are anticorrelated at lag 1
     (``ρ₁ < −0.2``; pure measurement noise gives ``−½``, Langevin noise ``0``) → rollout with
     learned starts over 10-interval segments;
  2. *dynamics between observations*: residuals are strongly correlated along trajectories
     (``ρ₁ > 0.5``: a smooth misfit, as Euler bias over long gaps gives) → rollout;
  3. *long steps*: the fitted force changes by more than 20 % (median) along one drift step
     → rollout with enough substeps that each changes it by about 5 %.

  The reason is recorded in ``model.diagnostics["method_reason"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.io import (
    Data,
    load_data,
)
from .data.populations import (
    Endpoints,
    Samples,
    Snapshots,
)
from .data.store import TrajectoryStore
from .data.trajectories import Trajectories
from .data.validation import DataError, check_simplex
from .dynamics import ExponentiatedGradient, Langevin
from .energies.spec import parse_energy_spec
from .estimators.base import with_fixed_temperature
from .estimators.bootstrap import bootstrap_uncertainty
from .estimators.endpoints.end_states import EndStates
from .estimators.samples.equilibrium import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    ScoreMatching,
)
from .estimators.snapshots.onestep import SnapshotOneStep
from .estimators.snapshots.resampled import fit_resampled
from .estimators.snapshots.rollout import SnapshotRollout
from .estimators.trajectories.closed_form import OneStepClosedForm
from .estimators.trajectories.diffusion import (
    DiffusionClosedForm,
    constant_temperature_entries,
    parse_diffusion,
)
from .estimators.trajectories.likelihood import OneStepLikelihood
from .estimators.trajectories.mirror_descent import ExponentiatedGradientClosedForm
from .estimators.trajectories.rollout import Rollout
from .estimators.trajectories.streamed import StreamedClosedForm, fit_streamed_families
from .estimators.uncertainty import lag_one_correlation, with_closed_form_uncertainty
from .model import FittedModel, software_environment
from .selection.distinct import without_copies
from .selection.end_states import (
    END_STATE_AUTO_FAMILIES,
    select_end_states,
)
from .selection.families import (
    HIGH_DIMENSION,
    auto_families,
    streamed_auto_families,
)
from .selection.snapshot_pairs import select_snapshot_pairs
from .selection.snapshot_regime import RegimeDecision, decide_regime
from .selection.trajectories import select
from .training import Checkpointer, checkpointing, fingerprint

METHODS = ("auto", "onestep", "rollout")
# the operator a fit of trajectories assumes: auto (noise-free → gd, else langevin), or forced
DYNAMICS_OPTIONS = ("auto", "gd", "langevin", "exponentiated")
EXPONENTIATED_AUTO_ENERGY = "poly:3"
SAMPLE_METHODS = ("auto", "score-matching", "contrastive-divergence")


_lag_one_correlation = lag_one_correlation  # (iel.estimators.uncertainty notes it too)


def _force_change(data: Trajectories, model: FittedModel) -> float:
    """Median relative change of the fitted force along one drift step,
    ``‖F(x + hF(x)) − F(x)‖ / ‖F(x)‖``: small when Euler steps of this size are accurate.
    (Measured along the drift, not between observations, so diffusion noise does not count.)"""
    x0, _, h = data.transitions()
    if len(x0) > 20000:
        pick = np.random.default_rng(0).choice(len(x0), 20000, replace=False)
        x0, h = x0[pick], h[pick]
    f0 = np.asarray(model.force(x0))
    f1 = np.asarray(model.force(x0 + h[:, None] * f0))
    size = np.linalg.norm(f0, axis=1)
    keep = size > 1e-3 * size.max()
    return float(np.median(np.linalg.norm(f1 - f0, axis=1)[keep] / size[keep]))


def choose_method(
    data: Trajectories, energy: str, probe: FittedModel | None = None
) -> tuple[str, str, dict]:
    """The ``auto`` rule (module docstring): ``(method, reason, rollout options)``.

    ``probe`` is a one-step fit of the data (made here with the family, or ``poly:3`` for
    network families, when not given)."""
    if probe is None:
        family = parse_energy_spec(energy, data.dim)
        probe = OneStepClosedForm(energy if family.is_linear else "poly:3").fit(data).model_
    if probe.diagnostics["noise_free"]:
        return "onestep", "the one-step fit is exact (noise-free steps, residuals at round-off)", {}
    rho = _lag_one_correlation(data, probe)
    change = _force_change(data, probe)
    substeps = int(np.clip(np.ceil(change / 0.05), 5, 200))
    if rho < -0.2:
        return (
            "rollout",
            f"one-step residuals are anticorrelated (ρ₁ = {rho:.2f}): observation noise",
            {"hidden_starts": True, "horizon": 10, "substeps": 2},
        )
    if rho > 0.5:
        return (
            "rollout",
            f"one-step residuals are correlated along trajectories (ρ₁ = {rho:.2f}): the "
            "dynamics between observations are not one Euler step",
            {"horizon": 3, "substeps": max(substeps, 10)},
        )
    if change > 0.2:
        return (
            "rollout",
            f"the force changes by {change:.0%} along one drift step: long steps",
            {"horizon": 3, "substeps": substeps},
        )
    return (
        "onestep",
        f"steps are short (force change {change:.1%} per step) and residuals uncorrelated "
        f"(ρ₁ = {rho:.2f})",
        {},
    )


def fit(
    data: Data | str | Path,
    energy: str = "auto",
    *,
    method: str = "auto",
    kind: str | None = None,
    ridge: float = 0.0,
    seed: int = 0,
    steps: int = 3000,
    temperature: float | None = None,
    projection: np.ndarray | None = None,
    hidden_starts: bool = False,
    progress=None,
    checkpoint: Checkpointer | None = None,
    bootstrap: int = 0,
    dynamics: str = "auto",
    diffusion: str = "constant",
    drift_form: str = "mobility",
    **options,
) -> FittedModel:
    """Fit an energy to ``data`` (a container or a file path) and return the model.

    Args:
        data: a data container or a file path.
        energy: an energy spec (``"poly:4"``, ``"rbf:50"``, ``"mlp:64x64"``, …) or ``"auto"``:
            the family and sparse formula with the shortest description length
            (:func:`iel.selection.select`; one-step fits only — when the auto method rule
            picks a rollout, ``poly:4`` is rolled out and the report says so).
        method: ``"auto"``, ``"onestep"`` or ``"rollout"`` (module docstring).
        kind: force the data kind when reading a file.
        ridge: ridge weight for closed-form fits.
        seed: random seed (data-chosen centres, initialisation, minibatches).
        steps: optimisation steps for iterative fits.
        temperature: fix ``T`` instead of estimating it.
        projection: ``(observed dims, state dims)`` observation matrix (implies rollout).
        hidden_starts: learn the segment starts (implies rollout).
        progress: callback ``progress(step, steps, loss)`` for iterative fits.
        checkpoint: save the iterative loops' state, or resume from such a save
            (:class:`~iel.training.Checkpointer`; a resume checks that the data and every
            setting here are the ones the checkpoint was written with).  Whatever it is,
            Ctrl-C during an iterative loop ends the fit early with the best parameters so
            far and a ``stop_reason`` starting with ``"interrupted"``.
        bootstrap: ``B > 0`` resamples (trajectories, particles or states) give percentile
            intervals in ``model.uncertainty`` (:mod:`iel.estimators.bootstrap`); closed-form
            fits of trajectories carry exact intervals without it
            (:mod:`iel.estimators.uncertainty`).
        dynamics: the operator trajectories are fitted with (:data:`DYNAMICS_OPTIONS`):
            ``"auto"`` (gradient flow for noise-free steps, Langevin else), ``"gd"`` (noise-free
            gradient descent, ``T = 0``), ``"langevin"`` or ``"exponentiated"`` (proportions
            on the simplex moved by the multiplicative update,
            :class:`~iel.estimators.trajectories.mirror_descent.ExponentiatedGradientClosedForm`).
            Recorded as ``diagnostics["dynamics_option"]``.
        diffusion: trajectories only: ``"constant"`` (one temperature, default), ``"scalar"``,
            ``"diagonal"`` or ``"full"`` (with ``":DEGREE"``, default 2: a state-dependent
            ``D(x)`` fitted with the energy, :mod:`iel.estimators.trajectories.diffusion`), or
            ``"auto"`` (scalar ``D(x)`` when the constant-temperature test rejects one
            temperature).  Every trajectory fit reports the test as
            ``diagnostics["constant_temperature"]``.
        drift_form: with ``D(x)``: ``"mobility"`` (``dx = [−D∇E + ∇·D] dt + √(2D) dW``,
            stationary law ``exp(−E)``) or ``"ito"`` (``dx = −∇E dt + √(2D) dW``).
        options: passed to the estimator (:class:`Rollout`, :class:`OneStepLikelihood`); for
            snapshots ``regime`` (``"auto"``, ``"same"`` or ``"fresh"``: same particles or fresh
            samples at each time, :mod:`iel.selection.snapshot_regime`; ``resampled=True`` is
            ``regime="fresh"``), ``coupling``, ``pairing``, ``interaction``, ``refinements``,
            ``growth`` and ``reg_m`` (births and deaths between snapshots:
            :mod:`iel.transport.unbalanced`)
            (:class:`~iel.estimators.snapshots.SnapshotOneStep`).

    Example:
        >>> model = iel.fit("walk.npz", energy="poly:4")
        >>> model.formula, model.temperature
    """
    if isinstance(data, (str, Path)):
        data = load_data(data, kind=kind)
    if diffusion != "constant" or drift_form != "mobility":
        if not isinstance(data, Trajectories):
            raise ValueError(
                f"diffusion={diffusion!r} / drift_form={drift_form!r}: a state-dependent "
                f"diffusion is fitted from trajectories, got {type(data).__name__}"
            )
        if diffusion not in ("constant", "auto"):
            parse_diffusion(diffusion)  # a clear error before any work
        options = {**options, "diffusion": diffusion, "drift_form": drift_form}
    settings = {"energy": energy, "method": method, "ridge": ridge, "seed": seed, "steps": steps,
                "temperature": temperature, "projection": projection,
                "hidden_starts": hidden_starts, "progress": progress}  # fmt: skip
    if isinstance(data, Snapshots):
        fit_kind = _fit_snapshots
    elif isinstance(data, Samples):
        fit_kind = _fit_samples
    elif isinstance(data, Endpoints):
        fit_kind = _fit_endpoints
    elif isinstance(data, Trajectories):
        fit_kind = _fit_trajectories
    elif isinstance(data, TrajectoryStore):
        if checkpoint is not None or bootstrap or diffusion != "constant":
            raise ValueError("a streamed fit is one closed-form pass of constant temperature: "
                             "checkpoints, bootstrap resamples and a diffusion D(x) need the "
                             "trajectories in memory (TrajectoryStore.subset(rows))")  # fmt: skip
        fit_kind = _fit_store
    else:
        raise TypeError(f"cannot fit data of type {type(data).__name__}")
    if dynamics not in DYNAMICS_OPTIONS:
        raise ValueError(f"dynamics must be one of {', '.join(DYNAMICS_OPTIONS)}, got {dynamics!r}")
    if dynamics != "auto" and fit_kind is not _fit_trajectories:
        raise ValueError(f"--dynamics {dynamics} applies to trajectories; these data are "
                         f"{data.kind} (their operator follows from the data kind)")  # fmt: skip
    if dynamics == "gd":
        if temperature not in (None, 0.0):
            raise ValueError(f"dynamics 'gd' is noise-free (T = 0); temperature={temperature} "
                             "contradicts it (use dynamics='langevin')")  # fmt: skip
        settings["temperature"] = 0.0
    described = {k: v for k, v in {**settings, **options}.items() if k != "progress"}
    if dynamics != "auto":
        described["dynamics"] = dynamics
    # the data's hash is read only to write or check checkpoints: not computed without them
    fit_print = fingerprint(data, described) if checkpoint is not None else None
    state_noise = diffusion != "constant" or drift_form != "mobility"
    if dynamics in ("exponentiated", "gd") and state_noise:
        raise ValueError(
            f"diffusion={diffusion!r}: a state-dependent diffusion is a Langevin model; "
            f"dynamics={dynamics!r} has no such noise (use dynamics='auto' or 'langevin')"
        )
    if dynamics == "exponentiated" and bootstrap:
        raise ValueError(
            "bootstrap intervals are not available for the multiplicative update's fit "
            "(dynamics='exponentiated'); fit without bootstrap"
        )
    with checkpointing(checkpoint, fit_print):
        if dynamics == "exponentiated":
            model = _fit_exponentiated(data, **settings, options=dict(options))
        else:
            model = fit_kind(data, **settings, options=dict(options))
    if fit_kind is _fit_trajectories:
        model = _with_dynamics_option(model, dynamics, data)
    model = _with_uncertainty(model, data, bootstrap, fit_kind, settings, options)
    # what reproduces it: the seed and the software (the report records both)
    return model.replace(seed=seed, environment=software_environment())


def _with_uncertainty(model, data, n_resamples, fit_kind, settings, options) -> FittedModel:
    """Closed-form intervals for a selected linear formula (dense closed-form fits carry
    them already); with ``n_resamples`` the bootstrap's, refitting each resample with the
    fitted family (the method rule runs again on each), the closed-form ones kept under
    ``uncertainty["analytic"]``."""
    closed = isinstance(data, Trajectories) and "closed-form" in model.method
    # the Euclidean step's intervals do not apply to the multiplicative update's fit
    closed = closed and not model.method.startswith("exponentiated")
    # nor to the fit weighted by a state-dependent diffusion D(x)
    closed = closed and "diffusion" not in model.method
    if closed and model.uncertainty is None:
        model = with_closed_form_uncertainty(model, data)
    if not n_resamples:
        return model
    spec = model.energy_spec
    refit_settings = {**settings, "progress": None}
    if not spec.startswith("auto"):
        refit_settings["energy"] = spec

    def refit(resample):
        return fit_kind(resample, **refit_settings, options=dict(options))

    seed = settings["seed"]
    found = bootstrap_uncertainty(data, model, int(n_resamples), seed=seed, refit=refit)
    if model.uncertainty:
        found["analytic"] = {k: model.uncertainty[k] for k in ("method", "coefficients",
                                                               "temperature")}  # fmt: skip
    return model.replace(uncertainty=found)


def _fit_samples(data: Samples, *, energy, method, ridge, seed, steps, temperature,
                 projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """Equilibrium samples: score matching (linear families), denoising score matching
    (networks) or contrastive divergence (``method="contrastive-divergence"``)."""
    if method not in SAMPLE_METHODS:
        raise ValueError(f"for equilibrium samples, method must be one of "
                         f"{', '.join(SAMPLE_METHODS)}, got {method!r}")  # fmt: skip
    family = parse_energy_spec("poly:4" if energy == "auto" else energy, data.dim)
    if method == "contrastive-divergence":
        model = ContrastiveDivergence(family, steps=steps, seed=seed, **options).fit(data).model_
    elif family.is_linear:
        model = ScoreMatching(family, ridge=ridge, seed=seed).fit(data).model_
    else:
        model = DenoisingScoreMatching(family, steps=steps, seed=seed, progress=progress,
                                       **options).fit(data).model_  # fmt: skip
    if energy == "auto":
        model = model.with_notes("energy 'auto' is poly:4 for samples (no selection yet)")
    return model


def _fit_endpoints(data: Endpoints, *, energy, method, ridge, seed, steps, temperature,
                   projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """End states: the end-state objectives; ``energy="auto"`` selects a polynomial degree by
    the end-state code."""
    if projection is not None or hidden_starts or method == "rollout":
        raise ValueError("end states carry no time: rollout options do not apply (choose "
                         "an objective: latent, likelihood or pushforward)")  # fmt: skip
    if energy == "auto":
        chosen = select_end_states(data, END_STATE_AUTO_FAMILIES, seed=seed, steps=steps,
                                   **options)  # fmt: skip
        return chosen.model.with_notes(
            f"energy 'auto': {chosen.chosen.name} has the shortest code among "
            f"{', '.join(END_STATE_AUTO_FAMILIES)} (iel select ranks more families)"
        )
    return EndStates(energy, seed=seed, steps=steps, progress=progress, **options).fit(data).model_


def _fit_trajectories(data: Trajectories, *, energy, method, ridge, seed, steps, temperature,
                      projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """Trajectories: the auto method rule (module docstring), then the one-step fit
    (``energy="auto"``: selection by description length) or the rollout."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    diffusion = options.pop("diffusion", "constant")
    drift_form = options.pop("drift_form", "mobility")
    model = _fit_trajectories_constant(data, energy=energy, method=method, ridge=ridge, seed=seed,
                                       steps=steps, temperature=temperature,
                                       projection=projection, hidden_starts=hidden_starts,
                                       progress=progress, options=options)  # fmt: skip
    return _with_diffusion(data, model, diffusion, drift_form, energy, method, projection, seed)


def _with_diffusion(data: Trajectories, model: FittedModel, diffusion: str, drift_form: str,
                    energy: str, method: str, projection, seed: int) -> FittedModel:  # fmt: skip
    """The constant-temperature test on ``model``'s steps, and the refit with ``D(x)`` when
    asked (or, for ``diffusion="auto"``, when the test rejects one temperature)."""
    if projection is not None:
        return model.with_diagnostics(
            constant_temperature=None,
            constant_temperature_note="not tested: the model's states are hidden (projection)",
        )
    try:
        entries = constant_temperature_entries(data, model, seed=seed)
    except Exception as error:  # the fitted model stands; the test becomes a note
        return model.with_diagnostics(constant_temperature=None).with_notes(
            f"the constant-temperature test failed: {error}"
        )
    model = model.with_diagnostics(**entries)
    wanted = diffusion not in ("constant", "auto") or (
        diffusion == "auto" and entries["constant_temperature"] is False
    )
    if not wanted:
        return model
    kind = "scalar" if diffusion == "auto" else diffusion
    spec = model.energy_spec if energy == "auto" else energy
    if method == "rollout":
        raise ValueError("a state-dependent diffusion is fitted by the one-step closed form: "
                         "use method='onestep' (or 'auto') with diffusion=")  # fmt: skip
    if spec == "auto":
        spec = "poly:4"
    try:
        fitted = DiffusionClosedForm(spec, kind, drift_form, seed=seed).fit(data).model_
    except ValueError as error:
        if diffusion == "auto":  # asked for nothing in particular: the model stands
            return model.with_notes(f"diffusion 'auto': D(x) was not fitted: {error}")
        raise ValueError(f"diffusion={diffusion!r}: {error}") from None
    keep = {key: model.diagnostics[key] for key in entries if key != "notes"}
    reason = model.diagnostics.get("method_reason")
    if "rollout" in model.method:
        fitted = fitted.with_notes(
            f"the auto rule rolled the one-temperature fit out ({reason}); the fit with D(x) is "
            "one step (no rollout with D(x) yet): read its drift near the data's time step"
        )
    return fitted.with_diagnostics(**keep, method_reason=(
        f"diffusion={diffusion!r}: one-step closed form with D(x)"
        + (f" (the constant-temperature fit: {reason})" if reason else "")
    ))  # fmt: skip


def _fit_trajectories_constant(data: Trajectories, *, energy, method, ridge, seed, steps,
                               temperature, projection, hidden_starts, progress,
                               options) -> FittedModel:  # fmt: skip
    """The fit with one temperature (the auto method rule, then one step or rollout)."""
    rollout_options: dict = {}
    auto_energy = energy == "auto"
    if auto_energy:
        energy = "poly:4" if data.dim < HIGH_DIMENSION else auto_families(data.dim)[-1]
    family = parse_energy_spec(energy, data.dim)
    probe = None
    if projection is not None or hidden_starts:
        reason = "a projection or learned starts were asked for"
        if method == "onestep":
            raise ValueError("projections and hidden starts need method='rollout'")
        method = "rollout"
    elif method == "auto":
        probe_family = family if family.is_linear else parse_energy_spec("poly:3", data.dim)
        probe = OneStepClosedForm(probe_family, ridge=ridge, seed=seed).fit(data).model_
        method, reason, rollout_options = choose_method(data, energy, probe)
    else:
        reason = f"method {method!r} was chosen by the caller"

    if auto_energy and method == "onestep":
        distinct, copies_note = without_copies(data)
        model = select(
            distinct, auto_families(data.dim), prequential=False, seed=seed, search_free=False,
            temperature=temperature,
        ).model  # fmt: skip
        model = model.with_notes(copies_note) if copies_note else model
        return model.with_diagnostics(method_reason=reason)
    if auto_energy:
        reason += "; energy 'auto' selects by description length only for one-step fits, so the "
        reason += f"rollout used {energy}"
    if method == "rollout":
        settings = {**rollout_options, **options}
        settings.setdefault("hidden_starts", hidden_starts)
        estimator = Rollout(  # the spec: with a projection, E lives in the hidden state's space
            energy, projection=projection, temperature=temperature, steps=steps, seed=seed,
            progress=progress, **settings,
        )  # fmt: skip
        model = estimator.fit(data).model_
    else:
        if family.is_linear and probe is not None:
            # the auto rule's probe is this very fit (made before T was the question)
            model = with_fixed_temperature(probe, temperature)
        elif family.is_linear:
            model = OneStepClosedForm(family, ridge=ridge, seed=seed, temperature=temperature)
            model = model.fit(data).model_
        else:
            estimator = OneStepLikelihood(family, seed=seed, steps=steps, progress=progress,
                                          temperature=temperature, **options)  # fmt: skip
            model = estimator.fit(data).model_
    return model.with_diagnostics(method_reason=reason)


def _fit_store(data: TrajectoryStore, *, energy, method, ridge, seed, steps, temperature,
               projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """Trajectories on disk (:class:`~iel.data.store.TrajectoryStore`): the one-step closed
    form in one pass over chunks (:mod:`iel.estimators.trajectories.streamed`); ``auto``
    compares the dense closed-form families of :func:`streamed_auto_families` from the same
    pass.  Rollouts, networks and the auto method rule's residual checks need the data in
    memory (``data.subset(rows)`` reads part of them)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "rollout" or projection is not None or hidden_starts:
        raise ValueError("rollouts (and projections, hidden starts) need the trajectories in "
                         "memory: fit them without streaming, or on part of the data "
                         "(TrajectoryStore.subset(rows))")  # fmt: skip
    if options:
        raise ValueError(f"options not used by the streamed closed-form fit: {sorted(options)}")
    chunks = None if progress is None else (lambda done, total: progress(done, total, np.nan))
    reason = ("streamed trajectories: the one-step closed form in one pass (the auto rule's "
              "checks for observation noise and long steps need a second pass and were not run)"
              if method == "auto" else f"method {method!r} was chosen by the caller")  # fmt: skip
    if energy == "auto":
        families = streamed_auto_families(data.dim)
        model = fit_streamed_families(data, families, ridge=ridge, seed=seed, progress=chunks)
        model = with_fixed_temperature(model, temperature)
    else:
        est = StreamedClosedForm(energy, ridge=ridge, seed=seed, temperature=temperature,
                                 progress=chunks)  # fmt: skip
        model = est.fit(data).model_
    return model.with_diagnostics(method_reason=reason)


def _fit_exponentiated(data: Trajectories, *, energy, method, ridge, seed, steps, temperature,
                       projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """Proportions moved by the multiplicative update: the closed form in centred log-ratio
    coordinates (linear families; ``energy="auto"`` is :data:`EXPONENTIATED_AUTO_ENERGY`)."""
    if method == "rollout" or projection is not None or hidden_starts:
        raise ValueError(
            "dynamics 'exponentiated' is fitted one step at a time in closed form: rollout, "
            "projections and hidden starts are not supported for it"
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if options:
        raise ValueError(f"options {sorted(options)} do not apply to dynamics 'exponentiated'")
    spec = EXPONENTIATED_AUTO_ENERGY if energy == "auto" else energy
    estimator = ExponentiatedGradientClosedForm(spec, ridge=ridge, seed=seed,
                                                temperature=temperature)  # fmt: skip
    model = estimator.fit(data).model_
    if energy == "auto":
        model = model.with_notes(f"energy 'auto' is {spec} for exponentiated-gradient fits "
                                 "(no selection yet)")  # fmt: skip
    reason = "the multiplicative update is linear in ∇E in centred log-ratio coordinates"
    return model.with_diagnostics(method_reason=reason + ": one-step closed form")


def _with_dynamics_option(model: FittedModel, option: str, data: Trajectories) -> FittedModel:
    """``model`` with ``diagnostics["dynamics_option"]`` (gd, langevin or exponentiated: the
    operator it was fitted with) and ``dynamics_reason``; ``"langevin"`` keeps Langevin even
    when the steps were noise-free."""
    if option == "langevin" and not isinstance(model.dynamics, Langevin):
        model = model.replace(dynamics=Langevin(model.temperature)).with_notes(
            "dynamics 'langevin' was asked for, but the steps are noise-free: T = 0"
        )
    if isinstance(model.dynamics, ExponentiatedGradient):
        chosen = "exponentiated"
    else:
        chosen = "langevin" if isinstance(model.dynamics, Langevin) else "gd"
    if option == "auto":
        reason = ("inferred: noise-free steps, gradient flow" if chosen == "gd" else
                  "inferred: noisy steps, overdamped Langevin")  # fmt: skip
        if _on_simplex(data):
            model = model.with_notes("the states are proportions (positive, rows summing to "
                                     "one): --dynamics exponentiated fits the multiplicative "
                                     "update instead")  # fmt: skip
    else:
        reason = f"dynamics {option!r} was chosen by the caller"
    return model.with_diagnostics(dynamics_option=chosen, dynamics_reason=reason)


def _on_simplex(data: Trajectories) -> bool:
    if len(data.state_shape) != 1 or data.dim < 2:
        return False
    try:
        check_simplex(data.observed_states(), "states")
    except DataError:
        return False
    return True


def _fit_snapshots(data: Snapshots, *, energy, method, ridge, seed, steps, temperature,
                   projection, hidden_starts, progress, options) -> FittedModel:  # fmt: skip
    """Snapshots: one step on OT pairs (tracked particles), the JKO condition with its entropy
    term (``resampled=True``), or the Sinkhorn rollout (``method="rollout"``)."""
    coupling = options.pop("coupling", "auto")
    interaction = options.pop("interaction", None)
    resampled = options.pop("resampled", False)
    regime = options.pop("regime", "auto")
    refinements = options.pop("refinements", 0)
    pairing = options.pop("pairing", "auto")
    growth, reg_m = options.pop("growth", None), options.pop("reg_m", None)
    grows = growth not in (None, "none") or (growth is None and data.growth_rate is not None)
    if (method == "rollout" or resampled or regime == "fresh") and (grows or reg_m is not None):
        raise ValueError("growth between snapshots (growth=, reg_m=, Snapshots.growth_rate) is "
                         "coupled by the one-step fit on paired particles only; pass "
                         "growth='none' for the rollout or resampled fits")  # fmt: skip
    if resampled:  # the older name of regime="fresh"
        if regime == "same":
            raise ValueError("resampled=True means regime='fresh'; it contradicts regime='same'")
        regime = "fresh"
    if projection is not None or hidden_starts:
        raise ValueError("projections and hidden starts are for trajectories, not snapshots")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "rollout":
        if interaction or resampled or refinements or pairing != "auto":
            raise ValueError("the snapshot rollout takes no interaction, resampled, pairing or "
                             "refinements: it matches whole populations")  # fmt: skip
        options.setdefault("steps", min(steps, 400))
        return SnapshotRollout(energy, coupling=coupling, temperature=temperature, seed=seed,
                               progress=progress, **options).fit(data).model_  # fmt: skip
    if options:
        raise ValueError(f"options not used by the one-step snapshot fit: {sorted(options)}")
    pairing_options = bool(interaction or refinements or pairing != "auto" or grows
                           or reg_m is not None)  # fmt: skip
    if regime == "fresh" and pairing_options:
        raise ValueError("re-sampled populations are fitted without an interaction, pairing "
                         "or refinements: their particles are not the same")  # fmt: skip
    if regime == "auto" and pairing_options:
        decision = RegimeDecision("same", "an interaction, pairing, refinements or growth were "
                                  "asked for: they pair the same particles")  # fmt: skip
    else:
        decision = decide_regime(data, energy, regime, seed)
    linear = energy == "auto" or parse_energy_spec(energy, data.dim).is_linear
    if decision.regime == "fresh" and linear:
        model = fit_resampled(data, energy, coupling=coupling, seed=seed)
        model = _with_regime(model, decision, "fresh samples: the JKO condition with its entropy "
                             "term (the population moves by −∇E − T∇log ρ)")  # fmt: skip
        if energy == "auto":
            model = model.with_notes("energy 'auto' is poly:4 for fresh samples (no selection)")
        if data.dim >= HIGH_DIMENSION:
            model = model.with_notes(
                f"fresh samples in {data.dim} dimensions: the JKO fit's density score and "
                "transport pairing need far more samples as the dimension grows; in 30 "
                "components of 5 000 cells per time it did not recover a known process (drift "
                "error 0.91, T 6× low; benchmarks/single_cell_workflow.py), in 5 it did (0.11): "
                "fit the leading components (n_components=5 to 10) and compare"
            )
        return with_fixed_temperature(model, temperature)
    est = SnapshotOneStep(energy, coupling=coupling, interaction=interaction, pairing=pairing,
                          refinements=refinements, steps=steps, seed=seed,
                          select=select_snapshot_pairs, temperature=temperature,
                          growth=growth, reg_m=reg_m)  # fmt: skip
    model = est.fit(data).model_
    if decision.regime == "fresh":  # a network family: the JKO fit is closed form, linear only
        return _with_regime(model, decision, "paired by transport all the same").with_notes(
            f"these snapshots look like fresh samples ({decision.reason}), but {energy} is not "
            "linear in its parameters and the fresh-sample (JKO) fit needs a linear family: "
            "they were paired as the same particles, so T is likely too low; use a linear "
            "family (poly:4, rbf:50) or method='rollout'"
        )
    return _with_regime(model, decision, "same particles: one step on optimal-transport pairs")


def _with_regime(model: FittedModel, decision: RegimeDecision, fitted: str) -> FittedModel:
    """The model with the snapshot regime, why it was assumed, and its test's numbers."""
    reason = model.diagnostics.method_reason
    return model.with_diagnostics(
        snapshot_regime=decision.regime,
        snapshot_regime_reason=decision.reason,
        snapshot_regime_test=decision.statistics,
        method_reason=f"{fitted}, because {decision.reason}" + (f" ({reason})" if reason else ""),
    )
