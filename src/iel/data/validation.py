"""Checks applied once, where user data enter the library.

Every failure raises :class:`DataError` (a ``ValueError``) whose message says what was
expected and what arrived.
"""

from __future__ import annotations

import numpy as np


class DataError(ValueError):
    """Input data do not have the expected form."""


# The largest magnitude accepted in states and times: squares (variances, code lengths, the
# quadratic features of every family) of larger values overflow double precision (~1.8e308).
LARGEST_MAGNITUDE = 1e150


def as_float_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array; refuses non-numeric data with a clear message."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # ragged lists and the like
        raise DataError(f"{name}: could not be read as an array ({err})") from err
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise DataError(f"{name}: expected real numbers, got an array of dtype {arr.dtype}")
    return arr.astype(np.float64)


def check_rank(arr: np.ndarray, name: str, expected: str, ok: bool) -> None:
    if not ok:
        raise DataError(f"{name}: expected shape {expected}, got shape {tuple(arr.shape)}")


def check_finite(arr: np.ndarray, name: str, where: np.ndarray | None = None) -> None:
    """All entries finite and of a magnitude whose square is finite (:func:`check_magnitude`),
    only where ``where`` is true, if given."""
    bad = ~np.isfinite(arr)
    if where is not None:
        bad = bad & where.reshape(where.shape + (1,) * (arr.ndim - where.ndim))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(arr[idx]) else "inf"
        raise DataError(
            f"{name}: expected finite values, found {int(bad.sum())} non-finite entries "
            f"(first: {kind} at index {idx}); remove those rows or mark them missing with a mask"
        )
    check_magnitude(arr, name, where)


def check_magnitude(arr: np.ndarray, name: str, where: np.ndarray | None = None) -> None:
    """All finite entries at most :data:`LARGEST_MAGNITUDE` in absolute value (only where
    ``where`` is true, if given): larger values overflow when squared."""
    with np.errstate(invalid="ignore", over="ignore"):
        big = np.abs(arr) > LARGEST_MAGNITUDE
    if where is not None:
        big = big & where.reshape(where.shape + (1,) * (arr.ndim - where.ndim))
    if big.any():
        idx = tuple(int(i) for i in np.argwhere(big)[0])
        largest = float(np.max(np.abs(arr[big])))
        divide = (f"e.g. divide by {10.0 ** int(np.floor(np.log10(largest))):.0e}"
                  if np.isfinite(largest) else "e.g. to values of order 1")  # fmt: skip
        raise DataError(
            f"{name}: expected values of magnitude at most {LARGEST_MAGNITUDE:.0e} (their squares "
            f"must fit in double precision), found {int(big.sum())} larger (first: "
            f"{float(arr[idx]):.3g} at index {idx}, largest {largest:.3g}); rescale the data "
            f"({divide}); the fitted energy's units follow"
        )


def check_increasing(t: np.ndarray, name: str, observed: np.ndarray | None = None) -> None:
    """Each row of ``t`` strictly increasing over its observed entries."""
    rows = t.reshape(-1, t.shape[-1])
    masks = np.ones_like(rows, dtype=bool) if observed is None else observed.reshape(rows.shape)
    if masks.all() and np.all(np.isfinite(rows)) and np.all(np.diff(rows, axis=1) > 0):
        return  # every entry observed and in order: no row to report
    for i, (row, m) in enumerate(zip(rows, masks)):
        r = row[m]
        if not np.all(np.isfinite(r)):
            raise DataError(f"{name}: times must be finite, row {i} has {r[~np.isfinite(r)][:3]}")
        steps = np.diff(r)
        if np.any(steps <= 0):
            k = int(np.argmax(steps <= 0))
            where = f"row {i}, " if t.ndim > 1 else ""
            raise DataError(
                f"{name}: expected strictly increasing times, got t[{where}{k}] = {r[k]:g} "
                f"followed by {r[k + 1]:g}"
            )


# how far a row of proportions may sum from one (rounding in files written with ~7 digits)
SIMPLEX_TOLERANCE = 1e-6


def check_simplex(states: np.ndarray, name: str, tolerance: float = SIMPLEX_TOLERANCE) -> None:
    """Every row of ``states`` (``(M, d)``, ``d ≥ 2``) a point inside the probability simplex:
    entries positive (log-ratios need ``x_i > 0``) and summing to one within ``tolerance``."""
    rows = np.asarray(states, dtype=float).reshape(-1, np.shape(states)[-1])
    if rows.shape[-1] < 2:
        raise DataError(
            f"{name}: proportions need at least 2 components per state, got {rows.shape[-1]}"
        )
    check_finite(rows, name)
    low = rows.min(axis=1)
    if np.any(low <= 0):
        row = int(np.argmin(low))
        col = int(np.argmin(rows[row]))
        raise DataError(
            f"{name}: expected positive proportions (every entry > 0), found "
            f"{int(np.sum(rows <= 0))} entries ≤ 0 (smallest {rows[row, col]:.3g} at state "
            f"{row}, component {col}); a component that is absent has no log-ratio: drop it or "
            "replace zeros (e.g. add a pseudo-count and renormalise)"
        )
    sums = rows.sum(axis=1)
    gap = np.abs(sums - 1.0)
    if np.any(gap > tolerance):
        row = int(np.argmax(gap))
        raise DataError(
            f"{name}: expected rows summing to one (proportions on the simplex, within "
            f"{tolerance:g}), found {int(np.sum(gap > tolerance))} rows that do not (worst: "
            f"state {row} sums to {sums[row]:.6g}); divide each row by its sum if these are "
            "counts or unnormalised weights"
        )
