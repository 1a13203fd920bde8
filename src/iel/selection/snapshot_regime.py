"""Same particles or fresh samples? Which snapshot estimator the data call for.

Snapshots come in two regimes.  *Same particles*: every particle is seen at every time, only
the identities are lost; optimal transport (OT) between consecutive snapshots recovers them
while the noise of one step is small against the particles' spacing, and the paired
displacements are ``hF(x) + √(2Th) ξ`` (:class:`~iel.estimators.SnapshotOneStep`).  *Fresh
samples*: each snapshot is a new sample of the population; the OT pairs of two independent
samples are displaced by the samples' own differences, whatever ``h``, and the population
moves by ``−∇V − T∇log ρ`` (:func:`~iel.estimators.snapshots.resampled.fit_resampled`).

The test (:func:`pairing_ratio`) asks whether the OT pairs resolve particles.  A probe drift
``F̂`` is fitted by one step on the transport pairs ``x ↦ y`` and its residual

    ``r = mean ‖y − x − hF̂(x)‖²``

is compared with the squared Wasserstein distance ``S`` between two *independent* samples of
the population of the same sizes, measured on disjoint random halves of each snapshot (the
halves of one snapshot are independent samples of one law in both regimes) and scaled to the
sizes of the pair: ``E W₂²(μ_a, μ_b) ∝ n_eff^{−p}``, ``n_eff = 2/(1/a + 1/b)``, with
``p = 1`` on the line (the quantile process), ``n^{-1} log n`` in the plane
(Ajtai–Komlós–Tusnády) and ``p = 2/d`` beyond.  For fresh samples the pairs are pairs of
independent samples and ``R = r/S`` is of order 1 (below it where the probe drift absorbs
part of the samples' differences — on the line their largest modes, a shift and a
stretch, so that ``R`` ranges over 0.2–1 with the seed —, above it where the probe misses
the time-dependent velocity ``−∇V − T∇log ρ_t`` of the population).  For the same particles,
with the noise of a step below their spacing, the residual is the Brownian increments and
``R ≪ 1``.

``R`` alone does not separate the regimes on the line, so the decisive question is the
second one: *does the residual grow with the gap?*  The test is repeated on every other
snapshot (gaps ``2h``, ``R₂``).  For fresh samples the residual is the samples' own
differences, whatever the gap (``R₂/R`` from 0.4 to 1.04 in the sweep of
``benchmarks/snapshot_regime.py``); for the same particles it holds the motion of a step —
Brownian increments, a force the probe misses, a step that folds and that transport pairs
wrongly — and grows (``R₂/R ≥ 1.17`` there).  Below :data:`RESOLVED_RATIO` (independent samples gave
0.2 or more) the particles are resolved: the same particles.  With three snapshots or more and
``R <`` :data:`MISFIT_RATIO`: the same particles iff ``R₂/R ≥`` :data:`LAG_GROWTH`.  At
``R ≥ MISFIT_RATIO`` the residual exceeds what independent sampling makes, the probe misses
the motion and its growth with the gap says nothing of the regime: fresh samples.  With two
snapshots: the same particles iff ``R <`` :data:`FRESH_RATIO`.

Same particles whose noise per step swamps their spacing also give ``R`` near 1: transport
cannot follow them, their OT pairs are as mixed as those of independent samples, and the
one-step fit on those pairs reads too small a temperature.  The law of the population still
moves by ``−∇V − T∇log ρ``, so the JKO fit is the one that applies to them too; the decision
is "do the pairs resolve particles?", and the report says which reading was taken and why.

Unequal snapshot sizes cannot all be the same particles: fresh samples without a test.  A
hint (``Snapshots(..., same_particles=...)``, set by readers of single-cell data) or an
explicit ``regime`` decides without the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.populations import Snapshots
from ..data.trajectories import Trajectories
from ..energies.spec import parse_energy_spec
from ..estimators.snapshots.onestep import paired_transitions
from ..estimators.trajectories.closed_form import OneStepClosedForm
from ..transport.couplings import couple

REGIMES = ("auto", "same", "fresh")
FRESH_RATIO = 0.5  # with two snapshots, R at or above which: fresh
REFERENCE_PARTICLES = 500  # particles per half in the reference couplings (d ≥ 2), at most
REFERENCE_SPLITS = 3  # random splits of each snapshot averaged in the reference
REFERENCE_SNAPSHOTS = 4  # snapshots whose halves give the reference, at most
RESOLVED_RATIO = 0.1  # R below which: the same particles, without the gap test
MISFIT_RATIO = 1.0  # R below which the growth of R with the gap is asked
LAG_GROWTH = 1.15  # R₂/R at or above which the pairs are the same particles'
PROBE_PAIRS = 5000  # pairs per snapshot pair the probe drift is fitted and scored on, at most


@dataclass(frozen=True)
class RegimeDecision:
    """The regime chosen (``"same"`` or ``"fresh"``), why, and the test's numbers."""

    regime: str
    reason: str
    statistics: dict = field(default_factory=dict)


