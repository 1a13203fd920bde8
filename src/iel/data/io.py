"""Reading and writing data files.

``.npz`` (read with ``allow_pickle=False``):

* trajectories: ``x`` ``(N, T, d)`` and ``dt`` (scalar) or ``t`` (``(T,)`` or ``(N, T)``),
  optional boolean ``mask`` ``(N, T)``;
* snapshots: ``x`` ``(M, d)`` and ``t`` ``(M,)`` (the time of each row), optional
  ``growth_rate`` ``(M,)`` (each row's log growth rate per unit time);
* samples: only ``x`` ``(M, d)``;
* endpoints: ``x`` ``(M, d)`` and optional ``starts`` ``(M, d)``; files written by ``iel``
  carry a ``kind`` entry, other files need ``kind="endpoints"`` to be read as end states.

``.csv`` with a header: ``id`` (trajectories only), ``t`` (trajectories and snapshots), then one
column per coordinate.  Trajectory rows are grouped by ``id`` and sorted by ``t``; trajectories
of different lengths are padded and masked.

Particle-tracking tables (trackpy, TrackMate, or columns named with ``id_col``, ``time_col``,
``coords``; ``.csv``, or tab-separated ``.tsv``/``.txt``) are read by
:func:`iel.data.tracks.read_tracks`: each track on its own grid of frames, gaps masked.

``.h5ad`` (AnnData, optional extra ``anndata``): an embedding ``obsm[basis]`` (``X_pca`` by
default; ``X`` only when asked for) with the time in ``obs[time_key]`` (detected, labels such as
``"day2"`` parsed) is read as snapshots by :func:`~.anndata_io.read_anndata`.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from .anndata_io import read_anndata
from .files import atomic_file
from .populations import Endpoints, Samples, Snapshots
from .tracks import read_header, read_tracks, recognised
from .trajectories import Trajectories
from .validation import DataError

KINDS = ("trajectories", "snapshots", "samples", "endpoints")
Data = Trajectories | Snapshots | Samples | Endpoints


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise DataError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")


TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
SINGLE_CELL_OPTIONS = ("time_key", "basis", "n_components")


def load_data(
    path: str | Path,
    kind: str | None = None,
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    coords: str | list[str] | None = None,
    frame_interval: float | None = None,
    time_key: str | None = None,
    basis: str | None = None,
    n_components: int | None = None,
) -> Data:
    """Read a data file; the kind is detected from its contents unless ``kind`` is given.

    ``id_col``, ``time_col``, ``coords`` and ``frame_interval`` read a particle-tracking table
    (:func:`iel.data.tracks.read_tracks`); trackpy and TrackMate tables are recognised without
    them.  ``time_key``, ``basis`` and ``n_components`` are for ``.h5ad`` files
    (:func:`~.anndata_io.read_anndata`): the ``obs`` column of the times, the ``obsm``
    embedding and how many of its leading components."""
    options = {"id_col": id_col, "time_col": time_col, "coords": coords,
               "frame_interval": frame_interval, "time_key": time_key, "basis": basis,
               "n_components": n_components}  # fmt: skip
    return load_data_and_summary(path, kind, **options)[0]


def load_data_and_summary(
    path: str | Path, kind: str | None = None, **options
) -> tuple[Data, str | None]:
    """:func:`load_data`, with the track reader's summary (``None`` for other files)."""
    path = Path(path)
    _check_kind(kind)
    single_cell = {name: options.pop(name, None) for name in SINGLE_CELL_OPTIONS}
    cells_given = [name for name, value in single_cell.items() if value is not None]
    if cells_given and path.suffix.lower() != ".h5ad":
        raise DataError(f"{path}: {', '.join(cells_given)} apply to .h5ad (AnnData) files only")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file (.npz, .csv or .h5ad)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    given = [name for name, value in options.items() if value is not None]
    if suffix in TABLE_SUFFIXES and (given or recognised(read_header(path))):
        if kind not in (None, "trajectories"):
            raise DataError(f"{path}: a track table holds trajectories; got kind={kind!r}")
        table = read_tracks(path, **options)
        return table.trajectories, table.summary
    if given:
        raise DataError(f"{path}: {', '.join(given)} apply to track tables (.csv, .tsv, .txt); "
                        f"got a '{suffix}' file")  # fmt: skip
    if suffix == ".npz":
        return _load_npz(path, kind), None
    if suffix in (".npy", ".zarr"):
        raise DataError(f"{path}: a '{suffix}' file holds states without their times; open it as "
                        "trajectories with iel.open_trajectories(path, dt=...) (read in chunks: "
                        "iel.StreamedClosedForm, or .to_trajectories() when it fits in memory), "
                        "or run iel fit with --dt")  # fmt: skip
    if suffix == ".csv":
        return _load_csv(path, kind), None
    if suffix == ".h5ad":
        return read_anndata(path, **single_cell, kind=kind or "snapshots")[0], None
    raise DataError(f"{path}: expected a .npz, .csv or .h5ad file (or a .tsv/.txt track table), "
                    f"got '{suffix or 'no suffix'}'")  # fmt: skip


