"""Growth rates of cells from proliferation and apoptosis scores (birth minus death).

The birth–death model of Waddington-OT and moscot: a proliferation score ``p`` (e.g. the mean
expression of cell-cycle genes against a reference set) maps to a birth rate, an apoptosis
score ``a`` to a death rate, each by a logistic between a floor and a ceiling,

    ``β(p) = β_min + (β_max − β_min) / (1 + exp(−4 (p − p₀)/w_β))``,
    ``δ(a) = δ_min + (δ_max − δ_min) / (1 + exp(−4 (a − a₀)/w_δ))``,

(``4/w`` the slope at the centre: the rate crosses most of its range over a width ``w`` of
score), and the log growth rate per unit time is ``g = β(p) − δ(a)``: ``exp(g Δt)`` expected
descendants after ``Δt``.  The defaults are those of moscot's ``score_genes_for_marginals``
(rates per day: ``β`` in ``[0.3, 1.7]`` centred at ``p₀ = 0.25`` with width ``0.5``, ``δ`` in
``[0.3, 1.7]`` centred at ``a₀ = 0.1`` with width ``0.2``); with both scores low a cell
neither grows nor shrinks.  Give the time unit of the snapshots' ``t`` in days with
``per_day``.
"""

from __future__ import annotations

import numpy as np

from .validation import DataError, as_float_array, check_finite

BIRTH = {"low": 0.3, "high": 1.7, "centre": 0.25, "width": 0.5}
DEATH = {"low": 0.3, "high": 1.7, "centre": 0.1, "width": 0.2}


def logistic_rate(score: np.ndarray, low: float, high: float, centre: float,
                  width: float) -> np.ndarray:  # fmt: skip
    """``low + (high − low) / (1 + exp(−4 (score − centre)/width))``."""
    if not (np.isfinite([low, high, centre, width]).all() and width > 0 and high >= low):
        raise ValueError(
            f"logistic rate: expected finite low ≤ high and width > 0, got low={low}, "
            f"high={high}, centre={centre}, width={width}"
        )
    return low + (high - low) / (1.0 + np.exp(-4.0 * (score - centre) / width))


def growth_rate_from_scores(
    proliferation=None,
    apoptosis=None,
    *,
    birth: dict | None = None,
    death: dict | None = None,
    per_day: float = 1.0,
) -> np.ndarray:
    """Log growth rate per unit time ``β(p) − δ(a)`` (module docstring) for each cell.

    Args:
        proliferation: per-cell proliferation scores (e.g. ``adata.obs['proliferation']``);
            ``None``: every cell at the birth floor.
        apoptosis: per-cell apoptosis scores; ``None``: every cell at the death floor.
        birth, death: overrides of :data:`BIRTH` / :data:`DEATH` (``low``, ``high``,
            ``centre``, ``width``).
        per_day: the snapshots' time unit in days (rates are per day): ``1/24`` for hours.
    """
    if proliferation is None and apoptosis is None:
        raise ValueError("growth_rate_from_scores: give proliferation and/or apoptosis scores")
    scores = {}
    for name, s in (("proliferation", proliferation), ("apoptosis", apoptosis)):
        if s is not None:
            s = as_float_array(s, f"{name} scores")
            if s.ndim != 1:
                raise DataError(f"{name} scores: expected one score per cell, shape (M,), "
                                f"got {s.shape}")  # fmt: skip
            check_finite(s, f"{name} scores")
            scores[name] = s
    sizes = {len(s) for s in scores.values()}
    if len(sizes) > 1:
        raise DataError(f"proliferation and apoptosis scores: expected one of each per cell, "
                        f"got {len(proliferation)} and {len(apoptosis)}")  # fmt: skip
    if not (np.isfinite(per_day) and per_day > 0):
        raise ValueError(f"per_day: expected the time unit in days (> 0), got {per_day}")
    b, d = {**BIRTH, **(birth or {})}, {**DEATH, **(death or {})}
    n = sizes.pop()
    beta = logistic_rate(scores.get("proliferation", np.full(n, -np.inf)), **b)
    delta = logistic_rate(scores.get("apoptosis", np.full(n, -np.inf)), **d)
    return (beta - delta) * per_day
