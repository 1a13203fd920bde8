"""AnnData (single-cell) time courses read as snapshots.

The single-cell conventions (scanpy, moscot, CellRank, PRESCIENT): one row of ``obs`` per
cell, the time of each cell in a column ``obs[time_key]`` — often categorical strings such as
``"day0"``, ``"D2.5"``, ``"E7.5"``, ``"12h"``, ``"day 3"``, ``"48hr"`` at non-consecutive
times — and the state of a cell an embedding in ``obsm`` (``X_pca``, 30–50 components;
``X_umap`` for pictures only).  :func:`read_anndata` returns :class:`~.populations.Snapshots`
whose row ``i`` is cell ``i`` (the order of ``obs``) and an :class:`AnnDataRead` saying what was
read.

Detection, where not given:

* time key: the ``obs`` column whose name is time-like (:data:`TIME_NAMES`, any case) and whose
  values are numbers or parseable labels; none or several is an error listing the columns.
* basis: ``X_pca`` when present; otherwise an error listing ``obsm``'s keys.  ``X`` (genes) is
  read only when ``basis="X"`` is asked for, and a sparse or wide one is densified with a
  warning giving its size.

Time labels (:func:`parse_time_labels`): a number is read out of each label
(``"day0"`` → 0, ``"D2.5"`` → 2.5, ``"E7.5"`` → 7.5, ``"12h"`` → 12, ``"t=3"`` → 3); units are
not converted (labels mixing hours and days are refused).  An ordered categorical keeps its
order; if its labels carry no numbers they become ``0, 1, 2, …`` in that order.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .populations import Samples, Snapshots
from .validation import DataError

# obs column names taken for the time of each cell (compared in lower case)
TIME_NAMES = ("time", "t", "day", "days", "timepoint", "time_point", "timepoints", "age",
              "stage", "hour", "hours", "hpf", "dpf", "dpi", "hpi")  # fmt: skip
DEFAULT_BASIS = "X_pca"
# a dense X beyond this many columns (genes), or any sparse X, is densified with a warning
WIDE_X = 100

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LABEL = re.compile(rf"^(?P<pre>[a-z_ =:\-]*?)\s*(?P<num>{_NUMBER})\s*(?P<post>[a-z_ ]*)$")
_HOURS = {"h", "hr", "hrs", "hour", "hours", "hpf", "hpi", "hps", "th"}
_DAYS = {"d", "day", "days", "dpi", "dpf", "e", "p", "td"}


@dataclass(frozen=True)
class AnnDataRead:
    """What :func:`read_anndata` read: the time column and how its labels became times, the
    basis and how many of its components, the cells at each time."""

    time_key: str | None
    labels: tuple[str, ...]  # the distinct time labels, in time order
    times: tuple[float, ...]  # the time of each label
    time_rule: str  # how the labels became numbers
    basis: str
    n_components: int  # the first n_components columns of the basis were read
    basis_width: int  # the basis' number of columns
    cells_per_time: tuple[int, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def mapping(self) -> dict[str, float]:
        """Label → time, in time order."""
        return dict(zip(self.labels, self.times))

    def as_dict(self) -> dict:
        """A JSON- and ``.h5ad``-safe summary (no ``None``, label lists as lists)."""
        return {
            "time_key": self.time_key or "",
            "time_labels": list(self.labels),
            "time_values": [float(t) for t in self.times],
            "time_rule": self.time_rule,
            "basis": self.basis,
            "n_components": int(self.n_components),
            "basis_width": int(self.basis_width),
            "cells_per_time": [int(c) for c in self.cells_per_time],
        }

    def describe(self) -> list[str]:
        """Lines for a person: the label mapping and the basis."""
        pairs = ", ".join(
            f"{label!r} → {t:g} ({n} cells)"
            for label, t, n in zip(self.labels, self.times, self.cells_per_time)
        )
        lines = []
        if self.time_key is not None:
            lines.append(f"time: obs[{self.time_key!r}] ({self.time_rule}): {pairs}")
        lines.append(f"state: {self.basis}, components 1–{self.n_components} of {self.basis_width}")
        return lines + list(self.notes)


def _import_anndata():
    try:
        import anndata
    except ImportError as err:
        raise ImportError(
            "reading .h5ad files needs the optional dependency 'anndata': "
            "pip install 'iel[anndata]'"
        ) from err
    return anndata


def open_h5ad(path: str | Path, backed: bool = False):
    """``anndata.read_h5ad(path)`` with a :class:`DataError` for a file it cannot read;
    ``backed=True`` leaves ``X`` on disk (read-only)."""
    anndata = _import_anndata()
    try:
        return anndata.read_h5ad(path, backed="r" if backed else None)
    except Exception as err:  # h5py and anndata raise many kinds for a file they cannot read
        raise DataError(f"{path}: not a readable .h5ad file ({type(err).__name__}: "
                        f"{str(err)[:200]})") from err  # fmt: skip


def read_anndata(
    source, time_key: str | None = None, basis: str | None = None,
    n_components: int | None = None, kind: str = "snapshots",
) -> tuple[Snapshots | Samples, AnnDataRead]:  # fmt: skip
    """The cells of ``source`` (an AnnData or a ``.h5ad`` path) as snapshots (``kind``
    ``"samples"``: one population without time) and what was read (module docstring).

    Args:
        source: an ``anndata.AnnData`` or the path of a ``.h5ad`` file.
        time_key: the ``obs`` column holding each cell's time; detected when ``None``.
        basis: an ``obsm`` key (``"X_pca"``; ``"pca"`` is read as ``"X_pca"``) or ``"X"``;
            ``X_pca`` when ``None``.
        n_components: read only the first K columns of the basis (all when ``None``).
        kind: ``"snapshots"`` or ``"samples"``.
    """
    if kind not in ("snapshots", "samples"):
        raise DataError(f".h5ad files are read as snapshots or samples, not {kind!r}")
    where = str(source) if isinstance(source, (str, Path)) else "AnnData"
    if isinstance(source, (str, Path)):
        backed = basis != "X"  # only the embedding is needed: X stays on disk
        adata = open_h5ad(source, backed=backed)
        try:
            return _read(adata, where, time_key, basis, n_components, kind)
        finally:
            if backed:
                adata.file.close()
    if not (hasattr(source, "obs") and hasattr(source, "obsm")):
        raise DataError(f"expected an AnnData or a .h5ad path, got {type(source).__name__}")
    return _read(source, where, time_key, basis, n_components, kind)


def _read(adata, where, time_key, basis, n_components, kind):
    states, basis, width, notes = _basis_states(adata, where, basis, n_components)
    if kind == "samples":
        record = AnnDataRead(None, (), (), "no time (samples)", basis, states.shape[1], width,
                             (len(states),), tuple(notes))  # fmt: skip
        return Samples(states), record
    time_key = time_key if time_key is not None else detect_time_key(adata.obs, where)
    if time_key not in adata.obs.columns:
        raise DataError(f"{where}: no obs column {time_key!r}; obs has "
                        f"{_listing(adata.obs.columns)}")  # fmt: skip
    column = adata.obs[time_key]
    try:
        labels, values, rule = parse_time_labels(column)
    except DataError as err:
        raise DataError(f"{where}: obs[{time_key!r}]: {err}") from err
    t = _cell_times(column, labels, values, where, time_key)
    counts = tuple(int(np.sum(t == v)) for v in values)
    record = AnnDataRead(time_key, tuple(labels), tuple(float(v) for v in values), rule, basis,
                         states.shape[1], width, counts, tuple(notes))  # fmt: skip
    try:
        # cells are destroyed when measured: each time point is a fresh sample (a hint that
        # regime='same' overrides, iel.selection.snapshot_regime)
        return Snapshots(states, t, same_particles=False), record
    except DataError as err:
        raise DataError(f"{where}: {err}") from err


def _listing(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(repr(n) for n in names) if names else "nothing"


def detect_time_key(obs, where: str = "AnnData") -> str:
    """The one ``obs`` column with a time-like name (:data:`TIME_NAMES`) whose values are
    numbers or parseable labels; a :class:`DataError` listing the columns otherwise."""
    named = [c for c in obs.columns if str(c).lower() in TIME_NAMES]
    usable = []
    for c in named:
        try:
            parse_time_labels(obs[c])
            usable.append(c)
        except DataError:
            pass  # named like a time but not readable as one: listed in the error below
    if len(usable) == 1:
        return str(usable[0])
    if len(usable) > 1:
        raise DataError(f"{where}: several obs columns could be the time ({_listing(usable)}); "
                        "choose one with time_key= (CLI: --time-key)")  # fmt: skip
    unreadable = ""
    if named:
        unreadable = f" ({_listing(named)} named like a time but not readable as times)"
    raise DataError(
        f"{where}: found no time column in obs{unreadable}; obs has {_listing(obs.columns)}. "
        "Pass the column with time_key= (CLI: --time-key)"
    )


def parse_label(label) -> tuple[float, str] | None:
    """``(number, unit)`` read from one label (``"D2.5"`` → ``(2.5, "d")``), ``None`` when
    it holds no single number."""
    if isinstance(label, (int, float, np.integer, np.floating)) and not isinstance(label, bool):
        return (float(label), "") if np.isfinite(label) else None
    match = _LABEL.match(str(label).strip().lower())
    if match is None:
        return None
    unit = re.sub(r"[\s_=:\-]", "", match["pre"] + match["post"])
    return float(match["num"]), unit


def _unit_class(unit: str) -> str:
    return "hours" if unit in _HOURS else "days" if unit in _DAYS else unit


def parse_time_labels(column) -> tuple[list[str], np.ndarray, str]:
    """``(labels, times, rule)``: the distinct labels of an ``obs`` column in time order, the
    time of each and how they were read.

    Numbers are taken as they are; strings and categories by :func:`parse_label`; an ordered
    categorical keeps its order (its labels' numbers must increase along it) and, where its
    labels hold no numbers, is numbered ``0, 1, 2, …``.  Raises :class:`DataError` naming
    the labels it cannot read."""
    import pandas as pd  # a dependency of anndata: present wherever AnnData is

    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().unique())
        labels = [c for c in column.cat.categories if c in present]
        ordered = bool(column.cat.ordered)
    elif pd.api.types.is_bool_dtype(column.dtype):
        raise DataError("expected times or time labels, got true/false values")
    elif pd.api.types.is_numeric_dtype(column.dtype):
        values = np.asarray(column, dtype=float)
        distinct = np.unique(values[np.isfinite(values)])
        return [f"{v:g}" for v in distinct], distinct, "numbers"
    else:
        labels = sorted({str(v) for v in column.dropna()})
        ordered = False
    if not labels:
        raise DataError("no time labels (every value is missing)")
    parsed = [parse_label(label) for label in labels]
    unreadable = [str(label) for label, p in zip(labels, parsed) if p is None]
    if unreadable and ordered:
        times = np.arange(len(labels), dtype=float)
        return [str(x) for x in labels], times, "order of the ordered categorical (0, 1, 2, …)"
    if unreadable:
        raise DataError(
            f"cannot read a time from the labels {_listing(unreadable[:12])}"
            f"{' …' if len(unreadable) > 12 else ''}; expected a number in each (day0, D2.5, "
            "E7.5, 12h, 'day 3', 48hr, t=3) or an ordered categorical"
        )
    classes = sorted({_unit_class(u) for _, u in parsed} - {""})
    if len(classes) > 1:
        raise DataError(f"the labels mix units ({', '.join(classes)}): {_listing(labels[:12])}; "
                        "give the times as numbers in one unit")  # fmt: skip
    times = np.array([p[0] for p in parsed])
    if ordered:
        if np.any(np.diff(times) <= 0):
            raise DataError(
                f"the ordered categories {_listing(labels)} read as times "
                f"{', '.join(f'{t:g}' for t in times)}, which do not increase along the order"
            )
        return [str(x) for x in labels], times, "numbers in the labels (ordered categorical)"
    if len(np.unique(times)) < len(times):
        raise DataError(f"different labels read as the same time: {_listing(labels)} → "
                        f"{', '.join(f'{t:g}' for t in times)}")  # fmt: skip
    order = np.argsort(times, kind="stable")
    return [str(labels[i]) for i in order], times[order], "numbers in the labels"


def _cell_times(column, labels, values, where, time_key) -> np.ndarray:
    """The time of every cell; a :class:`DataError` naming cells without one."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(
        column.dtype, pd.CategoricalDtype
    ):
        t = np.asarray(column, dtype=float)
    else:
        lookup = dict(zip(labels, values))
        t = np.array([lookup.get(str(v), np.nan) if not pd.isna(v) else np.nan for v in column])
    missing = ~np.isfinite(t)
    if missing.any():
        first = int(np.argmax(missing))
        raise DataError(f"{where}: {int(missing.sum())} cells have no time in obs[{time_key!r}] "
                        f"(the first is obs row {first}, {column.index[first]!r})")  # fmt: skip
    return t


