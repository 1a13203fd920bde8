"""Model selection by description length: which energy explains the trajectories most simply,
and is an energy the right kind of model at all?

For each candidate family the data are coded (two-part and prequential codes, see
:mod:`iel.selection.codes`) with the dense least-squares fit and with a sparse formula found by
forward–backward search and snapping.  Beside the energies, the null code (``E ≡ const``) and a
general non-gradient drift on the same features per output coordinate are coded: an energy is
reported as explaining the data when its code is shorter than the drift's ("is this a gradient
system at all?"), and noise-free gradient descent is compared with Langevin by coding the
chosen energy with its fitted temperature and with the temperature floored at the data
precision.
"""

from __future__ import annotations

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data.trajectories import Trajectories
from ..energies.exp_quadratics import (
    ExpQuadratics,
    free_parameter_count,
    searched_parameter_count,
)
from ..energies.features import (
    AbstractFeatureLibrary,
    FeatureEnergy,
    Fourier,
    Monomials,
    TooFewStatesError,
    library_parts,
)
from ..energies.pair_monomials import PairMonomials
from ..energies.spec import parse_energy_spec
from ..estimators.base import (
    fitted_model,
    identifiability_for_trajectories,
    shift_to_zero_min,
    with_fixed_temperature,
)
from ..estimators.trajectories.likelihood import OneStepLikelihood
from ..linear.normal_equations import normal_equations
from ..linear.varpro import refine_free_parameters
from ..mdl.codes import (
    Stats,
    bic_code,
    default_epsilon,
    null_code,
    prequential_linear,
    temperature_floor,
    two_part_linear,
)
from ..mdl.sparse import (
    FreeParameters,
    SparseResult,
    forward_backward,
    snap_constants,
    solve_support,
)
from ..model import FittedModel
from .candidates import (
    Candidate,
    Selection,
    is_formula,
)
from .collective import collective_candidate
from .families import SELECT_FAMILIES

VARPRO_RESTARTS = 2  # searches per exponentiated-quadratic family (at least one per placement
# group of iel.linear.varpro: wells, wells + background, anchored on closed-form minima)
SPARSE_SEARCH_LIBRARY = 120  # libraries larger than this are coded dense only (no greedy search)
DRIFT_LIBRARY_LIMIT = 1500  # per-coordinate drift libraries larger than this are not fitted
AKAIKE_MARGIN = 10.0  # nats a rival must gain: to try expquad after a formula, or overrule it
EXACT_FORMULA_FLOOR = 10.0  # a formula is exact when its temperature is within this × the floor


def _free_length_terms(library: AbstractFeatureLibrary) -> list[int]:
    """Library indices of the terms whose presence in a formula makes the library's free
    parameters count: Fourier terms with a fitted length scale, and the pairwise terms of
    screened pairs."""
    out, start = [], 0
    for part in library_parts(library):
        if isinstance(part, Fourier) and part.free_length:
            out.extend(range(start, start + part.n_features))
        elif isinstance(part, PairMonomials):
            out.extend(start + i for i in part.pair_term_indices())
        start += part.n_features
    return out


def _stats_from_normal_equations(eq, d: int) -> Stats:
    return Stats(eq.gram, eq.rhs, eq.sq_over_h, eq.n_rows, d * eq.sum_log_h)


def _blocks(n_traj: int, seed: int) -> list[np.ndarray]:
    """Trajectory index blocks of doubling size for the prequential code."""
    order = np.random.default_rng(seed).permutation(n_traj)
    fractions = [1 / 32, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2]
    bounds = np.unique(np.clip(np.round(np.cumsum(fractions) * n_traj).astype(int), 1, n_traj))
    out, start = [], 0
    for end in bounds:
        if end > start:
            out.append(order[start:end])
            start = end
    return out


def _subset(data: Trajectories, rows: np.ndarray) -> Trajectories:
    return Trajectories(
        data.x[rows], t=data.t[rows], mask=None if data.mask is None else data.mask[rows]
    )