def _load_npz(path: Path, kind: str | None) -> Data:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (it is not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:
        raise DataError(f"{path}: could not read as .npz without pickle ({err})") from err
    except Exception as err:
        raise DataError(f"{path}: not a readable .npz file ({err})") from err
    if "x" not in arrays:
        raise DataError(f"{path}: expected an array named 'x', found {sorted(arrays) or 'none'}")
    stored = str(arrays.pop("kind")) if "kind" in arrays else None
    if kind is None and stored is not None and stored not in KINDS:
        raise DataError(f"{path}: the entry 'kind' should name one of {', '.join(KINDS)}, "
                        f"got {stored[:40]!r}")  # fmt: skip
    x = arrays["x"]
    if kind is None:
        if stored is not None:
            kind = stored
        elif x.ndim == 3:
            kind = "trajectories"
        elif x.ndim == 2:
            kind = "snapshots" if "t" in arrays else "samples"
        else:
            raise DataError(
                f"{path}: 'x' has shape {x.shape}; expected (N, T, d) for trajectories or "
                "(M, d) for snapshots, samples and end states"
            )
    return _build(kind, arrays, str(path))


def _build(kind: str, arrays: dict[str, np.ndarray], where: str) -> Data:
    def need(key: str) -> np.ndarray:
        if key not in arrays:
            raise DataError(f"{where}: {kind} need an array named '{key}', found {sorted(arrays)}")
        return arrays[key]

    try:
        if kind == "trajectories":
            if "dt" not in arrays and "t" not in arrays:
                raise DataError(
                    f"{where}: trajectories need 'dt' (a time step) or 't' (times), "
                    f"found {sorted(arrays)}"
                )
            return Trajectories(
                need("x"), dt=arrays.get("dt"), t=arrays.get("t"), mask=arrays.get("mask")
            )
        if kind == "snapshots":
            return Snapshots(need("x"), need("t"), arrays.get("growth_rate"))
        if kind == "samples":
            return Samples(need("x"))
        return Endpoints(need("x"), arrays.get("starts"))
    except DataError as err:
        if str(err).startswith(where):
            raise
        raise DataError(f"{where}: {err}") from err


def _load_csv(path: Path, kind: str | None) -> Data:
    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#x}); "
                        "expected a comma-separated table with a header line") from err  # fmt: skip
    header = lines[0].strip() if lines else ""
    if not header:
        raise DataError(f"{path}: the file is empty (expected a header line)")
    names = [h.strip() for h in header.split(",")]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{path}: the header names {', '.join(map(repr, repeated))} more than "
                        f"once; expected one column each (header: {header[:80]!r})")  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            table = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    except ValueError as err:
        raise DataError(f"{path}: could not read numbers below the header ({err})") from err
    if table.size == 0:
        raise DataError(f"{path}: the file has a header but no rows")
    if table.shape[1] != len(names):
        raise DataError(
            f"{path}: the header has {len(names)} columns but rows have {table.shape[1]}"
        )
    columns = dict(zip(names, table.T))
    coords = [n for n in names if n not in ("id", "t")]
    if not coords:
        raise DataError(f"{path}: expected coordinate columns after 'id' and 't', found none")
    x = np.stack([columns[c] for c in coords], axis=1)
    if kind is None:
        kind = "trajectories" if "id" in columns else "snapshots" if "t" in columns else "samples"
    if kind == "trajectories":
        if "id" not in columns or "t" not in columns:
            raise DataError(f"{path}: trajectories in .csv need 'id' and 't' columns")
        return _csv_trajectories(columns["id"], columns["t"], x, str(path))
    arrays = {"x": x}
    if "t" in columns:
        arrays["t"] = columns["t"]
    return _build(kind, arrays, str(path))


