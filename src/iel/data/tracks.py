"""Particle-tracking tables (trackpy, TrackMate, or named columns) read as trajectories.

One row per observed spot: the track it belongs to, its frame (or time) and its coordinates.
Read with the standard ``csv`` module (no pandas); columns other than the ones used are never
parsed, so text columns (TrackMate's ``LABEL``) and extra measurements are harmless.

**Columns.**  The first of these that the header holds is used; ``id_col``, ``time_col`` and
``coords`` name columns yourself and replace the recognised ones:

* TrackMate spot tables: ``TRACK_ID``, ``FRAME``, ``POSITION_X``, ``POSITION_Y`` and
  ``POSITION_Z`` (left out when it is the same in every row, as in 2-D movies), with
  ``POSITION_T`` (physical time).  The three description rows TrackMate 7 writes under the
  header (long names, short names, units) are skipped; spots in no track (empty or ``None``
  ``TRACK_ID``) are dropped and counted.
* trackpy: ``particle``, ``frame``, ``x``, ``y`` and ``z`` when present; an unnamed index
  column (pandas ``to_csv``) is ignored, and so is a second copy of a column with the same
  values (``frame`` as both index and column).
* iel's own ``id``, ``t`` and every other column as a coordinate (read here only when one of
  the options is given; :func:`~iel.data.load_data` reads them as before otherwise).

**Times.**  A *frame* column (trackpy's ``frame``, TrackMate's ``FRAME``, or ``time_col``
when ``frame_interval`` is given) holds whole frame numbers ``f``; the frame interval ``Δ``
(time per frame) makes them times ``t = f·Δ``.

* ``Δ = frame_interval`` when it is given.  A TrackMate ``POSITION_T`` that implies another
  interval is then overruled, and the summary says so.
* Otherwise TrackMate's ``POSITION_T`` (already physical): in each track it must be
  ``POSITION_T = t₀ + f·Δ`` for one ``Δ`` (to a thousandth of a frame), or reading stops.
  Tracks whose ``Δ`` differ keep their own (the summary says so; one-step fits use each
  transition's ``Δt``, a rollout refuses unequal steps).
* Otherwise ``Δ = 1``: times are in frames, and the summary says to give the interval.

A ``time_col`` without ``frame_interval`` holds physical times: when every step within a
track is a whole multiple of the smallest one, ``Δ`` is that step and the rows are placed on
its grid as frames are; otherwise they are kept as given (each transition's ``Δt`` is still
its time difference).

**Gaps.**  Each track is placed on its own regular grid, from its first to its last frame:
a frame in which the particle was not found is a masked entry of
:class:`~iel.data.Trajectories`, never closed up.  Observed states on both sides of a gap of
``k`` frames form one transition with ``Δt = k·Δ`` (what every one-step estimator uses); a
rollout integrates through the gap.  Tracks with fewer than two observed states carry no
transition and are dropped (counted in the summary).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .trajectories import Trajectories
from .validation import DataError

TRACKMATE = {"id": "TRACK_ID", "time": "FRAME", "coords": ("POSITION_X", "POSITION_Y",
             "POSITION_Z"), "physical": "POSITION_T"}  # fmt: skip
TRACKPY = {"id": "particle", "time": "frame", "coords": ("x", "y", "z")}
PRESETS = {"TrackMate": TRACKMATE, "trackpy": TRACKPY}
MISSING_IDS = {"", "none", "nan", "na", "null"}
DESCRIPTION_ROWS = 3  # TrackMate 7: long names, short names, units
STEP_TOLERANCE = 1e-3  # of a frame: how far a time may sit from its grid point


@dataclass(frozen=True)
class TrackTable:
    """What :func:`read_tracks` read.

    Attributes:
        trajectories: the tracks on per-track regular grids, gaps masked.
        summary: one paragraph for humans (columns, tracks, gaps, times, what was dropped).
        source: ``"TrackMate"``, ``"trackpy"``, ``"iel"`` (``id, t, …``) or ``"named"``
            (no recognised columns: all named by the caller).
        columns: the columns used: ``{"id": …, "time": …, "coords": (…)}``.
        track_ids: the id of each kept track, in the order of the trajectories.
        frame_interval: the time per frame, or ``None`` when tracks differ or times were
            kept as given.
        n_gaps: runs of missing frames inside tracks; ``n_missing``: frames in them.
        n_short: tracks dropped for having fewer than two observed states.
        n_untracked: rows dropped for belonging to no track.
    """

    trajectories: Trajectories
    summary: str
    source: str
    columns: dict
    track_ids: tuple[str, ...]
    frame_interval: float | None
    n_gaps: int
    n_missing: int
    n_short: int
    n_untracked: int


def delimiter_for(path: Path) -> str:
    """Tab for ``.tsv`` and for ``.txt`` whose first line holds a tab; comma otherwise."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    if path.suffix.lower() == ".txt":
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return "\t" if "\t" in f.readline() else ","
    return ","