@eqx.filter_jit
def _drift_sums(library, x0, dx, h):
    phi = jax.vmap(lambda x: jnp.concatenate([jnp.ones(1), library(x)]))(x0)
    return phi.T @ (phi * h[:, None]), dx.T @ phi, jnp.sum(jnp.sum(dx**2, axis=1) / h)


def _drift_stats(library, x0, dx, h) -> Stats:
    """Stats of ``F(x) = W [1, φ(x)]`` as a linear model in ``vec(W)`` (row-major)."""
    gram_phi, cross, sq = (np.asarray(v) for v in _drift_sums(library, x0, dx, h))
    d = x0.shape[1]
    return Stats(
        np.kron(np.eye(d), gram_phi), cross.reshape(-1), float(sq), float(x0.shape[0] * d),
        float(d * np.sum(np.log(h))),
    )  # fmt: skip


def _formula(names: list[str], support: list[int], theta: np.ndarray, snapped=None) -> str:
    energy_terms = []
    for i, j in enumerate(support):
        if snapped and j in snapped:
            p, q = snapped[j]
            coef = f"{p}" if q == 1 else f"{p}/{q}"
        else:
            coef = f"{theta[i]:.4g}"
        energy_terms.append(f"{coef}·{names[j]}")
    return " + ".join(energy_terms).replace("+ -", "− ") or "0"