def _basis_states(adata, where, basis, n_components) -> tuple[np.ndarray, str, int, list[str]]:
    """The first ``n_components`` columns of the basis as a dense float array, the basis'
    name, its width and notes."""
    keys = list(adata.obsm.keys())
    if basis is None:
        if DEFAULT_BASIS not in keys:
            raise DataError(
                f"{where}: no {DEFAULT_BASIS} in obsm to read the cells' states from; obsm has "
                f"{_listing(keys)} (obs has {_listing(adata.obs.columns)}). Choose one with "
                "basis= (CLI: --basis), e.g. basis='X_umap', or basis='X' for the expression "
                "matrix itself (densified)"
            )
        basis = DEFAULT_BASIS
    elif basis != "X" and basis not in keys and f"X_{basis}" in keys:
        basis = f"X_{basis}"
    if basis != "X" and basis not in keys:
        raise DataError(f"{where}: no obsm[{basis!r}]; obsm has {_listing(keys)} (or pass "
                        "basis='X' for the expression matrix)")  # fmt: skip
    matrix = adata.X if basis == "X" else adata.obsm[basis]
    if matrix is None:
        raise DataError(f"{where}: X is empty; choose an obsm basis from {_listing(keys)}")
    if hasattr(matrix, "to_numpy"):  # obsm entries may be DataFrames
        matrix = matrix.to_numpy()
    if len(matrix.shape) != 2:
        raise DataError(f"{where}: {basis} has shape {matrix.shape}; expected (cells, components)")
    width = int(matrix.shape[1])
    if n_components is not None:
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
            raise DataError(f"n_components: expected a whole number, got {n_components!r}")
        if not 1 <= n_components <= width:
            raise DataError(f"n_components: expected 1 to {width} (the columns of {basis}), "
                            f"got {n_components}")  # fmt: skip
        matrix = matrix[:, : int(n_components)]
    notes = []
    sparse = hasattr(matrix, "toarray")
    if sparse or (basis == "X" and matrix.shape[1] > WIDE_X):
        size = matrix.shape[0] * matrix.shape[1] * 8 / 2**20
        note = (f"{basis}: densifying a {'sparse ' if sparse else ''}{matrix.shape[0]} × "
                f"{matrix.shape[1]} matrix ({size:.1f} MiB as float64); an embedding "
                "(basis='X_pca', n_components=K) is usually what to fit")  # fmt: skip
        warnings.warn(note, UserWarning, stacklevel=3)
        notes.append(note)
    states = np.asarray(matrix.toarray() if sparse else matrix)
    try:
        states = states.astype(float)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: {basis} is not numeric ({states.dtype})") from err
    return states, basis, width, notes
