"""Trajectories too large for memory: a file read in chunks of bounded size.

A :class:`TrajectoryStore` holds the same data as :class:`~.trajectories.Trajectories` —
states ``x`` ``(N, T, d)``, a time step ``dt`` or times ``t`` (``(T,)`` or ``(N, T)``), an
optional boolean ``mask`` ``(N, T)`` — but keeps them on disk: ``.npy`` files and uncompressed
``.npz`` members are memory-mapped (``np.load(mmap_mode="r")``; an ``.npz`` member is mapped
at its offset inside the zip archive), ``.zarr`` stores are read through ``zarr`` (an optional
dependency).  Nothing is read until :meth:`TrajectoryStore.chunks` is iterated.

Transitions are the consecutive observed pairs of :meth:`Trajectories.transitions`, in the same
order (trajectory by trajectory, time by time; a missing observation joins its neighbours), cut
into chunks of at most ``chunk_transitions``:

* when a trajectory has at most ``chunk_transitions`` steps, a chunk is
  ``⌊chunk_transitions / (T − 1)⌋`` whole trajectories;
* otherwise each trajectory is cut into windows of ``chunk_transitions`` steps: window ``w``
  holds the transitions that *end* at time indices ``w·W + 1 … (w + 1)·W``; the state a
  window's first transition starts from is read from before the window (the last observed
  one), so no transition is lost or counted twice.

Every chunk reads at most ``chunk_transitions + rows`` states of the file (a bound by
construction, see :meth:`TrajectoryStore.chunk_read_bound`), and is validated as it is read:
a NaN or inf in an observed state, or times that do not increase, raise a
:class:`~.validation.DataError` naming the chunk, the trajectory and the time index.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .trajectories import Trajectories
from .validation import LARGEST_MAGNITUDE, DataError

CHUNK_TRANSITIONS = 40_960  # ten of the normal equations' 4096-row blocks
STREAM_SUFFIXES = (".npy", ".npz", ".zarr")
STREAM_ABOVE_BYTES = 2**31  # `iel fit` streams trajectories whose states take more (as float64)


@dataclass(frozen=True)
class TransitionChunk:
    """One chunk of transitions ``x0 → x0 + dx`` taking ``h``, with where it came from.

    ``low``/``high``: per-coordinate range of the observed states the chunk read (including
    states that start or end no transition)."""

    index: int
    x0: np.ndarray  # (K, d)
    dx: np.ndarray  # (K, d)
    h: np.ndarray  # (K,)
    rows: tuple[int, int]  # trajectories [first, last)
    times: tuple[int, int]  # time indices [first, last] read
    low: np.ndarray
    high: np.ndarray

    @property
    def n_transitions(self) -> int:
        return int(self.h.shape[0])


def _real_dtype(dtype, name: str, where: str) -> None:
    if dtype == np.dtype(bool) or not (
        np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
    ):
        raise DataError(f"{where}: {name}: expected real numbers, got an array of dtype {dtype}")


class TrajectoryStore:
    """Trajectories read from disk in chunks (module docstring).

    Args:
        x: an array-like of shape ``(N, T, d)`` (a ``np.memmap``, a ``zarr`` array, any object
            with ``shape``, ``dtype`` and NumPy slicing); read only in slices.
        dt / t / mask: as :class:`~.trajectories.Trajectories`; ``t`` of shape ``(N, T)`` and
            ``mask`` may be array-likes too (read in the same slices as ``x``).
        chunk_transitions: the most transitions one chunk holds.
        source: a name for messages (the file).
    """

    kind = "trajectories"

    def __init__(
        self,
        x,
        dt=None,
        t=None,
        mask=None,
        *,
        chunk_transitions: int = CHUNK_TRANSITIONS,
        source: str = "trajectories",
    ):
        self.source = source
        shape = tuple(int(s) for s in getattr(x, "shape", ()))
        if len(shape) != 3:
            hint = (
                " (one trajectory of shape (T, d): save x[None], shape (1, T, d))"
                if len(shape) == 2
                else ""
            )
            raise DataError(f"{source}: x: expected shape (N, T, d), got shape {shape}{hint}")
        _real_dtype(np.dtype(x.dtype), "x", source)
        n, steps, d = shape
        if n < 1 or d < 1:
            raise DataError(f"{source}: x: expected a non-empty (N, T, d) array, got {shape}")
        if steps < 2:
            raise DataError(
                f"{source}: x: expected at least two time points per trajectory, got T={steps}"
            )
        if int(chunk_transitions) < 1:
            raise DataError(
                f"chunk_transitions: expected a positive integer, got {chunk_transitions}"
            )
        if (dt is None) == (t is None):
            raise DataError(f"{source}: give exactly one of dt (a time step) or t (times)")
        if dt is not None:
            dt_arr = np.asarray(dt)
            _real_dtype(dt_arr.dtype, "dt", source)
            if dt_arr.ndim != 0 or not np.isfinite(dt_arr) or dt_arr <= 0:
                raise DataError(f"{source}: dt: expected one positive finite number, got {dt!r}")
            if float(dt_arr) * (steps - 1) > LARGEST_MAGNITUDE:
                raise DataError(
                    f"{source}: dt × (T − 1), the last time, exceeds "
                    f"{LARGEST_MAGNITUDE:.0e}; rescale the times"
                )
            dt = float(dt_arr)
        else:
            t_shape = tuple(int(s) for s in getattr(t, "shape", np.shape(t)))
            if t_shape not in ((steps,), (n, steps)):
                raise DataError(
                    f"{source}: t: expected shape (T,) = ({steps},) or (N, T) = "
                    f"({n}, {steps}), got {t_shape}"
                )
            _real_dtype(
                np.dtype(t.dtype) if hasattr(t, "dtype") else np.asarray(t).dtype, "t", source
            )
            if t_shape == (steps,):  # small: held in memory and checked now
                t = np.asarray(t, dtype=np.float64)
                bad = ~np.isfinite(t) | (np.abs(t) > LARGEST_MAGNITUDE)
                if bad.any() or not np.all(np.diff(t) > 0):
                    raise DataError(
                        f"{source}: t: expected finite, strictly increasing times, got {t[:6]}…"
                    )
        if mask is not None:
            m_shape = tuple(int(s) for s in mask.shape)
            if np.dtype(mask.dtype) != bool:
                raise DataError(f"{source}: mask: expected a boolean array, got dtype {mask.dtype}")
            if m_shape != (n, steps):
                raise DataError(
                    f"{source}: mask: expected shape (N, T) = ({n}, {steps}) to "
                    f"match x, got {m_shape}"
                )
        self.x, self.dt, self.t, self.mask = x, dt, t, mask
        self.chunk_transitions = int(chunk_transitions)
        self._counts: tuple[int, int] | None = None

    # ----------------------------------------------------------------- shape and counts
    @property
    def n_trajectories(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.x.shape[1])

    @property
    def dim(self) -> int:
        return int(self.x.shape[2])

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def _count(self) -> tuple[int, int]:
        """``(transitions, observed states)``; with a mask, one pass over it in row blocks."""
        if self._counts is None:
            n, steps = self.n_trajectories, self.n_times
            if self.mask is None:
                self._counts = (n * (steps - 1), n * steps)
            else:
                rows = max(1, (1 << 24) // steps)
                pairs = states = 0
                for lo in range(0, n, rows):
                    per_row = np.asarray(self.mask[lo : lo + rows]).sum(axis=1)
                    pairs += int(np.maximum(per_row - 1, 0).sum())
                    states += int(per_row.sum())
                self._counts = (pairs, states)
            if self._counts[0] < 1:
                raise DataError(
                    f"{self.source}: no trajectory has two consecutive observed "
                    "states; at least one transition is needed"
                )
        return self._counts

    @property
    def n_transitions(self) -> int:
        return self._count()[0]

    @property
    def n_observed_states(self) -> int:
        return self._count()[1]

    @property
    def nbytes(self) -> int:
        """Bytes of the states as float64 (what holding them in memory would take)."""
        return self.n_trajectories * self.n_times * self.dim * 8

    # ----------------------------------------------------------------- chunk plan
    def _plan(self, size: int) -> tuple[int, int]:
        """``(rows per chunk, windows per row)``: one of the two is 1 (module docstring)."""
        steps = self.n_times - 1
        if steps <= size:
            return size // steps, 1
        return 1, -(-steps // size)

    def n_chunks(self, chunk_transitions: int | None = None) -> int:
        size = chunk_transitions or self.chunk_transitions
        rows, windows = self._plan(size)
        return -(-self.n_trajectories // rows) * windows

    def chunk_read_bound(self, chunk_transitions: int | None = None) -> int:
        """The most states (rows × times) one chunk reads from the file: ``rows·T`` for
        whole trajectories (``≤ chunk_transitions + rows``), ``W + 2`` for a window (its
        ``W + 1`` states and the observed state before it)."""
        size = chunk_transitions or self.chunk_transitions
        rows, windows = self._plan(size)
        return rows * self.n_times if windows == 1 else size + 2

    def chunks(
        self, chunk_transitions: int | None = None, indices=None
    ) -> Iterator[TransitionChunk]:
        """The transitions in chunks of at most ``chunk_transitions`` (default: the store's),
        each validated as it is read; ``indices``: only these chunks (sorted)."""
        size = int(chunk_transitions or self.chunk_transitions)
        count = self.n_chunks(size)
        for k in range(count) if indices is None else indices:
            yield self._chunk(int(k), size)

    def _times(self, rows: slice, cols: slice) -> np.ndarray:
        """Times of ``x[rows, cols]``, shape ``(R, C)``."""
        n_rows = len(range(*rows.indices(self.n_trajectories)))
        if self.dt is not None:
            grid = np.arange(*cols.indices(self.n_times)) * self.dt
            return np.broadcast_to(grid, (n_rows, grid.size))
        if self.t.ndim == 1:
            grid = self.t[cols]
            return np.broadcast_to(grid, (n_rows, grid.size))
        return np.asarray(self.t[rows, cols], dtype=np.float64)

    def _chunk(self, k: int, size: int) -> TransitionChunk:
        rows_per, windows = self._plan(size)
        if windows == 1:
            lo, hi = k * rows_per, min(self.n_trajectories, (k + 1) * rows_per)
            a, b = 0, self.n_times - 1
        else:
            lo = k // windows
            hi = lo + 1
            w = k % windows
            a, b = w * size, min(self.n_times - 1, (w + 1) * size)
        rows, cols = slice(lo, hi), slice(a, b + 1)
        x = np.asarray(self.x[rows, cols], dtype=np.float64)  # (R, C, d): the chunk's read
        times = self._times(rows, cols)
        obs = (
            np.ones(x.shape[:2], dtype=bool)
            if self.mask is None
            else np.asarray(self.mask[rows, cols], dtype=bool)
        )
        self._check(k, x, times, obs, lo, a)
        if self.mask is None:  # every state observed: neighbours pair up (views, one diff)
            x0 = x[:, :-1].reshape(-1, self.dim)
            dx = np.diff(x, axis=1).reshape(-1, self.dim)
            h = np.diff(times, axis=1).reshape(-1)
            cols = x.shape[1] - 1
            self._check_steps(k, h, lambda i: (lo + i // cols, a + 1 + i % cols))
            low, high = x.min(axis=(0, 1)), x.max(axis=(0, 1))
            return TransitionChunk(k, x0, dx, h, (lo, hi), (a, b), low, high)
        # consecutive observed entries in row-major order, paired within a row
        flat_r, flat_c = np.nonzero(obs)
        same = flat_r[1:] == flat_r[:-1]
        start_r, start_c = flat_r[:-1][same], flat_c[:-1][same]
        end_r, end_c = flat_r[1:][same], flat_c[1:][same]
        x0, x1 = x[start_r, start_c], x[end_r, end_c]
        h = times[end_r, end_c] - times[start_r, start_c]
        first_c = int(flat_c[0]) if flat_c.size else 0
        j = self._observed_before(lo, a) if windows > 1 and a > 0 and first_c > 0 else None
        if j is not None:
            # the window's first observed state continues from the last observed one before
            # the window (when the window's own first state is observed, the pair ending
            # there belongs to the previous window)
            prev = np.asarray(self.x[lo, j], dtype=np.float64)[None, None]
            t_prev = self._times(rows, slice(j, j + 1))[:1, :1]
            self._check(k, prev, t_prev, np.ones((1, 1), bool), lo, j)
            x0 = np.concatenate([prev[0], x0])
            x1 = np.concatenate([x[0, first_c][None], x1])
            h = np.concatenate([times[0, first_c] - t_prev[0], h])
            end_r = np.concatenate([[0], end_r])
            end_c = np.concatenate([[first_c], end_c])
        self._check_steps(k, h, lambda i: (lo + int(end_r[i]), a + int(end_c[i])))
        states = x[obs]
        low = states.min(axis=0) if states.size else np.full(self.dim, np.inf)
        high = states.max(axis=0) if states.size else np.full(self.dim, -np.inf)
        return TransitionChunk(
            k, x0, x1 - x0, np.asarray(h, dtype=np.float64), (lo, hi), (a, b), low, high
        )

    def _observed_before(self, row: int, a: int) -> int | None:
        """The last observed time index ``< a`` of trajectory ``row`` (``None``: none)."""
        if self.mask is None:
            return a - 1
        step = 1 << 16
        hi = a
        while hi > 0:
            lo = max(0, hi - step)
            seen = np.flatnonzero(np.asarray(self.mask[row, lo:hi]))
            if seen.size:
                return lo + int(seen[-1])
            hi = lo
        return None

    def _check_steps(self, k: int, h: np.ndarray, where) -> None:
        """Times increase along each trajectory: every step ``h > 0`` (``where(i)``: the
        trajectory and time index where step ``i`` ends)."""
        if not h.size or np.min(h) > 0:
            return
        i = int(np.flatnonzero(~(h > 0))[0])
        row, col = where(i)
        raise DataError(
            f"{self.source}: chunk {k}: trajectory {row}, time index {col}: times must increase "
            f"along each trajectory (over its observed states), found a step of {h[i]:.3g}"
        )

    def _check(self, k: int, x, times, obs, row0: int, col0: int) -> None:
        observed = obs[..., None]
        with np.errstate(invalid="ignore"):
            top = np.max(np.abs(x if obs.all() else np.where(observed, x, 0.0)), initial=0.0)
        if top <= LARGEST_MAGNITUDE:  # false for NaN: the detailed search below
            bad = np.zeros(obs.shape, bool)
        else:
            with np.errstate(invalid="ignore"):
                big = np.abs(np.nan_to_num(x, posinf=np.inf, neginf=np.inf)) > LARGEST_MAGNITUDE
            bad = ~np.isfinite(x).all(axis=-1) | big.any(axis=-1)
        bad &= obs
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            value = x[r, c][~np.isfinite(x[r, c]) | (np.abs(x[r, c]) > LARGEST_MAGNITUDE)][0]
            raise DataError(
                f"{self.source}: chunk {k}: trajectory {row0 + r}, time index {col0 + c} has "
                f"x = {value} ({int(bad.sum())} such states in this chunk); expected finite "
                f"values of magnitude at most {LARGEST_MAGNITUDE:.0e}: remove them or mark them "
                "missing with a mask"
            )
        if self.t is not None and self.t.ndim == 2:
            bad_t = ~np.isfinite(times) & obs
            if bad_t.any():
                r, c = (int(v) for v in np.argwhere(bad_t)[0])
                raise DataError(
                    f"{self.source}: chunk {k}: trajectory {row0 + r}, time index "
                    f"{col0 + c} has t = {times[r, c]}; expected finite times"
                )

    # ----------------------------------------------------------------- bounded samples
    def sample_states(self, max_states: int, seed: int = 0) -> np.ndarray:
        """Observed states, at most ``max_states``: all of them, in the order of
        :meth:`Trajectories.observed_states`, when there are that few; otherwise a uniform
        random sample (without replacement) of the ``(trajectory, time)`` entries, observed
        ones kept."""
        if self.n_observed_states <= max_states:
            parts, rows = [], max(1, max_states // self.n_times)
            for lo in range(0, self.n_trajectories, rows):
                x = np.asarray(self.x[lo : lo + rows], dtype=np.float64)
                parts.append(
                    x.reshape(-1, self.dim)
                    if self.mask is None
                    else x[np.asarray(self.mask[lo : lo + rows], dtype=bool)]
                )
            return np.concatenate(parts)
        total = self.n_trajectories * self.n_times
        rng = np.random.default_rng(seed)
        flat = np.sort(rng.choice(total, size=min(total, max_states), replace=False))
        r, c = np.divmod(flat, self.n_times)
        x = self._take(self.x, r, c).astype(np.float64)
        if self.mask is not None:
            x = x[self._take(self.mask, r, c).astype(bool)]
        x = x[np.isfinite(x).all(axis=1)]  # checked where it matters: in the chunks
        return x

    @staticmethod
    def _take(arr, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        if not hasattr(arr, "vindex"):  # arrays, mapped files: NumPy's fancy indexing, in
            # batches (a mapped file's touched pages stay resident only during one batch)
            parts = [np.asarray(arr[r[i : i + 256], c[i : i + 256]])
                     for i in range(0, len(r), 256)]  # fmt: skip
            return np.concatenate(parts) if parts else np.asarray(arr[r, c])
        if len(arr.shape) == 2:  # zarr: coordinate selection (every axis indexed)
            return np.asarray(arr.vindex[r, c])
        axis = np.arange(arr.shape[2])[None, :]
        return np.asarray(arr.vindex[r[:, None], c[:, None], axis])

    def sample_transitions(self, max_transitions: int, seed: int = 0):
        """``(x0, dx, h)`` of at most ``max_transitions`` transitions: all of them (in order)
        when there are that few; otherwise those of randomly chosen small chunks (1024
        transitions each, spread over the file)."""
        if self.n_transitions <= max_transitions:
            picked = list(self.chunks())
        else:
            size = 1024
            count = self.n_chunks(size)
            take = min(count, max(1, max_transitions // size))
            which = np.sort(np.random.default_rng(seed).choice(count, take, replace=False))
            picked = list(self.chunks(size, which))
        cat = np.concatenate
        return (
            cat([p.x0 for p in picked])[:max_transitions],
            cat([p.dx for p in picked])[:max_transitions],
            cat([p.h for p in picked])[:max_transitions],
        )

    def typical_step(self) -> float:
        """The median time between consecutive observations (``dt`` when given; else from
        at most 100 000 transitions)."""
        if self.dt is not None and self.mask is None:
            return self.dt
        return float(np.median(self.sample_transitions(100_000)[2]))

    def subset(self, rows) -> Trajectories:
        """Trajectories ``rows`` read into memory (validated as :class:`Trajectories`)."""
        rows = np.asarray(rows, dtype=int)
        x = _rows(self.x, rows)
        mask = None if self.mask is None else _rows(self.mask, rows)
        if self.dt is not None:
            return Trajectories(x, dt=self.dt, mask=mask)
        t = self.t if self.t.ndim == 1 else _rows(self.t, rows)
        return Trajectories(x, t=t, mask=mask)

    def to_trajectories(self) -> Trajectories:
        """Everything in memory (for data that fit)."""
        return self.subset(np.arange(self.n_trajectories))

    @classmethod
    def from_trajectories(cls, data: Trajectories, **options) -> TrajectoryStore:
        """A store over trajectories already in memory (the chunked path on the same data)."""
        if len(data.state_shape) != 1:
            raise DataError(f"streaming needs vector states (N, T, d), got {data.state_shape}")
        return cls(data.x, t=data.t, mask=data.mask, **options)

    def __repr__(self) -> str:
        step = f"dt={self.dt:.3g}" if self.dt is not None else f"t{tuple(self.t.shape)}"
        return (
            f"TrajectoryStore(N={self.n_trajectories}, T={self.n_times}, d={self.dim}, "
            f"{step}, masked={self.mask is not None}, {self.nbytes / 2**30:.3g} GiB as "
            f"float64, chunks of ≤ {self.chunk_transitions}, from {self.source})"
        )


def _rows(arr, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]`` read into memory (zarr: an orthogonal selection)."""
    if hasattr(arr, "get_orthogonal_selection"):
        return np.asarray(arr.get_orthogonal_selection((rows,) + (slice(None),) * (arr.ndim - 1)))
    return np.asarray(arr[rows])


class MappedArray:
    """An array in a file (``.npy``, or an uncompressed ``.npz`` member ``offset`` bytes in),
    memory-mapped afresh for each read and unmapped after it.

    ``np.load(mmap_mode="r")`` maps the file once, and every page a pass touches then stays in
    the process's resident set (reclaimable page cache, but counted as its memory) until the
    map is closed: a pass over a 10 GB file would show 10 GB resident.  Mapping per read keeps
    what a chunk touches resident only while it is read, so the resident memory of a pass is
    that of one chunk; the pages stay in the kernel's cache for the next pass."""

    def __init__(self, path, dtype, shape, offset: int = 0, fortran: bool = False):
        self.path, self.offset, self.fortran = str(path), int(offset), bool(fortran)
        self.dtype, self.shape = np.dtype(dtype), tuple(int(s) for s in shape)
        self.ndim = len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                           shape=self.shape, order="F" if self.fortran else "C")  # fmt: skip
        out = np.array(mapped[index])  # a copy: the map is closed when ``mapped`` goes
        del mapped
        return out

    def __repr__(self) -> str:
        return f"MappedArray({self.path!r}, {self.dtype}, {self.shape}, offset={self.offset})"