def select(
    data: Trajectories,
    families: tuple[str, ...] = SELECT_FAMILIES,
    *,
    epsilon: float | None = None,
    prequential: bool = True,
    networks: tuple[str, ...] = (),
    network_steps: int = 1500,
    seed: int = 0,
    search_free: bool = True,
    network_optimiser: str = "adam",
    gradient_test: bool = True,
    collective: bool = True,
    temperature: float | None = None,
) -> Selection:
    """Rank energy families (dense and sparse) and a non-gradient drift by code length.

    Args:
        data: trajectories.
        families: linear energy families to try (each dense and sparse).
        epsilon: data precision (default :func:`default_epsilon`).
        prequential: also compute prequential codes (a second pass over the data per block).
        networks: network families to add (e.g. ``("mlp:16", "mlp:32x32")``), fitted by the
            one-step likelihood and coded with :func:`~iel.selection.codes.bic_code`.
        network_steps: optimiser steps for each network.
        network_optimiser: ``"adam"`` (minibatches) or ``"lbfgs"`` (full batch; see
            :class:`~iel.estimators.OneStepLikelihood`).
        gradient_test: code the general non-gradient drift too ("is this a gradient system
            at all?").  Snapshot pairs pass ``False``: optimal-transport pairs are displaced
            by the gradient of a convex function (Brenier), so the test cannot fail there.
        seed: for data-chosen centres and the block split.
        collective: in ``d ≥ 4``, when the data move along at most three directions, also
            code an energy of those collective variables (:mod:`.collective`), selected
            among the low-dimensional families on the projected data.
        search_free: fit families with free parameters (``expquad:M``) even when a sparse
            formula of a fixed family already has the shortest code, and networks even when
            that formula is exact (residuals at the data precision).  ``energy="auto"``
            passes ``False``: their search costs seconds, and a landscape a formula explains
            is left as that formula (the report lists what was skipped).
        temperature: fix the chosen model's ``T`` (the codes use the fitted one; the fitted
            value is kept in the diagnostics as ``estimated_temperature``).
    """
    if not isinstance(data, Trajectories):
        raise TypeError(f"selection works on trajectories, got {type(data).__name__}")
    start = time.perf_counter()
    eps = default_epsilon(data) if epsilon is None else float(epsilon)
    x0, dx, h = data.increments()
    states = data.observed_states()
    h_mean = float(np.mean(h))
    use_blocks = prequential and data.n_trajectories >= 8
    blocks = _blocks(data.n_trajectories, seed) if use_blocks else None
    block_data = [_subset(data, rows).increments() for rows in blocks] if blocks else None

    candidates: list[Candidate] = []
    empty = Stats(np.zeros((0, 0)), np.zeros(0), 0.0, 0.0, 0.0)
    base, base_blocks = None, None
    parsed = [(spec, parse_energy_spec(spec, data.dim)) for spec in families]
    for spec, family in parsed:
        if not family.is_linear:
            raise ValueError(f"selection families must be linear in their parameters: {spec!r}")
    # fixed families first (a scanned Fourier length counts as fixed: the scan is cheap);
    # families with searched parameters (exponentiated quadratics) after them, and only when
    # no sparse formula of a fixed family is the shortest code so far (:func:`_formula_found`)
    # or a fixed family explains the steps clearly better than that formula
    # (:func:`_formula_misses_structure`)
    parsed.sort(key=lambda item: searched_parameter_count(item[1].library))  # small to large
    exact = temperature_floor(eps, h_mean) * EXACT_FORMULA_FLOOR  # formula explains the steps
    skipped: list[str] = []
    too_few: list[str] = []  # families the data hold too few distinct states to place
    rung: ExpQuadratics | None = None  # the last fitted expquad:M, where the next one starts
    for spec, family in parsed:
        free = free_parameter_count(family.library)
        searched = searched_parameter_count(family.library)
        if searched and _formula_found(candidates, always=search_free):
            floor = temperature_floor(eps, h_mean)
            if not _formula_misses_structure(candidates, base.n if base else 0.0, floor):
                skipped.append(spec)
                continue
        if free and _formula_found(candidates, always=search_free, exact_within=exact):
            skipped.append(spec)  # a scanned length: skipped only after an exact formula
            continue
        try:
            library = family.library.adapt(states, seed=seed)
        except TooFewStatesError as err:  # e.g. rbf:20 on a trajectory of 6 states
            too_few.append(f"{spec} ({err})")
            continue
        if free:  # variable projection (expquad), frequency scan (fourier:K:fit), pairs:K
            eq = isinstance(library, ExpQuadratics)
            library = refine_free_parameters(
                library, states, x0, dx, h, seed=seed, restarts=VARPRO_RESTARTS,
                nested_from=rung if eq else None,
                anchors=_closed_form_minima(candidates, states, seed) if eq else None,
            )  # fmt: skip
            if isinstance(library, ExpQuadratics):
                rung = library
            free = free_parameter_count(library)  # screened pairs: as many as were chosen
        stats = _stats_from_normal_equations(normal_equations(library, x0, dx, h), data.dim)
        # (free parameters are fitted on all the data, so no honest prequential code exists)
        per_block = (
            [_stats_from_normal_equations(normal_equations(library, *b), data.dim)
             for b in block_data] if block_data and not free else None
        )  # fmt: skip
        if base is None:
            base, base_blocks = stats, per_block
        candidates += _family_candidates(spec, library, stats, per_block, free, searched, eps,
                                         h_mean)  # fmt: skip
    if collective:  # cheap unless the data move along few directions
        fitted = [c for c in candidates if c.kind == "energy"]
        best_t = (
            min(fitted, key=lambda c: c.code.total).code.details["temperature"] if fitted else None
        )
        found = collective_candidate(
            data, best_t, epsilon=eps, h_mean=h_mean, seed=seed, search_free=search_free,
            networks=networks, network_steps=network_steps, network_optimiser=network_optimiser,
            select_inner=select,
        )  # fmt: skip
        if found is not None:
            candidates.append(found)
    # after an exact fit (residuals at the data precision; dense fits too, so this covers an
    # exact sparse formula) a network, which leaves a residual, cannot code the steps shorter
    exact_fit = not search_free and any(
        c.kind in ("energy", "projected") and c.code.details["temperature"] <= exact
        for c in candidates
    )
    for spec in networks:
        if exact_fit:
            skipped.append(spec)
            continue
        candidates.append(_network_candidate(data, spec, eps, h_mean, network_steps, seed,
                                             network_optimiser))  # fmt: skip
    null = null_code(base or empty, eps, h_mean)
    # the null model uses only Σ‖Δx‖²/h, n and Σ log h, which every family's blocks carry
    null_preq = (
        prequential_linear(base_blocks, np.zeros(0, int), epsilon=eps, h_mean=h_mean)
        if base_blocks
        else None
    )
    null_cand = Candidate("constant (null)", "null", null, null_preq, 0, "E(x) = const",
                          math.sqrt(base.sq_over_h / max(base.n, 1)) if base else 0.0)  # fmt: skip
    candidates.append(null_cand)

    energies = [c for c in candidates if c.kind in ("energy", "null", "network", "projected")]
    chosen = min(energies, key=lambda c: c.code.total)
    chosen, searched_note = _searched_fit_check(
        chosen, energies, base.n if base else 0.0, temperature_floor(eps, h_mean)
    )

    drift_spec, drift_family = _drift_family(data.dim, chosen, energies)
    drift_size = data.dim * (drift_family.n_features + 1)
    drift_cand, gradient_system = None, None
    if gradient_test and drift_size <= DRIFT_LIBRARY_LIMIT:
        drift_cand = _drift_candidate(data, drift_family, drift_spec, states, x0, dx, h, eps,
                                      h_mean, seed)  # fmt: skip
        candidates.append(drift_cand)
        gradient_system = chosen.code.total <= drift_cand.code.total

    model = _chosen_model(data, chosen, eps, h_mean, x0, dx, h, states)
    dynamics = _dynamics(model)
    entries = {
        "code_length": chosen.code.as_dict(),
        "null_code_bits": null.total,
        "gradient_system": gradient_system,
        "dynamics": dynamics,
    }
    if not gradient_test:
        entries["gradient_system_note"] = "not tested (the caller asked for no test)"
    elif drift_cand is None:
        entries["gradient_system_note"] = (
            f"not tested: the general drift would need {drift_size} coefficients "
            f"(over {DRIFT_LIBRARY_LIMIT}); fit it with a smaller family to compare"
        )
    model = model.with_diagnostics(**entries)
    if searched_note:
        model = model.with_notes(searched_note)
    if skipped:
        model = model.with_notes(
            f"not fitted: {', '.join(skipped)} (a sparse formula is already the shortest code, "
            "or a fit explains the steps exactly; iel select fits them anyway)"
        )
    if too_few:
        model = model.with_notes(f"not fitted, too few distinct states: {'; '.join(too_few)}")
    model = with_fixed_temperature(model, temperature)
    model = model.replace(fit_seconds=time.perf_counter() - start)
    return Selection(candidates, chosen, drift_cand, null_cand, gradient_system, dynamics, eps,
                     time.perf_counter() - start, model)  # fmt: skip


