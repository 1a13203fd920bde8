"""Fits across several processes (hosts): each reads its share of the trajectories, the
closed-form statistics are added across processes, every process ends with the same model.

Run ``P`` copies of the same program; in each::

    iel.parallel.initialize()                      # or coordinator=…, num_processes=…, process_id=…
    share = iel.distributed.process_share(data)    # trajectories of this process
    model = iel.distributed.fit_across_processes(share, "poly:4")

The closed form needs only sums over transitions (``A = Σ h GᵀG``, ``b = −Σ GᵀΔx``, …), so
``Σ_processes`` of each process's sums is the one-process fit's statistics: the same
coefficients and temperature up to rounding.  The additive constant (``min E`` over the data),
the data range and the coding precision reduce by minima and maxima across processes; the
model's time step is process 0's median step.  See docs/guides/scale.md for clusters.
"""

from __future__ import annotations

import jax

from .data.trajectories import Trajectories
from .estimators.trajectories.closed_form import OneStepClosedForm
from .model import FittedModel
from .parallel.processes import process_sharded


def process_share(
    data: Trajectories, index: int | None = None, count: int | None = None
) -> Trajectories:
    """This process's share of ``data``: the contiguous block of trajectories
    ``[i·N/P, (i+1)·N/P)`` for process ``i`` of ``P`` (default: :func:`jax.process_index`,
    :func:`jax.process_count`).  Contiguous blocks keep a memory-mapped file's reads local."""
    if not isinstance(data, Trajectories):
        raise TypeError(
            f"a multi-process fit shares out trajectories; got {type(data).__name__} "
            "(snapshots, samples and end states are fitted by one process)"
        )
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"process index: expected 0 … {count - 1}, got {index}")
    n = data.n_trajectories
    if n < count:
        raise ValueError(f"{n} trajectories cannot be shared out among {count} processes")
    lo, hi = index * n // count, (index + 1) * n // count
    return Trajectories(
        data.x[lo:hi], t=data.t[lo:hi], mask=None if data.mask is None else data.mask[lo:hi]
    )


def fit_across_processes(
    share: Trajectories,
    energy: str = "poly:4",
    *,
    ridge: float = 0.0,
    seed: int = 0,
    temperature: float | None = None,
) -> FittedModel:
    """The closed-form one-step fit (:class:`OneStepClosedForm`) of all processes' trajectories,
    each process giving its ``share``; every process must call it (a collective) and gets the
    same model.  ``energy`` must be linear with features that do not depend on the data
    (``poly:K``, ``fourier:K``, ``quadratic``)."""
    with process_sharded():
        return (
            OneStepClosedForm(energy, ridge=ridge, seed=seed, temperature=temperature)
            .fit(share)
            .model_
        )
