"""The closed-form one-step fit of trajectories too large for memory: one pass over a
:class:`~iel.data.store.TrajectoryStore`, chunk by chunk.

Every statistic of the closed form is a sum over transitions (THEORY §4): the normal equations
``A = Σ h GᵀG``, ``b = −Σ GᵀΔx`` and the sums ``Σ‖Δx‖²/h``, ``Σ Δx``, ``Σ h``, ``Σ log h``,
``K·d`` (:class:`~iel.linear.normal_equations.NormalEquations`).  The statistics of disjoint
chunks add, so

    ``A = Σ_chunks A_c``,  ``b = Σ_chunks b_c``, …

and everything the in-memory fit reports follows from the sums with no second pass: θ̂ (the
normal equations), the residual ``Σ‖Δx + hGθ̂‖²/h = Σ‖Δx‖²/h − 2θ̂ᵀb + θ̂ᵀAθ̂``, the temperature
``T̂ = residual / (2(Kd − rank))``, ``drift_r2`` (from ``Σ‖Δx‖²/h``, ``Σ Δx`` and ``Σ h``), and
the two-part and null code lengths (:func:`~iel.mdl.codes.two_part_linear` and
:func:`~iel.mdl.codes.null_code` read only these sums, and the precision ``1e-8·max|x|``, whose
``max|x|`` is accumulated in the same pass).  Memory is that of one chunk plus ``p × p``.

What needs the states themselves is taken from bounded random samples, read before the pass
(and said in the model's notes when a sample is smaller than the data):

* data-chosen features (RBF centres and widths, k-means placements): at most ``max_states``
  observed states (:meth:`TrajectoryStore.sample_states`);
* free parameters found by search — exponentiated-quadratic centres and matrices (variable
  projection), a Fourier length scale (``fourier:K:fit``), screened pairs (``pairs:K``): at most
  ``max_refine_transitions`` transitions; the amplitudes are then fitted on every transition;
* the additive constant (``min E = 0``): over the state sample.

Networks are refused: their fits are many passes of an optimiser over the data, not one sum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...data.store import TrajectoryStore
from ...data.trajectories import Trajectories
from ...energies.exp_quadratics import ExpQuadratics
from ...energies.features import AbstractFeatureLibrary, Fourier, library_parts
from ...energies.pair_monomials import PairMonomials
from ...linear.normal_equations import (
    CHUNK,
    NormalEquations,
    _use_moments,
    normal_equations,
)
from ...linear.varpro import refine_free_parameters
from ..base import with_fixed_temperature
from .closed_form import OneStepClosedForm

MAX_STATES = 100_000  # states sampled for data-chosen features (k-means uses 20 000 of them)
MAX_REFINE_TRANSITIONS = 200_000  # transitions sampled for searched free parameters


@dataclass(frozen=True)
class StreamSummary:
    """What one pass over a store read."""

    n_transitions: int
    n_chunks: int
    chunk_transitions: int  # the most transitions a chunk may hold
    largest_chunk: int  # the most a chunk held
    largest_chunk_bytes: int  # bytes of that chunk's arrays (x0, dx, h)
    low: np.ndarray
    high: np.ndarray
    seconds: float

    def describe(self) -> str:
        return (
            f"read {self.n_transitions:,} transitions in {self.n_chunks:,} chunks of "
            f"≤ {self.chunk_transitions:,} (largest chunk {self.largest_chunk_bytes / 2**20:.3g}"
            f" MiB of arrays) in {self.seconds:.3g} s"
        ).replace(",", " ")

    def as_dict(self) -> dict:
        return {
            "n_transitions": self.n_transitions,
            "n_chunks": self.n_chunks,
            "chunk_transitions": self.chunk_transitions,
            "largest_chunk_bytes": self.largest_chunk_bytes,
            "seconds": self.seconds,
        }


def streamed_normal_equations(
    store: TrajectoryStore,
    libraries: list[AbstractFeatureLibrary],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[NormalEquations], StreamSummary]:
    """The normal equations of every library in ``libraries`` over all transitions of
    ``store``, in one pass (each chunk read once and added to each library's sums); and what
    the pass read.  ``progress(done, total)`` is called after each chunk."""
    start = time.perf_counter()
    total = store.n_chunks()
    sums: list[NormalEquations | None] = [None] * len(libraries)
    low = np.full(store.dim, np.inf)
    high = np.full(store.dim, -np.inf)
    count = largest = largest_bytes = 0
    size = store.chunk_transitions
    rows = size if size <= CHUNK else -(-size // CHUNK) * CHUNK  # one compiled shape
    for done, chunk in enumerate(store.chunks(), start=1):
        low, high = np.minimum(low, chunk.low), np.maximum(high, chunk.high)
        if chunk.n_transitions:
            count += chunk.n_transitions
            largest = max(largest, chunk.n_transitions)
            largest_bytes = max(largest_bytes, chunk.x0.nbytes + chunk.dx.nbytes + chunk.h.nbytes)
            padded = None
            for i, library in enumerate(libraries):
                if _use_moments(library):  # NumPy sums: nothing compiled, nothing to pad
                    eq = normal_equations(library, chunk.x0, chunk.dx, chunk.h)
                else:
                    padded = _padded(chunk, rows) if padded is None else padded
                    eq = normal_equations(library, *padded)
                sums[i] = eq if sums[i] is None else sums[i] + eq
        if progress is not None:
            progress(done, total)
    summary = StreamSummary(
        count,
        total,
        store.chunk_transitions,
        largest,
        largest_bytes,
        low,
        high,
        time.perf_counter() - start,
    )
    return sums, summary


def _padded(chunk, rows: int):
    """The chunk's ``(x0, dx, h, w)`` padded with zero rows of weight 0 to ``rows`` rows, so
    every chunk has one shape (one compiled accumulation); padded rows add nothing to any
    sum, and the weights ``w = 1`` of the real rows leave every sum as it was."""
    k, d = chunk.x0.shape
    pad = rows - k
    w = np.concatenate([np.ones(k), np.zeros(pad)])
    if not pad:
        return chunk.x0, chunk.dx, chunk.h, w
    zeros = np.zeros((pad, d))
    return (
        np.concatenate([chunk.x0, zeros]),
        np.concatenate([chunk.dx, zeros]),
        np.concatenate([chunk.h, np.zeros(pad)]),
        w,
    )


def _spaced(n: int) -> str:
    """``n`` with thin groups of three digits: ``100 000 000``."""
    return f"{n:,}".replace(",", " ")


def needs_transitions(library: AbstractFeatureLibrary) -> bool:
    """Whether placing ``library`` needs transitions, not only states (a search or scan)."""
    return any(
        isinstance(p, (ExpQuadratics, PairMonomials)) or (isinstance(p, Fourier) and p.free_length)
        for p in library_parts(library)
    )


@dataclass(eq=False)
class StreamedClosedForm(OneStepClosedForm):
    """:class:`OneStepClosedForm` over a :class:`~iel.data.store.TrajectoryStore`, in one
    pass of bounded memory (module docstring).  On the same data it gives the in-memory fit's
    coefficients, temperature and code lengths (up to the order of summation) when the state
    and transition samples are the whole data.

    Args (besides those of :class:`OneStepClosedForm`):
        max_states: states sampled for data-chosen features and the additive constant.
        max_refine_transitions: transitions sampled for searched free parameters.
        progress: ``progress(done, total)`` after each chunk.
    """

    max_states: int = MAX_STATES
    max_refine_transitions: int = MAX_REFINE_TRANSITIONS
    progress: Callable[[int, int], None] | None = None

    def fit(self, data, weights: np.ndarray | None = None) -> StreamedClosedForm:
        if isinstance(data, Trajectories):
            data = TrajectoryStore.from_trajectories(data)
        if not isinstance(data, TrajectoryStore):
            raise TypeError(
                f"StreamedClosedForm fits a TrajectoryStore (or Trajectories), got "
                f"{type(data).__name__}"
            )
        if weights is not None:
            raise ValueError("the streamed closed form takes no weights")
        start = time.perf_counter()
        family = self._streamable_family(data.dim)
        library, states, notes = self.placed_library(family.library, data)
        (eq,), summary = streamed_normal_equations(data, [library], progress=self.progress)
        self.summary_ = summary
        model = self.model_from_stream(data, family, library, eq, summary, states, notes, start)
        self.model_ = with_fixed_temperature(model, self.temperature)
        return self

    def _streamable_family(self, dim: int):
        try:
            return self._family(dim)
        except ValueError as err:
            raise ValueError(
                f"{err}. Streamed trajectories are fitted in one pass by closed forms only: a "
                "network needs many passes of an optimiser. Choose a linear family (poly:4, "
                "rbf:50, poly:4+rbf:20, expquad:2), or fit the network in memory on part of the "
                "data (TrajectoryStore.subset(rows))"
            ) from err

    def placed_library(self, library: AbstractFeatureLibrary, data: TrajectoryStore):
        """``library`` placed on a state sample (and its free parameters fitted on a
        transition sample); the state sample; notes saying what was sampled."""
        notes = []
        states = data.sample_states(self.max_states, seed=self.seed)
        if len(states) < data.n_observed_states:
            notes.append(
                "streamed: data-chosen features and the additive constant use a random sample "
                f"of {_spaced(len(states))} of the {_spaced(data.n_observed_states)} observed "
                "states"
            )
        library = library.adapt(states, seed=self.seed)
        if needs_transitions(library):
            x0, dx, h = data.sample_transitions(self.max_refine_transitions, seed=self.seed)
            library = refine_free_parameters(library, states, x0, dx, h, seed=self.seed)
            if len(h) < data.n_transitions:
                notes.append(
                    "streamed: free parameters (centres, matrices, length scales, pairs) were "
                    f"fitted on {_spaced(len(h))} of the {_spaced(data.n_transitions)} "
                    "transitions; the coefficients on all of them"
                )
        return library, states, notes

    def model_from_stream(
        self, data, family, library, eq, summary: StreamSummary, states, notes, start: float
    ):
        """The closed-form model from streamed sums (temperature not yet fixed)."""
        scale = float(max(np.max(np.abs(summary.low)), np.max(np.abs(summary.high))))
        model = self._model(data, family, library, eq, states, summary.n_transitions, scale, start)
        model = model.replace(
            step_size=data.typical_step(), data_low=summary.low, data_high=summary.high
        )
        model = model.with_diagnostics(streamed=summary.as_dict())
        return model.with_notes(*notes) if notes else model


def fit_streamed_families(
    store: TrajectoryStore,
    families: tuple[str, ...],
    *,
    ridge: float = 0.0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    max_states: int = MAX_STATES,
):
    """Fit every (linear) family of ``families`` to ``store`` in one pass and return the
    model with the shortest dense two-part code (``code_length_bits``), with a note naming
    the codes of the others.  Every family's normal equations are accumulated from the same
    chunks; each code comes from its own sums (module docstring).  Returns the model."""
    start = time.perf_counter()
    placed = []
    for spec in families:
        est = StreamedClosedForm(spec, ridge=ridge, seed=seed, max_states=max_states)
        family = est._streamable_family(store.dim)
        library, states, notes = est.placed_library(family.library, store)
        placed.append((spec, est, family, library, states, notes))
    libraries = [p[3] for p in placed]
    eqs, summary = streamed_normal_equations(store, libraries, progress=progress)
    models = []
    for (spec, est, family, library, states, notes), eq in zip(placed, eqs):
        models.append(
            (spec, est.model_from_stream(store, family, library, eq, summary, states, notes, start))
        )
    best_spec, best = min(models, key=lambda m: m[1].diagnostics["code_length_bits"])
    codes = ", ".join(f"{spec} {m.diagnostics['code_length_bits']:.6g}" for spec, m in models)
    return best.replace(energy_spec=f"auto → {best_spec} (dense)").with_notes(
        f"energy 'auto' on streamed data: dense closed-form fits from one pass over "
        f"{_spaced(summary.n_transitions)} transitions, chosen by two-part code (bits: {codes}); "
        "sparse formulas, prequential codes, exponentiated-quadratic searches, networks and "
        "the gradient-system test need the data in memory and were not run "
        "(iel.fit(store.subset(rows)) runs them on part of the data)"
    )