def read_header(path: Path) -> list[str]:
    """The column names of a table's first line (stripped)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        first = next(csv.reader(f, delimiter=delimiter_for(path)), [])
    return [name.strip() for name in first]


def recognised(names: list[str]) -> str | None:
    """``"TrackMate"`` or ``"trackpy"`` when the header holds that tool's columns."""
    for source, preset in (("TrackMate", TRACKMATE), ("trackpy", TRACKPY)):
        if {preset["id"], preset["time"], *preset["coords"][:2]} <= set(names):
            return source
    return None


def read_tracks(
    path: str | Path,
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    coords: str | list[str] | tuple[str, ...] | None = None,
    frame_interval: float | None = None,
) -> TrackTable:
    """Read a particle-tracking table (module docstring: columns, times, gaps).

    Args:
        path: a ``.csv`` (comma), ``.tsv`` or ``.txt`` (tab when the header holds one) file.
        id_col: the column naming each row's track.
        time_col: the column of frame numbers (with ``frame_interval``) or of times.
        coords: the coordinate columns, a list or one comma-separated string.
        frame_interval: time per frame (seconds per frame, say).

    Example:
        >>> table = iel.read_tracks("spots.csv", frame_interval=0.1)
        >>> print(table.summary); model = iel.fit(table.trajectories)
    """
    path = Path(path)
    where = str(path)
    if frame_interval is not None:
        frame_interval = float(frame_interval)
        if not np.isfinite(frame_interval) or frame_interval <= 0:
            raise DataError(f"{where}: frame_interval: expected a positive number of time units "
                            f"per frame, got {frame_interval!r}")  # fmt: skip
    if isinstance(coords, str):
        coords = [c.strip() for c in coords.split(",") if c.strip()]
    names, rows = _read_rows(path)
    source, columns, physical = _choose_columns(names, id_col, time_col, coords, where)
    frames_given = frame_interval is not None or (
        source in PRESETS and columns["time"] == PRESETS[source]["time"]
    )
    cols = _column_index(names, rows, [columns["id"], columns["time"], *columns["coords"],
                                       *([physical] if physical else [])], where)  # fmt: skip
    skipped, rows = _skip_description_rows(rows, cols[columns["coords"][0]])
    ids = [row[cols[columns["id"]]].strip() if cols[columns["id"]] < len(row) else ""
           for row in rows]  # fmt: skip
    tracked = np.array([i.lower() not in MISSING_IDS for i in ids], dtype=bool)
    n_untracked = int((~tracked).sum())
    rows = [row for row, keep in zip(rows, tracked) if keep]
    ids = [_canonical_id(i) for i, keep in zip(ids, tracked) if keep]
    first_line = 2 + skipped  # file line of rows[0]
    lines = first_line + np.flatnonzero(tracked)
    if not rows:
        raise DataError(f"{where}: no row belongs to a track (column {columns['id']!r} is "
                        f"empty or None in all {n_untracked} rows)")  # fmt: skip
    times = _numbers(rows, cols[columns["time"]], columns["time"], lines, where)
    x = np.stack([_numbers(rows, cols[c], c, lines, where) for c in columns["coords"]], axis=1)
    notes = [f"skipped {skipped} description rows under the header"] if skipped else []
    x, coord_names = _drop_constant_z(x, list(columns["coords"]), source, notes)
    ptime = _numbers(rows, cols[physical], physical, lines, where) if physical else None
    keys, inverse = _track_keys(ids)
    if frames_given:
        frames = _whole_frames(times, columns["time"], lines, where)
        grid = _frame_grid(inverse, frames, ptime, frame_interval, physical, keys, where, notes)
    else:
        grid = _time_grid(inverse, times, columns["time"], keys, where, notes)
    return _assemble(grid, inverse, x, keys, source, {**columns, "coords": tuple(coord_names)},
                     n_untracked, notes, where)  # fmt: skip


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start} is "
                        f"{err.object[err.start]:#x}); expected a table with a header line"
                        ) from err  # fmt: skip
    reader = csv.reader(text.splitlines(), delimiter=delimiter_for(path))
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: the file is empty (expected a header line)")
    names = [n.strip() for n in rows[0]]
    if len(rows) == 1:
        raise DataError(f"{path}: the file has a header but no rows")
    return names, rows[1:]