def _csv_trajectories(ids: np.ndarray, t: np.ndarray, x: np.ndarray, where: str) -> Trajectories:
    if not np.all(np.isfinite(ids)):
        row = int(np.argmax(~np.isfinite(ids)))
        raise DataError(f"{where}: every row needs a finite 'id', row {row + 1} has {ids[row]}")
    uniq = np.unique(ids)
    groups = [np.flatnonzero(ids == i) for i in uniq]
    longest = max(len(g) for g in groups)
    n, d = len(groups), x.shape[1]
    xs = np.full((n, longest, d), np.nan)
    ts = np.full((n, longest), np.nan)
    mask = np.zeros((n, longest), dtype=bool)
    for i, g in enumerate(groups):
        order = g[np.argsort(t[g], kind="stable")]
        xs[i, : len(g)] = x[order]
        ts[i, : len(g)] = t[order]
        mask[i, : len(g)] = True
    try:
        return Trajectories(xs, t=ts, mask=None if mask.all() else mask)
    except DataError as err:
        raise DataError(f"{where}: {err}") from err


def save_data(path: str | Path, data: Data) -> Path:
    """Write ``data`` as ``.npz`` (with its kind recorded) or ``.csv``; refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose another name or remove it first")
    if path.suffix.lower() not in (".csv", ".npz"):
        raise DataError(f"{path}: expected a .npz or .csv file name")
    with atomic_file(path) as partial:  # written whole or not at all
        if path.suffix.lower() == ".csv":
            _save_csv(partial, data)
        else:
            _save_npz(partial, data)
    return path


def _save_npz(path: Path, data: Data) -> None:
    arrays: dict[str, np.ndarray] = {"x": data.x, "kind": np.array(data.kind)}
    if isinstance(data, Trajectories):
        arrays["t"] = data.t
        if data.mask is not None:
            arrays["mask"] = data.mask
    elif isinstance(data, Snapshots):
        arrays["t"] = data.t
        if data.growth_rate is not None:
            arrays["growth_rate"] = data.growth_rate
    elif isinstance(data, Endpoints) and data.starts is not None:
        arrays["starts"] = data.starts
    np.savez(path, **arrays)


def _save_csv(path: Path, data: Data) -> None:
    if isinstance(data, Trajectories):
        if len(data.state_shape) != 1:
            raise DataError("only (N, T, d) trajectories can be written as .csv")
        obs = data.observed
        ids = np.broadcast_to(np.arange(data.n_trajectories)[:, None], obs.shape)[obs]
        table = np.column_stack([ids, data.t[obs], data.x[obs]])
        cols = ["id", "t"]
    elif isinstance(data, Snapshots):
        if data.growth_rate is not None:
            raise DataError("snapshots with growth rates are written as .npz (growth_rate is "
                            "not a .csv column); save to a .npz path")  # fmt: skip
        table, cols = np.column_stack([data.t, data.x]), ["t"]
    else:
        table, cols = data.x, []
    cols += [f"x{j}" for j in range(data.x.shape[-1])]
    np.savetxt(path, table, delimiter=",", header=",".join(cols), comments="", fmt="%.17g")
