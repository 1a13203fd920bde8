"""The simplest energy that explains end states, by description length (THEORY §6–7).

End states fix an energy only up to an increasing transform, so what a family must explain is
where the process settles and how often: its minima and the share of the prior each basin
catches.  Each family is fitted with :class:`~iel.estimators.endpoints.EndStates` and coded by
its two-part code (the end states as draws from the mixture over its minima, weighted by the
prior mass of each basin, plus ``½·log₂ n`` bits per parameter).  The null code is the flat
energy ``E ≡ const``, under which the end states are the starts themselves: the prior.  A
family too poor to have as many minima as the data have clusters pays for every end state it
cannot place; a richer family than needed pays for its extra parameters.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..data.populations import Endpoints
from ..estimators.endpoints.end_states import EndStates
from ..model import FittedModel

END_STATE_FAMILIES = ("poly:2", "poly:3", "poly:4", "poly:5", "poly:6", "poly:7", "poly:8")
END_STATE_AUTO_FAMILIES = ("poly:2", "poly:4", "poly:6", "poly:8")


@dataclass
class EndStateCandidate:
    name: str
    bits: float
    n_parameters: int
    n_minima: int
    formula: str
    model: FittedModel | None
    prequential_bits: float | None = None

    def row(self) -> dict:
        return {"name": self.name, "bits": self.bits, "prequential_bits": self.prequential_bits,
                "n_parameters": self.n_parameters, "n_minima": self.n_minima,
                "formula": self.formula}  # fmt: skip


@dataclass
class EndStateSelection:
    candidates: list[EndStateCandidate]
    chosen: EndStateCandidate
    null: EndStateCandidate
    seconds: float

    @property
    def model(self) -> FittedModel:
        return self.chosen.model

    def ranking(self) -> list[EndStateCandidate]:
        return sorted(self.candidates, key=lambda c: c.bits)

    def as_dict(self) -> dict:
        return {
            "data_kind": "endpoints",
            "chosen": self.chosen.row(),
            "null_bits": self.null.bits,
            "energy_explains_end_states": self.chosen.bits < self.null.bits,
            "ranking": [c.row() for c in self.ranking()],
            "code": self.chosen.model.diagnostics["code"],
            "epsilon": self.chosen.model.diagnostics["code_precision"],
            "seconds": self.seconds,
        }


def prequential_end_state_bits(
    data: Endpoints, spec: str, blocks: int = 4, seed: int = 0, **options
) -> float:
    """Prequential code of the end states: the first block coded by the prior (no model yet),
    then each next block by the mixture code of a fit to all blocks before it."""
    if data.starts is not None:
        raise NotImplementedError("prequential end-state codes are for end states without "
                                  "observed starts")  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(data.x))
    parts = np.array_split(order, blocks)
    first = EndStates(spec, seed=seed, **options).fit(Endpoints(data.x[parts[0]]))
    bits = first.model_.diagnostics["null_code_bits"]
    for b in range(1, blocks):
        seen = np.concatenate(parts[:b])
        est = (
            first if b == 1 else EndStates(spec, seed=seed, **options).fit(Endpoints(data.x[seen]))
        )
        bits += est.code_bits(data.x[parts[b]])
    return float(bits)


def select_end_states(
    data: Endpoints,
    families: tuple[str, ...] = END_STATE_FAMILIES,
    *,
    prequential: bool = False,
    seed: int = 0,
    **options,
) -> EndStateSelection:
    """Fit every family in ``families`` to the end states and rank them by code length.

    ``options`` go to :class:`~iel.estimators.endpoints.EndStates` (objective, prior, steps, …).
    With ``prequential=True`` every family is also coded prequentially (four blocks: three
    more fits per family).  The chosen model's report lists the ranking.
    """
    if not isinstance(data, Endpoints):
        raise TypeError(f"select_end_states works on end states, got {type(data).__name__}")
    start = time.perf_counter()
    candidates = []
    null_bits = None
    for spec in families:
        model = EndStates(spec, seed=seed, **options).fit(data).model_
        null_bits = model.diagnostics["null_code_bits"]
        candidates.append(EndStateCandidate(
            spec, model.diagnostics["code_length_bits"], model.n_parameters,
            len(model.diagnostics["minima"]), model.formula, model,
            prequential_end_state_bits(data, spec, seed=seed, **options) if prequential
            else None,
        ))  # fmt: skip
    null = EndStateCandidate("null (E ≡ const: the end states are the starts)", null_bits, 0,
                             0, "E(x) = const", None, null_bits)  # fmt: skip
    best = min(candidates, key=lambda c: c.bits)
    ranking = [c.row() for c in sorted(candidates + [null], key=lambda c: c.bits)]
    chosen = dataclasses.replace(best, model=best.model.with_diagnostics(
        selection={"ranking": ranking, "null_bits": null_bits}))  # fmt: skip
    candidates = [chosen if c is best else c for c in candidates]
    return EndStateSelection(candidates + [null], chosen, null, time.perf_counter() - start)