def _choose_columns(names, id_col, time_col, coords, where):
    """``(source, {"id", "time", "coords"}, physical-time column or None)``."""
    source = recognised(names)
    preset = PRESETS.get(source, {})
    if source is None and {"id", "t"} <= set(names):  # iel's own columns, read with options
        source = "iel"
        preset = {
            "id": "id",
            "time": "t",
            "coords": tuple(n for n in names if n and n not in ("id", "t")),
        }
    found = ", ".join(repr(n) for n in names if n) or "none"
    for option, value in (("id_col", id_col), ("time_col", time_col)):
        if value is not None and value not in names:
            raise DataError(f"{where}: {option} names the column {value!r}, which the header "
                            f"does not hold; columns found: {found}")  # fmt: skip
    for c in coords or []:
        if c not in names:
            raise DataError(f"{where}: coords names the column {c!r}, which the header does "
                            f"not hold; columns found: {found}")  # fmt: skip
    chosen_coords = list(coords) if coords else [c for c in preset.get("coords", ()) if c in names]
    columns = {"id": id_col or preset.get("id"), "time": time_col or preset.get("time"),
               "coords": tuple(chosen_coords)}  # fmt: skip
    lacking = [opt for opt, key in (("id_col", "id"), ("time_col", "time"), ("coords", "coords"))
               if not columns[key]]  # fmt: skip
    if lacking:
        raise DataError(
            f"{where}: not a recognised track table and no {', '.join(lacking)} given; "
            "expected trackpy columns (particle, frame, x, y), TrackMate columns (TRACK_ID, "
            "FRAME, POSITION_X, POSITION_Y), iel's (id, t, x0, …), or name them with "
            f"id_col, time_col and coords (--id-col, --time-col, --coords); columns found: "
            f"{found}"
        )
    # POSITION_T is used only with TrackMate's own frame column
    physical = preset.get("physical") if columns["time"] == preset.get("time") else None
    if physical not in names:
        physical = None
    return source or "named", columns, physical


def _column_index(names, rows, wanted, where) -> dict[str, int]:
    """Position of each wanted column; a repeated name is fine when its copies agree."""
    index = {}
    for name in wanted:
        spots = [k for k, n in enumerate(names) if n == name]
        for k in spots[1:]:
            if any(_cell(r, k) != _cell(r, spots[0]) for r in rows):
                raise DataError(f"{where}: the header names {name!r} more than once with "
                                "different values; expected one column of that name")  # fmt: skip
        index[name] = spots[0]
    return index