def _size_factor(n: float, d: int) -> float:
    """``E W₂²`` between two independent samples of ``n`` points each, up to the law's
    constant: ``1/n`` on the line, ``log n / n`` in the plane, ``n^{−2/d}`` beyond."""
    if d == 1:
        return 1.0 / n
    if d == 2:
        return math.log(n) / n
    return n ** (-2.0 / d)


def independent_distance(pop: np.ndarray, sizes: tuple[int, int], rng) -> float:
    """``W₂²`` expected between independent samples of sizes ``sizes`` of ``pop``'s law,
    from disjoint random halves of ``pop`` (at most :data:`REFERENCE_PARTICLES` each off the
    line), averaged over :data:`REFERENCE_SPLITS` splits and scaled by :func:`_size_factor`."""
    d = pop.shape[1]
    half = len(pop) // 2 if d == 1 else min(len(pop) // 2, REFERENCE_PARTICLES)
    values = []
    for _ in range(REFERENCE_SPLITS):
        order = rng.permutation(len(pop))
        a, b = pop[order[:half]], pop[order[half : 2 * half]]
        dest, _ = couple(a, b, "exact")
        values.append(float(np.mean(np.sum((dest - a) ** 2, axis=1))))
    n_eff = 2.0 / (1.0 / sizes[0] + 1.0 / sizes[1])
    return float(np.mean(values)) * _size_factor(n_eff, d) / _size_factor(half, d)


def probe_subsample(pairs: Trajectories, sizes: list[int],
                    seed: int) -> tuple[Trajectories, list[int]]:  # fmt: skip
    """At most :data:`PROBE_PAIRS` pairs of each consecutive snapshot pair, drawn at random
    (all of them below that), and how many per snapshot pair.  The pairs come from couplings
    of the whole snapshots — subsampling the snapshots themselves would pair different
    particles and look like fresh samples —, only the probe's fit and residual are bounded:
    the regime is a property of the process, which a few thousand pairs tell, and the
    residual is a mean over pairs, unbiased on a random subset."""
    if max(sizes) <= PROBE_PAIRS:
        return pairs, list(sizes)
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = [start + np.sort(rng.choice(size, min(size, PROBE_PAIRS), replace=False))
            for start, size in zip(starts, sizes)]  # fmt: skip
    rows = np.concatenate(rows)
    return Trajectories(pairs.x[rows], t=pairs.t[rows]), [min(s, PROBE_PAIRS) for s in sizes]


def pairing_ratio(data: Snapshots, energy: str, seed: int = 0) -> dict:
    """``R = r/S`` (module docstring) with its parts: the probe's residual ``r`` and the
    independent-sample distance ``S``, pooled over the snapshot pairs, and whether the
    probe explains the pairs exactly (noise-free: the same particles)."""
    rng = np.random.default_rng(seed)
    pops = data.populations()
    spec = "poly:4" if energy == "auto" else energy
    family = parse_energy_spec(spec, data.dim)
    probe_spec = spec if family.is_linear else "poly:3"
    pairs, _ = paired_transitions(data, "auto")  # the fit's couplings (cached: no new work)
    pairs, sizes = probe_subsample(pairs, [len(p) for p in pops[:-1]], seed)
    probe = OneStepClosedForm(probe_spec, seed=seed).fit(pairs).model_
    x0, dx, h = pairs.increments()
    squared = np.sum((dx - h[:, None] * np.asarray(probe.force(x0))) ** 2, axis=1)
    ends = np.cumsum(sizes)
    residual = float(np.mean([part.mean() for part in np.split(squared, ends[:-1])]))
    chosen = np.unique(np.linspace(1, len(pops) - 1, REFERENCE_SNAPSHOTS).round().astype(int))
    reference = float(np.mean([
        independent_distance(pops[k], (len(pops[k - 1]), len(pops[k])), rng) for k in chosen
    ]))  # fmt: skip
    return {
        "ratio": residual / reference if reference > 0 else math.inf,
        "pairing_residual": residual,
        "independent_sample_distance": reference,
        "probe": probe_spec,
        "noise_free": bool(probe.diagnostics["noise_free"]),
        "probe_pairs": int(sum(sizes)),
    }