def _family_candidates(spec, library, stats: Stats, per_block, free: int, searched: int,
                       eps: float, h_mean: float) -> list[Candidate]:  # fmt: skip
    """The dense fit of one family and, for small libraries, its sparse formula (forward–
    backward search, constants snapped), each coded (two-part, and prequential over the
    blocks when given) as a :class:`Candidate`."""
    out: list[Candidate] = []
    names = library.names()
    p = library.n_features
    dense = _dense_fit(stats, eps, h_mean, free)
    # the greedy search costs O(p) code evaluations per step: libraries larger than
    # SPARSE_SEARCH_LIBRARY are coded dense only; so are libraries with searched parameters
    # (their terms were fitted jointly, so dropping one is not a sparse model of the rest);
    # a scanned Fourier length is charged only when the formula keeps a Fourier term
    charge = FreeParameters(free, frozenset(_free_length_terms(library)))
    if p > SPARSE_SEARCH_LIBRARY or searched:
        sparse = None
    else:
        sparse = forward_backward(stats, epsilon=eps, h_mean=h_mean, free=charge)
        snappable = [not n.startswith("rbf") for n in names]
        sparse = snap_constants(stats, sparse, epsilon=eps, h_mean=h_mean, n_library=p,
                                snappable=snappable, free=charge)  # fmt: skip
    fits = [(f"{spec} (dense)", dense.support, dense.theta, dense.code, None)]
    if sparse is not None:
        fits.append((f"{spec} (sparse)", sparse.support, sparse.theta, sparse.code, sparse.snapped))
    for label, support, theta, code, snapped in fits:
        n_free = free if searched else charge.charged(support)
        preq = (
            prequential_linear(per_block, np.asarray(support, int), epsilon=eps,
                               h_mean=h_mean) if per_block else None
        )  # fmt: skip
        out.append(Candidate(
            label, "energy", code, preq, len(support) + n_free,
            "E(x) = " + _formula(names, support, theta, snapped),
            math.sqrt(code.details["residual"] / max(stats.n, 1)), spec, library,
            list(support), theta,
        ))  # fmt: skip
    return out


