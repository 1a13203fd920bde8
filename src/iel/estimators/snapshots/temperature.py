"""The temperature of snapshots of the same particles, calibrated for what the pairing undoes.

After the drift is fitted on paired steps, the residual of each pair holds the Brownian
increment and the force the family misses.  Two biases are corrected here: the misfit, by
reading the noise from neighbouring particles' residual differences
(:mod:`.noise_level`), and the pairing, by indirect inference — optimal transport re-pairs
particles whose noise crossed, so a pairing's residual is smaller than the noise that made it;
the same statistic is computed on noise simulated at a trial temperature and coupled back, and
the trial is scaled until both agree (:func:`calibrated_temperature`).
"""

from __future__ import annotations

import numpy as np

from ...data.populations import Snapshots
from ...model import FittedModel
from ...transport.couplings import couple
from ..trajectories.noise_level import neighbour_difference_variance


def drift_predicted(data: Snapshots, force) -> list[np.ndarray]:
    """``x + hF(x)`` for every snapshot but the last, ``h`` the time to the next one."""
    pops = data.populations()
    return [pops[k] + (data.times[k + 1] - data.times[k]) * np.asarray(force(pops[k]))
            for k in range(len(pops) - 1)]  # fmt: skip


def calibrated_temperature(data: Snapshots, model: FittedModel, coupling: str, seed: int,
                           iterations: int = 2, growth=None) -> tuple[float, float]:  # fmt: skip
    """``(T, T_residual)``: the noise temperature whose simulated pairing matches the observed
    one (indirect inference), from neighbour differences and from the whole residual.

    Each snapshot of the calibration pairs (:func:`calibration_pairs`) is moved by the
    fitted drift, ``p = x + hF̂(x)``, and coupled to the next; ``u = (x' − p)/√(2h)`` holds
    the noise (per coordinate variance ``T``) and the force the family misses.  ``T`` comes
    from the neighbour differences of ``u``
    (:func:`.noise_level.neighbour_difference_variance`), which cancel a smooth misfit;
    ``T_residual`` from ``mean |u|²``, which counts it as noise.  Both statistics shrink under
    the pairing (transport re-pairs particles whose noise crossed) and the first under its
    trimming, so a trial ``T`` is simulated — ``p + √(2Th) ξ`` coupled back to ``p`` — and
    ``T ← T · observed / simulated`` repeated; ``T_residual`` is the last simulation's ratio
    applied to the whole residual.  With an active ``growth``
    (:class:`iel.transport.unbalanced.Growth`) the observed pairs are coupled with it (the
    simulated noise moves the same particles: balanced)."""
    rng = np.random.default_rng(seed + 1)
    pops = data.populations()
    predictions = drift_predicted(data, model.force)
    gaps = np.diff(data.times)

    # the neighbour differences of at most NEIGHBOUR_QUERIES particles per snapshot, the same
    # ones observed and simulated (a k-d tree query is nearly O(n) per point in many dimensions)
    queries = {k: None if len(pops[k]) <= NEIGHBOUR_QUERIES else
               np.sort(rng.choice(len(pops[k]), NEIGHBOUR_QUERIES, replace=False))
               for k in range(len(predictions))}  # fmt: skip

    def statistics(pairs, destinations) -> tuple[float, float]:
        whole = differences = 0.0
        for k, dest in zip(pairs, destinations):
            u = (dest - predictions[k]) / np.sqrt(2 * gaps[k])
            whole += float(np.mean(u**2)) / len(pairs)
            differences += neighbour_difference_variance(pops[k], u, queries[k]) / len(pairs)
        return whole, differences

    # observed and simulated on the same pairs: the ratio compares like with like, and large
    # populations couple one pair instead of all (four fewer exact couplings of 5000 particles)
    chosen = calibration_pairs([len(p) for p in predictions], gaps)

    def observed_coupling(k):
        if growth is not None and growth.active:
            return growth.couple(k, predictions[k], pops[k + 1]).destinations
        return couple(predictions[k], pops[k + 1], coupling)[0]

    observed = statistics(chosen, [observed_coupling(k) for k in chosen])
    temperature = model.temperature
    for _ in range(iterations):
        noisy = [
            predictions[k]
            + np.sqrt(2 * temperature * gaps[k]) * rng.standard_normal(predictions[k].shape)
            for k in chosen
        ]
        simulated = statistics(chosen, [
            couple(predictions[k], y, coupling)[0] for k, y in zip(chosen, noisy)
        ])  # fmt: skip
        if not min(simulated) > 0:
            return model.temperature, model.temperature
        residual_temperature = temperature * observed[0] / simulated[0]
        temperature = temperature * observed[1] / simulated[1]
    return float(temperature), float(residual_temperature)


NEIGHBOUR_QUERIES = 5000  # particles per snapshot whose neighbour differences are averaged
CALIBRATION_PARTICLES = 5000  # simulated particles per calibration round, at least


def calibration_pairs(sizes: list[int], gaps: np.ndarray) -> list[int]:
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
