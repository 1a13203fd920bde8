"""Observations without identities: snapshots of a population, equilibrium samples, end states."""

from __future__ import annotations

import numpy as np

from .validation import DataError, as_float_array, check_finite, check_rank


def _states(x, name: str, min_rows: int) -> np.ndarray:
    x = as_float_array(x, name)
    check_rank(x, name, "(M, d)", x.ndim == 2)
    if x.shape[1] < 1:
        raise DataError(f"{name}: expected at least one coordinate, got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise DataError(f"{name}: expected at least {min_rows} states, got {x.shape[0]}")
    check_finite(x, name)
    return x


class Snapshots:
    """Unpaired populations: row ``i`` of ``x`` (shape ``(M, d)``) observed at time ``t[i]``.

    Rows sharing a time form one snapshot; at least two distinct times are needed, each with
    at least two states.  ``growth_rate`` (optional, shape ``(M,)``, finite): each row's log
    growth rate per unit time, birth minus death rate, so that a cell has ``exp(g Δt)``
    expected descendants after ``Δt`` (:func:`iel.data.growth_rate_from_scores` makes it from
    proliferation and apoptosis scores); snapshot fits then couple with that growth
    (``growth="given"``, :mod:`iel.transport.unbalanced`).

    ``same_particles`` is an optional hint: ``True`` when every snapshot holds the same
    particles (identities lost), ``False`` when each is a fresh sample of the population (cells
    destroyed when measured), ``None`` (default) when unknown — ``iel.fit`` then decides from
    the data (:mod:`iel.selection.snapshot_regime`).  Readers may set it; an explicit
    ``regime`` overrides it.
    """

    kind = "snapshots"

    def __init__(self, x, t, growth_rate=None, same_particles: bool | None = None):
        if same_particles not in (None, True, False):
            raise DataError(
                f"snapshots same_particles: expected True, False or None, got {same_particles!r}"
            )
        x = _states(x, "snapshots x", 2)
        t = as_float_array(t, "snapshots t")
        if t.shape != (x.shape[0],):
            raise DataError(
                f"snapshots t: expected one time per row, shape ({x.shape[0]},), got {t.shape}"
            )
        check_finite(t, "snapshots t")
        times, counts = np.unique(t, return_counts=True)
        if times.size < 2:
            raise DataError(
                f"snapshots: expected at least two distinct times, got only t = {times}; "
                "a single snapshot is equilibrium samples (kind 'samples')"
            )
        if counts.min() < 2:
            k = int(np.argmin(counts))
            raise DataError(
                f"snapshots: each time needs at least two states, t = {times[k]:g} has {counts[k]}"
            )
        self.x = x
        self.t = t
        self.times = times
        self.growth_rate = None if growth_rate is None else _growth_rate(growth_rate, len(x))
        self.same_particles = same_particles

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def populations(self) -> list[np.ndarray]:
        """The states at each distinct time, in time order."""
        return [self.x[self.t == s] for s in self.times]

    def growth_rates(self) -> list[np.ndarray] | None:
        """The growth rates of each snapshot's rows, in the order of :meth:`populations`."""
        if self.growth_rate is None:
            return None
        return [self.growth_rate[self.t == s] for s in self.times]

    def observed_states(self) -> np.ndarray:
        return self.x

    def __repr__(self) -> str:
        sizes = [int((self.t == s).sum()) for s in self.times]
        growth = ", with growth rates" if self.growth_rate is not None else ""
        return f"Snapshots(times={len(self.times)}, sizes={sizes}, d={self.dim}{growth})"


def _growth_rate(g, rows: int) -> np.ndarray:
    g = as_float_array(g, "snapshots growth_rate")
    if g.shape != (rows,):
        raise DataError(
            f"snapshots growth_rate: expected one log growth rate per row, shape ({rows},), "
            f"got {g.shape}"
        )
    check_finite(g, "snapshots growth_rate")
    return g


class _PointSet:
    """States without time or identity, ``x`` of shape ``(M, d)``."""

    x: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def observed_states(self) -> np.ndarray:
        return self.x


class Samples(_PointSet):
    """States drawn from an equilibrium law ``∝ exp(−E/T)``: ``x`` of shape ``(M, d)``."""

    kind = "samples"

    def __init__(self, x):
        self.x = _states(x, "samples x", 2)

    def __repr__(self) -> str:
        return f"Samples(M={self.x.shape[0]}, d={self.dim})"


class Endpoints(_PointSet):
    """States a minimising process settled into, ``x`` of shape ``(M, d)``, optionally with the
    starts ``z`` they came from (same shape)."""

    kind = "endpoints"

    def __init__(self, x, starts=None):
        self.x = _states(x, "endpoints x", 2)
        if starts is not None:
            starts = _states(starts, "endpoint starts", 2)
            if starts.shape != self.x.shape:
                raise DataError(
                    f"endpoint starts: expected shape {self.x.shape} (one start per end state), "
                    f"got {starts.shape}"
                )
        self.starts = starts

    def __repr__(self) -> str:
        extra = ", with starts" if self.starts is not None else ""
        return f"Endpoints(M={self.x.shape[0]}, d={self.dim}{extra})"