def _formula_found(candidates: list[Candidate], always: bool,
                   exact_within: float | None = None) -> bool:  # fmt: skip
    """Whether the shortest code so far is a formula: a sparse fit of a fixed family whose
    terms are monomials or Fourier modes (data-placed RBF bumps are not a formula).  With
    ``exact_within``, only a formula whose coded temperature is at most that (residuals at
    the data precision: it explains the steps exactly) counts — for families with a scanned
    length, which may find the structure a formula with a residual misses.  A
    collective-variable candidate counts when its energy of the collective variables is such
    a formula."""
    energies = [c for c in candidates if c.kind in ("energy", "projected")]
    if always or not energies:
        return False
    best = min(energies, key=lambda c: c.code.total)
    exact = exact_within is None or best.code.details["temperature"] <= exact_within
    return is_formula(best) and exact


def _closed_form_minima(candidates: list[Candidate], states: np.ndarray, seed: int,
                        sample: int = 3000, neighbours: int = 20) -> np.ndarray | None:  # fmt: skip
    """Local minima of the best closed-form energy so far (shortest code among the fixed
    families) over the data, deepest first: the data states (at most ``sample`` of them)
    whose energy is the lowest among their ``neighbours`` nearest, one per well (a minimum
    within the neighbourhood radius of a deeper one is dropped).  They anchor a placement of
    the exponentiated quadratics (:func:`~iel.linear.varpro.refine_free_parameters`): the
    wells of a fixed family that fits the landscape approximately are where the terms of the
    exact one belong."""
    fixed = [c for c in candidates if c.kind == "energy" and c.library is not None
             and not searched_parameter_count(c.library) and len(c.support)]  # fmt: skip
    if not fixed:
        return None
    best = min(fixed, key=lambda c: c.code.total)
    x = np.asarray(states, float)
    if len(x) > sample:
        x = x[np.random.default_rng(seed).choice(len(x), sample, replace=False)]
    k = min(neighbours, len(x) - 1)
    if k < 1:
        return None
    phi = np.asarray(jax.vmap(best.library)(jnp.asarray(x)))[:, best.support]
    energy = phi @ np.asarray(best.theta)
    dist = np.sqrt(np.sum((x[:, None] - x[None]) ** 2, axis=2))
    near = np.argsort(dist, axis=1)[:, 1 : k + 1]
    radius = dist[np.arange(len(x)), near[:, -1]]
    minima = [i for i in np.argsort(energy) if energy[i] <= energy[near[i]].min()]
    kept: list[int] = []
    for i in minima:
        if all(dist[i, j] > radius[j] for j in kept):
            kept.append(i)
    return x[kept] if kept else None


def _akaike(c: Candidate, n_obs: float, floor: float) -> float:
    """Akaike's criterion of a linear candidate, ``n log(residual) + 2k`` (nats, up to a
    constant shared by all candidates on the same data; residuals below the data precision
    count as at it)."""
    residual = max(c.code.details["residual"], 2.0 * n_obs * floor, 1e-300)
    return n_obs * math.log(residual) + 2 * c.n_parameters