def _cell(row: list[str], k: int) -> str:
    return row[k].strip() if k < len(row) else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _skip_description_rows(rows, coord_index):
    """Drop up to three rows under the header whose first coordinate is not a number."""
    skipped = 0
    while skipped < min(DESCRIPTION_ROWS, len(rows)) and not _is_number(
        _cell(rows[skipped], coord_index)
    ):
        skipped += 1
    return skipped, rows[skipped:]


def _numbers(rows, k, name, lines, where) -> np.ndarray:
    out = np.empty(len(rows))
    for r, row in enumerate(rows):
        text = _cell(row, k)
        try:
            out[r] = float(text)
        except ValueError:
            raise DataError(f"{where}: line {lines[r]}: column {name!r} holds {text[:40]!r}; "
                            "expected a number") from None  # fmt: skip
    bad = ~np.isfinite(out)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(f"{where}: line {lines[r]}: column {name!r} holds {out[r]}; expected a "
                        "finite number")  # fmt: skip
    return out


def _canonical_id(text: str) -> str:
    """``"3"``, ``"3.0"`` and ``" 3 "`` are one track (pandas writes ids as floats)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else text


def _track_keys(ids: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct ids (numerically ordered when all are numbers) and each row's index."""
    uniq = sorted(set(ids))
    if all(_is_number(u) for u in uniq):
        uniq = sorted(uniq, key=float)
    position = {u: k for k, u in enumerate(uniq)}
    return uniq, np.array([position[i] for i in ids], dtype=int)


def _drop_constant_z(x, names, source, notes):
    """TrackMate writes POSITION_Z = 0 for 2-D movies: a constant coordinate is left out."""
    z = {"TrackMate": "POSITION_Z", "trackpy": "z"}.get(source)
    if z in names and x.shape[1] > 2:
        k = names.index(z)
        if np.ptp(x[:, k]) == 0:
            notes.append(f"{z} is {x[0, k]:g} in every row: left out (2-D tracks)")
            return np.delete(x, k, axis=1), names[:k] + names[k + 1 :]
    return x, names


def _whole_frames(values, name, lines, where) -> np.ndarray:
    frames = np.round(values)
    off = np.abs(values - frames) > 1e-6
    if off.any():
        r = int(np.argmax(off))
        raise DataError(f"{where}: line {lines[r]}: {name!r} holds {values[r]:g}; frame numbers "
                        "must be whole (for times, name the column with time_col and give no "
                        "frame_interval)")  # fmt: skip
    return frames.astype(np.int64)


@dataclass
class _Grid:
    """Per-row grid position, per-track start time and step."""

    position: np.ndarray  # (M,) index on the track's grid
    start: np.ndarray  # (N,) time of grid position 0
    step: np.ndarray  # (N,) time between grid positions
    interval: float | None
    packed_times: np.ndarray | None = None  # (M,) times kept as given (no grid)


def _first_per_track(inverse, values, n) -> np.ndarray:
    first = np.full(n, np.inf)
    np.minimum.at(first, inverse, values)
    return first


def _check_repeats(inverse, values, keys, name, where) -> np.ndarray:
    """Row order by (track, value); two rows of one track at the same value are an error."""
    order = np.lexsort((values, inverse))
    same = (np.diff(inverse[order]) == 0) & (np.diff(values[order]) == 0)
    if same.any():
        r = order[int(np.argmax(same))]
        raise DataError(f"{where}: track {keys[inverse[r]]!r} has two rows at {name} "
                        f"{values[r]:g}; expected one spot per track and frame")  # fmt: skip
    return order


