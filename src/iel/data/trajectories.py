"""Paired observations: ``N`` trajectories of ``T`` states each, with their times."""

from __future__ import annotations

import numpy as np

from .validation import (
    DataError,
    as_float_array,
    check_finite,
    check_increasing,
    check_magnitude,
    check_rank,
)


class Trajectories:
    """States ``x`` of shape ``(N, T, *state_shape)`` observed at times ``t``.

    Args:
        x: states; for ordinary systems ``(N, T, d)``.  Entries where ``mask`` is false may be
            NaN (missing observations).
        dt: constant time step (a positive scalar), or
        t: times, shape ``(T,)`` shared by all trajectories or ``(N, T)`` per trajectory
            (strictly increasing over the observed entries).  Give exactly one of ``dt``, ``t``.
        mask: optional boolean ``(N, T)``: true where a state was observed (ragged lengths or
            missing observations).

    Times are physical: an estimator fitted on these data reports ``E`` in the units where
    ``dx/dt = −∇E``.
    """

    kind = "trajectories"

    def __init__(self, x, dt=None, t=None, mask=None):
        x = as_float_array(x, "trajectories x")
        check_rank(x, "trajectories x", "(N, T, d)", x.ndim >= 3)
        n, steps = x.shape[:2]
        if n < 1 or int(np.prod(x.shape[2:])) < 1:
            raise DataError(f"trajectories x: expected a non-empty (N, T, d) array, got {x.shape}")
        if steps < 2:
            raise DataError(
                f"trajectories x: expected at least two time points per trajectory, got T={steps}"
            )
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise DataError(f"mask: expected a boolean array, got dtype {mask.dtype}")
            if mask.shape != (n, steps):
                raise DataError(
                    f"mask: expected shape (N, T) = ({n}, {steps}) to match x, got {mask.shape}"
                )
        observed = np.ones((n, steps), dtype=bool) if mask is None else mask
        if (dt is None) == (t is None):
            raise DataError("trajectories: give exactly one of dt (a time step) or t (times)")
        if dt is not None:
            dt_arr = as_float_array(dt, "dt")
            if dt_arr.ndim != 0 or not np.isfinite(dt_arr) or dt_arr <= 0:
                raise DataError(f"dt: expected one positive finite number, got {dt!r}")
            with np.errstate(over="ignore"):
                check_magnitude(dt_arr * (steps - 1), "dt × (T − 1), the last time")
            times = np.broadcast_to(np.arange(steps) * float(dt_arr), (n, steps)).copy()
        else:
            times = as_float_array(t, "t")
            if times.shape == (steps,):
                check_increasing(times, "t")
                times = np.broadcast_to(times, (n, steps)).copy()
            elif times.shape != (n, steps):
                raise DataError(
                    f"t: expected shape (T,) = ({steps},) or (N, T) = ({n}, {steps}), "
                    f"got {times.shape}"
                )
            else:
                check_increasing(times, "t", observed)
            check_magnitude(times, "t", observed)
        check_finite(x, "trajectories x", where=observed)
        self.x = x
        self.t = times
        self.mask = mask
        if self.n_transitions < 1:
            raise DataError(
                "trajectories: no trajectory has two consecutive observed states; "
                "at least one transition is needed"
            )

    @property
    def n_trajectories(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.x.shape[1])

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    @property
    def dim(self) -> int:
        return int(np.prod(self.state_shape))

    @property
    def observed(self) -> np.ndarray:
        """Boolean ``(N, T)``: where states were observed."""
        if self.mask is None:
            return np.ones(self.x.shape[:2], dtype=bool)
        return self.mask

    @property
    def n_transitions(self) -> int:
        return int(self._pair_index()[0].size)

    def _pair_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices (trajectory, from, to) of consecutive observed states."""
        obs = self.observed
        rows, starts, ends = [], [], []
        for i in range(obs.shape[0]):
            idx = np.flatnonzero(obs[i])
            rows.append(np.full(idx.size - 1 if idx.size else 0, i))
            starts.append(idx[:-1])
            ends.append(idx[1:])
        cat = np.concatenate
        return cat(rows).astype(int), cat(starts).astype(int), cat(ends).astype(int)

    def time_steps(self) -> np.ndarray:
        """``Δt`` of every transition, in the order of :meth:`transitions` (no state copied)."""
        if self.mask is None:
            return np.diff(self.t, axis=1).reshape(-1)
        r, a, b = self._pair_index()
        return self.t[r, b] - self.t[r, a]

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Consecutive observed pairs: ``(x_from, x_to, Δt)`` with shapes ``(K, *s), (K, *s),
        (K,)``.  A missing observation joins its neighbours across the gap."""
        if self.mask is None:
            x0 = self.x[:, :-1].reshape((-1, *self.state_shape))
            x1 = self.x[:, 1:].reshape((-1, *self.state_shape))
            return x0, x1, self.time_steps()
        r, a, b = self._pair_index()
        return self.x[r, a], self.x[r, b], self.t[r, b] - self.t[r, a]

    def increments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`transitions` but returns ``(x_from, x_to − x_from, Δt)`` (one copy less)."""
        if self.mask is None:
            x0 = self.x[:, :-1].reshape((-1, *self.state_shape))
            dx = np.diff(self.x, axis=1).reshape((-1, *self.state_shape))
            return x0, dx, self.time_steps()
        x0, x1, h = self.transitions()
        return x0, x1 - x0, h

    def distinct(self) -> tuple[Trajectories, int]:
        """The trajectories with exact copies removed, and how many copies were removed.

        Noise-free runs from the same start are bit-identical; each copy repeats the same
        transitions and adds no information about ``E``, so a description length that counted
        them would take ``N`` copies of ``K`` steps for ``N·K`` observations.  A trajectory is
        a copy when its states, times and mask equal an earlier one's exactly."""
        obs = self.observed
        keys = np.concatenate(
            [np.where(obs[..., None], self.x.reshape(*obs.shape, -1), 0.0).reshape(len(obs), -1),
             self.t, obs.astype(float)], axis=1,
        )  # fmt: skip
        _, first = np.unique(keys, axis=0, return_index=True)
        copies = self.n_trajectories - first.size
        if copies == 0:
            return self, 0
        keep = np.sort(first)
        mask = None if self.mask is None else self.mask[keep]
        return Trajectories(self.x[keep], t=self.t[keep], mask=mask), copies

    def observed_states(self) -> np.ndarray:
        """All observed states, shape ``(M, *state_shape)``."""
        if self.mask is None:
            return self.x.reshape((-1, *self.state_shape))
        return self.x[self.mask]

    def __repr__(self) -> str:
        dts = self.time_steps()
        return (
            f"Trajectories(N={self.n_trajectories}, T={self.n_times}, "
            f"state_shape={self.state_shape}, Δt∈[{dts.min():.3g}, {dts.max():.3g}], "
            f"observed={self.observed.mean():.0%})"
        )