def _formula_misses_structure(candidates: list[Candidate], n_obs: float, floor: float) -> bool:
    """Whether a fixed family explains the steps better than the shortest code so far (a
    formula) by more than :data:`AKAIKE_MARGIN` in Akaike's criterion: the formula then
    leaves structure unexplained (a sparse polynomial standing in for a landscape of wells)
    and the families with searched parameters are fitted after all.  The formula's own family
    is its reference: the dense fit of the same library explaining the steps a little better
    (a term the sparse code judged not worth its bits) is not structure the formula misses,
    so a rival must beat the best fit of the formula's family, dense or sparse."""
    energies = [c for c in candidates if c.kind == "energy" and c.library is not None]
    if not energies or n_obs <= 0:
        return False
    best = min(energies, key=lambda c: c.code.total)
    own = [c for c in energies if c.spec == best.spec] or [best]
    reference = min(_akaike(c, n_obs, floor) for c in own)
    # rivals are fixed families: a scanned frequency (fourier:K:fit) is chosen as the best of
    # many, so its one counted parameter under-states what it fits (on a 1-D double well its
    # dense fit beat the exact quartic by 15 nats of noise and sent auto into a 70 s search)
    others = [_akaike(c, n_obs, floor) for c in energies
              if c.spec != best.spec and not free_parameter_count(c.library)]  # fmt: skip
    return bool(others) and min(others) < reference - AKAIKE_MARGIN


def _searched_fit_check(chosen: Candidate, energies: list[Candidate], n_obs: float,
                        floor: float):  # fmt: skip
    """A fit with searched parameters (``expquad:M``) may sit in a local optimum of its
    non-convex loss.  Its code can still be the shortest (few parameters), yet a fixed family
    that explains the steps better is then the better model of the forces.  "Better" is the
    expected held-out one-step log-likelihood (Akaike): ``n log(residual) + 2k`` lower, with
    ``k`` the coefficients plus the free parameters, by more than :data:`AKAIKE_MARGIN` (a
    few nats is no evidence of a local optimum: on Müller–Brown data released from one point a
    dense ``poly:6+rbf:30``, 7 nats better, replaced ``expquad:2`` and extrapolated to a force
    error of 37 in a well the fit's data never reached).  A rival must still justify itself by
    its description: one whose code is longer than the constant energy's (the null model)
    is no candidate, however well it fits the steps.  Returns the candidate to choose and a
    note (``None`` when the searched fit stands)."""
    if chosen.kind != "energy" or chosen.library is None:
        return chosen, None
    if not searched_parameter_count(chosen.library):
        return chosen, None
    null_bits = min((c.code.total for c in energies if c.kind == "null"), default=math.inf)
    fixed = [c for c in energies if c.kind == "energy" and c.library is not None
             and not searched_parameter_count(c.library)
             and c.code.total < null_bits]  # fmt: skip
    if not fixed:
        return chosen, None

    def akaike(c: Candidate) -> float:
        return _akaike(c, n_obs, floor)

    rival = min(fixed, key=akaike)
    if akaike(rival) >= akaike(chosen) - AKAIKE_MARGIN:
        return chosen, None
    note = (
        f"{chosen.name} (shortest code) explains the steps worse than {rival.name} "
        f"(residual {chosen.code.details['residual']:.6g} against "
        f"{rival.code.details['residual']:.6g}, by {akaike(chosen) - akaike(rival):.1f} in "
        f"Akaike's criterion): its centres and matrices likely sit in a local optimum of the "
        f"non-convex fit, so {rival.name} is chosen"
    )
    return rival, note


def _dense_fit(stats: Stats, eps: float, h_mean: float, free_parameters: int = 0) -> SparseResult:
    """Every term of the library, least squares, and its two-part code (with the library's
    free parameters, if any, coded too)."""
    support = list(range(stats.gram.shape[0]))
    theta = solve_support(stats, support)
    code = two_part_linear(stats, np.arange(len(support)), theta, n_library=0, epsilon=eps,
                           h_mean=h_mean, free_parameters=free_parameters)  # fmt: skip
    return SparseResult(support, theta, code, {}, [])


def _drift_family(dim: int, chosen: Candidate, energies: list[Candidate]):
    """``(spec, library)`` of the general drift "is this a gradient system?" codes: the same
    features per coordinate (degree − 1 for polynomials); for a chosen family with free
    parameters, those of the best fixed family."""
    fixed = [c for c in energies if c.library is not None and not free_parameter_count(c.library)]
    drift_from = chosen if chosen in fixed else min(fixed, key=lambda c: c.code.total, default=None)
    drift_spec = drift_from.spec if drift_from is not None else "poly:4"
    library = parse_energy_spec(drift_spec, dim).library
    if isinstance(library, Monomials) and library.degree > 1:
        library = Monomials(dim, library.degree - 1, library.max_vars)
    return drift_spec, library