def _frame_grid(inverse, frames, ptime, frame_interval, physical, keys, where, notes) -> _Grid:
    n = len(keys)
    _check_repeats(inverse, frames.astype(float), keys, "frame", where)
    first = _first_per_track(inverse, frames.astype(float), n).astype(np.int64)
    position = frames - first[inverse]
    if frame_interval is not None:
        step = np.full(n, frame_interval)
        implied = None
        if ptime is not None:
            try:
                implied = _implied_intervals(inverse, frames, ptime, first, keys, physical, where)
            except DataError:
                notes.append(f"{physical} does not follow the frames at one interval; the "
                             f"given frame interval {frame_interval:g} is used")  # fmt: skip
        if implied is not None:
            finite = implied[np.isfinite(implied)]
            if finite.size and np.any(np.abs(finite - frame_interval) > 1e-6 * frame_interval):
                notes.append(f"{physical} implies {_span(finite)} per frame; the given frame "
                             f"interval {frame_interval:g} is used")  # fmt: skip
        return _Grid(position, first * frame_interval, step, frame_interval)
    if ptime is not None:
        step = _implied_intervals(inverse, frames, ptime, first, keys, physical, where)
        finite = np.isfinite(step)
        fill = float(np.median(step[finite])) if finite.any() else 1.0
        step[~finite] = fill  # single-spot tracks: dropped later
        start = np.zeros(n)
        at_first = position == 0
        start[inverse[at_first]] = ptime[at_first]
        lo, hi = step[finite].min(initial=fill), step[finite].max(initial=fill)
        if hi - lo > 1e-6 * hi:
            notes.append(f"frame intervals differ between tracks ({physical} per frame from "
                         f"{lo:g} to {hi:g}): each track keeps its own")  # fmt: skip
            return _Grid(position, start, step, None)
        return _Grid(position, start, np.full(n, fill), fill)
    notes.append("no frame interval given: times are in frames (dt = 1 frame); give "
                 "frame_interval (--frame-interval) for physical times")  # fmt: skip
    return _Grid(position, first.astype(float), np.ones(n), 1.0)


def _implied_intervals(inverse, frames, ptime, first, keys, physical, where) -> np.ndarray:
    """Per track, ``Δ`` with ``POSITION_T = t₀ + (f − f₀)Δ``; NaN for one-spot tracks."""
    n = len(keys)
    last = np.full(n, -np.inf)
    np.maximum.at(last, inverse, frames.astype(float))
    t_first = np.zeros(n)
    t_last = np.zeros(n)
    is_first = frames == first[inverse]
    is_last = frames == last[inverse]
    t_first[inverse[is_first]] = ptime[is_first]
    t_last[inverse[is_last]] = ptime[is_last]
    span = last - first
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(span > 0, (t_last - t_first) / np.where(span > 0, span, 1), np.nan)
    bad = np.flatnonzero((span > 0) & ~(step > 0))
    if bad.size:
        k = int(bad[0])
        raise DataError(
            f"{where}: track {keys[k]!r}: {physical} does not increase with the "
            f"frame ({t_first[k]:g} at its first frame, {t_last[k]:g} at its last)"
        )
    predicted = t_first[inverse] + (frames - first[inverse]) * np.nan_to_num(step[inverse])
    off = np.abs(ptime - predicted) > STEP_TOLERANCE * np.nan_to_num(step[inverse], nan=1.0)
    if off.any():
        r = int(np.argmax(off))
        raise DataError(
            f"{where}: track {keys[inverse[r]]!r}: {physical} is not the frame "
            f"times a constant interval (frame {frames[r]} at {ptime[r]:g}, expected "
            f"{predicted[r]:g}); give frame_interval to use the frames instead"
        )
    return step