def decide_regime(data: Snapshots, energy: str = "auto", regime: str = "auto",
                  seed: int = 0) -> RegimeDecision:  # fmt: skip
    """:func:`regime_decision`, its reason saying when the probe was fitted on a random subset
    of the pairs (more than :data:`PROBE_PAIRS` particles per snapshot)."""
    decision = regime_decision(data, energy, regime, seed)
    probed = decision.statistics.get("probe_pairs")
    pairs = len(data.x) - len(data.populations()[-1])
    if probed is None or probed >= pairs:
        return decision
    return RegimeDecision(decision.regime, decision.reason + (
        f" (the probe drift fitted and scored on {probed} of the {pairs} transport pairs, "
        f"at most {PROBE_PAIRS} per snapshot pair drawn at random; the couplings are of the "
        "whole snapshots)"), decision.statistics)  # fmt: skip


def regime_decision(data: Snapshots, energy: str = "auto", regime: str = "auto",
                    seed: int = 0) -> RegimeDecision:  # fmt: skip
    """Same particles or fresh samples (module docstring): ``regime`` when it is ``"same"``
    or ``"fresh"``; else the hint the data carry (``data.same_particles``); else fresh when
    the snapshot sizes differ; else the transport test :func:`pairing_ratio`."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    if regime != "auto":
        return RegimeDecision(regime, f"regime {regime!r} was chosen by the caller")
    hint = getattr(data, "same_particles", None)
    if hint is not None:
        chosen = "same" if hint else "fresh"
        return RegimeDecision(chosen, f"the data say so (Snapshots(same_particles={hint}))")
    sizes = [len(p) for p in data.populations()]
    if len(set(sizes)) > 1:
        shown = ", ".join(map(str, sizes[:6])) + (", …" if len(sizes) > 6 else "")
        return RegimeDecision(
            "fresh",
            f"the snapshots hold different numbers of particles ({shown}), so they are not "
            "the same particles",
            {"sizes": sizes},
        )
    stats = pairing_ratio(data, energy, seed)
    if stats["noise_free"]:
        return RegimeDecision(
            "same",
            "transport pairs consecutive snapshots exactly (a noise-free step): the same particles",
            stats,
        )
    ratio = stats["ratio"]
    pops = data.populations()
    if ratio < RESOLVED_RATIO:
        return RegimeDecision(
            "same",
            f"transport resolves the particles: the pairs' residual after a {stats['probe']} "
            f"drift is {ratio:.2g} of the distance between independent samples of these sizes "
            f"(< {RESOLVED_RATIO}; independent samples gave 0.2 or more): the same particles",
            stats,
        )
    if ratio < MISFIT_RATIO and len(pops) >= 3:
        every_other = pops[::2]
        lagged = Snapshots(np.concatenate(every_other),
                           np.repeat(data.times[::2], [len(p) for p in every_other]))  # fmt: skip
        growth = pairing_ratio(lagged, energy, seed)["ratio"] / ratio
        stats["growth_with_gap"] = growth
        if growth >= LAG_GROWTH:
            return RegimeDecision(
                "same",
                f"the pairs' residual after a {stats['probe']} drift ({ratio:.2f} of the "
                f"distance between independent samples) grows {growth:.2f}× when the gap "
                f"doubles (≥ {LAG_GROWTH}; independent samples' differences do not grow with "
                "it): the same particles seen at each time",
                stats,
            )
    if ratio < FRESH_RATIO and "growth_with_gap" not in stats:
        return RegimeDecision(
            "same",
            f"transport resolves the particles: the pairs' residual after a {stats['probe']} "
            f"drift is {ratio:.2f} of the distance between independent samples of these sizes "
            f"(< {FRESH_RATIO}): the same particles seen at each time",
            stats,
        )
    if "growth_with_gap" in stats:
        why = (f"the pairs' residual after a {stats['probe']} drift ({ratio:.2f} of the distance "
               f"between independent samples of these sizes) does not grow when the gap doubles "
               f"({stats['growth_with_gap']:.2f}× < {LAG_GROWTH}), as independent samples' "
               "differences do not")  # fmt: skip
    else:
        bound = MISFIT_RATIO if ratio >= MISFIT_RATIO else FRESH_RATIO
        why = (f"transport pairs are as far apart as independent samples': their residual "
               f"after a {stats['probe']} drift is {ratio:.2f} of the distance between "
               f"independent samples of these sizes (≥ {bound})")  # fmt: skip
    return RegimeDecision(
        "fresh",
        why + ": fresh samples of the population (or the same particles with more noise per "
        "step than their spacing, which transport cannot follow either); fitted by the JKO "
        "condition with its entropy term. Pass regime='same' (`--regime same`) to pair them "
        "anyway",
        stats,
    )
