"""What selection ranks: a candidate model with its code length, and the ranking itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..energies.features import AbstractFeatureLibrary
from ..mdl.codes import CodeLength
from ..model import FittedModel


@dataclass
class Candidate:
    name: str
    kind: str  # "null", "energy", "drift"
    code: CodeLength
    prequential_bits: float | None
    n_parameters: int
    formula: str
    residual_scale: float
    spec: str = ""
    library: AbstractFeatureLibrary | None = None
    support: list[int] = field(default_factory=list)
    theta: np.ndarray | None = None
    fitted: FittedModel | None = None  # for candidates fitted by optimisation

    def row(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "bits": self.code.total,
            "prequential_bits": self.prequential_bits,
            "n_parameters": self.n_parameters,
            "residual_scale": self.residual_scale,
            "temperature": self.code.details.get("temperature"),
            "formula": self.formula,
        }


@dataclass
class Selection:
    candidates: list[Candidate]
    chosen: Candidate
    best_drift: Candidate | None  # None: the drift library was too large to fit (high d)
    null: Candidate
    gradient_system: bool | None
    dynamics: str
    epsilon: float
    seconds: float
    model: FittedModel

    def ranking(self) -> list[Candidate]:
        return sorted(self.candidates, key=lambda c: c.code.total)

    def as_dict(self) -> dict:
        return {
            "chosen": self.chosen.row(),
            "gradient_system": self.gradient_system,
            "gradient_system_margin_bits": (
                None
                if self.best_drift is None
                else self.best_drift.code.total - self.chosen.code.total
            ),
            "dynamics": self.dynamics,
            "null_bits": self.null.code.total,
            "best_drift": None if self.best_drift is None else self.best_drift.row(),
            "epsilon": self.epsilon,
            "ranking": [c.row() for c in self.ranking()],
            "seconds": self.seconds,
        }


def is_formula(candidate) -> bool:
    """A sparse fit whose terms are monomials or Fourier modes (not data-placed bumps)."""
    if candidate.kind == "projected":
        return bool(candidate.code.details.get("inner_formula"))
    if candidate.kind != "energy" or candidate.library is None:
        return False
    names = candidate.library.names()
    placed = any(names[j].startswith("rbf") for j in candidate.support)
    return candidate.name.endswith("(sparse)") and not placed