def _time_grid(inverse, times, name, keys, where, notes) -> _Grid:
    """Physical times: on the grid of the smallest step when every step is a whole multiple."""
    n = len(keys)
    order = _check_repeats(inverse, times, keys, name, where)
    same_track = np.diff(inverse[order]) == 0
    steps = np.diff(times[order])[same_track]
    first = _first_per_track(inverse, times, n)
    if steps.size:
        unit = float(steps.min())
        multiples = steps / unit
        if np.all(np.abs(multiples - np.round(multiples)) <= STEP_TOLERANCE):
            position = np.round((times - first[inverse]) / unit).astype(np.int64)
            return _Grid(position, first, np.full(n, unit), unit)
    notes.append(
        f"the times in {name!r} are not whole multiples of one step: kept as given "
        "(each transition's Δt is its time difference; gaps cannot be told apart)"
    )
    rank = np.empty(len(times), dtype=np.int64)
    order_within = order
    starts = np.r_[0, np.flatnonzero(~same_track) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    rank[order_within] = np.arange(len(order)) - np.repeat(starts, counts)
    return _Grid(rank, first, np.full(n, np.nan), None, packed_times=times)


def _span(values: np.ndarray) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:g}" if hi - lo <= 1e-9 * max(abs(hi), 1e-300) else f"{lo:g} to {hi:g}"


def _assemble(grid, inverse, x, keys, source, columns, n_untracked, notes, where) -> TrackTable:
    counts = np.bincount(inverse, minlength=len(keys))
    keep = counts >= 2
    n_short = int((~keep).sum())
    if not keep.any():
        raise DataError(f"{where}: no track has two observed states (all {len(keys)} tracks "
                        "have one spot); at least one transition is needed")  # fmt: skip
    new_index = np.cumsum(keep) - 1
    rows = keep[inverse]
    track = new_index[inverse[rows]]
    position = grid.position[rows]
    n, d = int(keep.sum()), x.shape[1]
    length = int(position.max()) + 1
    xs = np.full((n, length, d), np.nan)
    mask = np.zeros((n, length), dtype=bool)
    xs[track, position] = x[rows]
    mask[track, position] = True
    if grid.packed_times is not None:
        ts = np.full((n, length), np.nan)
        ts[track, position] = grid.packed_times[rows]
    else:
        ts = grid.start[keep][:, None] + np.arange(length)[None, :] * grid.step[keep][:, None]
    observed = mask.sum(axis=1)
    spans = np.zeros(n, dtype=int)
    np.maximum.at(spans, track, position + 1)
    inside = np.arange(length)[None, :] < spans[:, None]
    missing_mask = inside & ~mask
    n_missing = int(missing_mask.sum())
    n_gaps = int(np.sum(missing_mask[:, 1:] & ~missing_mask[:, :-1]))
    try:
        traj = Trajectories(xs, t=ts, mask=None if mask.all() else mask)
    except DataError as err:
        raise DataError(f"{where}: {err}") from err
    kept_ids = tuple(k for k, keep_it in zip(keys, keep) if keep_it)
    interval = grid.interval if grid.packed_times is None else None
    what = {"TrackMate": "TrackMate columns", "trackpy": "trackpy columns",
            "iel": "iel's columns", "named": "the columns"}[source]  # fmt: skip
    used = "/".join([columns["id"], columns["time"], *columns["coords"]])
    parts = [f"read {n} tracks from {what} {used}: "
             f"{_range_text(observed)} observed frames each, "
             f"{n_gaps} gaps ({n_missing} missing frames)"]  # fmt: skip
    if interval is not None:
        parts.append(f"frame interval {interval:g} → dt = {interval:g}")
    sentences = [", ".join(parts)]
    if n_short:
        sentences.append(f"dropped {n_short} tracks with fewer than 2 observed states")
    if n_untracked:
        sentences.append(f"dropped {n_untracked} spots in no track (empty or None "
                         f"{columns['id']})")  # fmt: skip
    summary = "; ".join(sentences + notes)
    return TrackTable(traj, summary, source, columns, kept_ids, interval, n_gaps, n_missing,
                      n_short, n_untracked)  # fmt: skip


def _range_text(values: np.ndarray) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"