def _npy_at(path: Path, raw, start: int, name: str):
    """The array whose ``.npy`` bytes start at ``start`` of the open file ``raw``: small ones
    (scalars, empty) read, others as a :class:`MappedArray`."""
    raw.seek(start)
    try:
        version = np.lib.format.read_magic(raw)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)  # fmt: skip
        shape, fortran, dtype = read_header(raw)
    except ValueError as err:
        raise DataError(f"{path}: '{name}' is not a .npy array ({err})") from err
    if dtype.hasobject:
        raise DataError(f"{path}: '{name}' holds Python objects (pickle); expected numbers")
    offset = raw.tell()
    count = int(np.prod(shape))
    if count <= 1:
        return np.frombuffer(raw.read(dtype.itemsize * count), dtype).reshape(shape)
    return MappedArray(path, dtype, shape, offset, fortran)


# --------------------------------------------------------------------- opening files
def open_trajectories(
    path: str | Path,
    *,
    dt: float | None = None,
    t=None,
    mask=None,
    chunk_transitions: int = CHUNK_TRANSITIONS,
) -> TrajectoryStore:
    """Open ``.npy`` (``x`` alone: give ``dt`` or ``t``), ``.npz`` (``x`` and ``dt``/``t``,
    optional ``mask``, as :func:`~.io.load_data` reads; members stored uncompressed, as
    ``np.savez`` writes them) or ``.zarr`` (an array, or a group with those keys; needs
    ``pip install zarr``) as a :class:`TrajectoryStore` without reading the states.

    ``dt``/``t``/``mask`` given here override (or supply) those of the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as raw:
            arrays = {"x": _npy_at(path, raw, 0, "x")}
    elif suffix == ".npz":
        arrays = _map_npz(path)
    elif suffix == ".zarr":
        arrays = _open_zarr(path)
    else:
        raise DataError(
            f"{path}: streamed trajectories are read from .npy, .npz or .zarr; "
            f"got '{suffix or 'no suffix'}'"
        )
    if "x" not in arrays:
        raise DataError(f"{path}: expected an array named 'x', found {sorted(arrays) or 'none'}")
    kind = arrays.pop("kind", None)
    if kind is not None and str(np.asarray(kind)) != "trajectories":
        raise DataError(f"{path}: holds {np.asarray(kind)}, not trajectories")
    given = {"dt": dt, "t": t, "mask": mask}
    for name, value in given.items():
        if value is not None:
            arrays[name] = value
    if dt is not None:
        arrays.pop("t", None)
    elif t is not None:
        arrays.pop("dt", None)
    if "dt" not in arrays and "t" not in arrays:
        raise DataError(
            f"{path}: trajectories need a time step or times: pass dt (iel fit "
            f"--dt 0.01) or store 't' / 'dt' beside 'x' in a .npz"
        )
    step = arrays.get("dt")
    if step is not None:
        step = np.asarray(step)[()]
    return TrajectoryStore(
        arrays["x"],
        dt=step,
        t=arrays.get("t"),
        mask=arrays.get("mask"),
        chunk_transitions=chunk_transitions,
        source=str(path),
    )


def _map_npz(path: Path) -> dict:
    """Every member of an ``.npz`` memory-mapped at its offset in the archive (numpy maps only
    ``.npy`` files; an uncompressed zip member is one, ``offset`` bytes in)."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (it is not a zip archive)")
    out = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                raise DataError(
                    f"{path}: member '{name}' is compressed (np.savez_compressed); compressed "
                    "members cannot be memory-mapped. Re-save uncompressed "
                    "(np.savez(path, x=x, dt=dt)) or save x alone as .npy, or read it into "
                    "memory without streaming (iel fit --no-stream)"
                )
            raw.seek(info.header_offset)
            header = raw.read(30)
            if header[:4] != b"PK\x03\x04":
                raise DataError(f"{path}: member '{name}' has no local zip header")
            name_len = int.from_bytes(header[26:28], "little")
            extra_len = int.from_bytes(header[28:30], "little")
            out[name] = _npy_at(path, raw, info.header_offset + 30 + name_len + extra_len, name)
    return out


def _open_zarr(path: Path) -> dict:
    try:
        import zarr  # optional: only .zarr stores need it
    except ImportError as err:
        raise ImportError(
            f"{path}: reading .zarr stores needs the optional dependency 'zarr': pip install zarr"
        ) from err
    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        return {"x": node}
    out = {}
    for key in ("x", "dt", "t", "mask", "kind"):
        if key in node:
            value = node[key]
            out[key] = value[()] if len(value.shape) == 0 else value
    return out