def _drift_candidate(data, drift_family, drift_spec, states, x0, dx, h, eps, h_mean, seed):
    """The general drift ``F_j = Σ_k W_jk φ_k`` coded like the energies (sparse when small)."""
    drift_library = drift_family.adapt(states, seed=seed)
    dstats = _drift_stats(drift_library, jnp.asarray(x0), jnp.asarray(dx), jnp.asarray(h))
    dnames = [f"F{j}:{n}" for j in range(data.dim) for n in ["1", *drift_library.names()]]
    if dstats.gram.shape[0] > SPARSE_SEARCH_LIBRARY:
        dsparse, how = _dense_fit(dstats, eps, h_mean), "dense"
    else:
        dsparse, how = forward_backward(dstats, epsilon=eps, h_mean=h_mean), "sparse"
    dcode = dsparse.code
    return Candidate(
        f"drift {drift_spec}−1 per coordinate ({how})", "drift", dcode, None,
        len(dsparse.support), "F(x) = " + _formula(dnames, dsparse.support, dsparse.theta),
        math.sqrt(dcode.details["residual"] / max(dstats.n, 1)), drift_spec,
    )  # fmt: skip


def _network_candidate(data, spec, eps, h_mean, steps, seed, optimiser="adam") -> Candidate:

    est = OneStepLikelihood(spec, steps=steps, seed=seed, optimiser=optimiser).fit(data)
    model = est.model_
    x0, dx, h = data.increments()
    n = float(x0.shape[0] * data.dim)
    residual = model.diagnostics["train_loss"] * n
    n_params = int(sum(np.size(v) for v in jax.tree_util.tree_leaves(
        eqx.filter(model.energy_module, eqx.is_inexact_array))))  # fmt: skip
    code = bic_code(residual, n, float(data.dim * np.sum(np.log(h))), n_params, epsilon=eps,
                    h_mean=h_mean)  # fmt: skip
    return Candidate(spec, "network", code, None, n_params, model.formula,
                     math.sqrt(residual / max(n, 1)), spec, fitted=model)  # fmt: skip


def _chosen_model(data, chosen: Candidate, eps, h_mean, x0, dx, h, states) -> FittedModel:
    if chosen.fitted is not None:
        return chosen.fitted.replace(energy_spec=f"auto → {chosen.name}")
    if chosen.kind == "null" or chosen.library is None:
        energy = FeatureEnergy(Monomials(data.dim, 1))
    else:
        theta = np.zeros(chosen.library.n_features)
        theta[chosen.support] = chosen.theta
        energy = shift_to_zero_min(FeatureEnergy(chosen.library, theta), states)
    t = chosen.code.details["temperature"]
    floor = temperature_floor(eps, h_mean)
    noise_free = t <= floor * (1 + 1e-9)
    return fitted_model(
        data,
        energy,
        temperature=0.0 if noise_free else float(t),
        energy_spec=f"auto → {chosen.name}",
        method="onestep-closed-form + description-length selection",
        diagnostics={
            "noise_free": bool(noise_free),
            "n_transitions": int(x0.shape[0]),
            "residual_scale": chosen.residual_scale,
            "notes": [],
        },
        identifiability=identifiability_for_trajectories(noise_free),
        stop_reason="shortest two-part code among the candidate families",
        states=states,
    )


def _dynamics(model: FittedModel) -> str:
    """Noise-free descent codes residuals at the temperature floor of the data precision; when
    the fitted T is above that floor the Gaussian code at the floor is longer (T̂ is the
    maximum-likelihood temperature), so Langevin is the shorter description."""
    if model.temperature == 0.0:
        return "gradient descent (noise-free: residuals at the data precision)"
    return f"Langevin (T = {model.temperature:.4g}; noise-free descent codes worse)"
