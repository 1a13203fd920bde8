"""``iel.fit``: one call from data to a fitted model, choosing the estimator for the data."""

from __future__ import annotations

from pathlib import Path

from ..data.io import Data, load_data
from ..data.trajectories import Trajectories
from ..energies.spec import parse_energy_spec
from ..model import FittedModel
from .closed_form import OneStepClosedForm
from .likelihood import OneStepLikelihood


def fit(
    data: Data | str | Path,
    energy: str = "poly:4",
    *,
    kind: str | None = None,
    ridge: float = 0.0,
    seed: int = 0,
    steps: int = 3000,
    progress=None,
    **options,
) -> FittedModel:
    """Fit an energy to ``data`` (a container or a file path) and return the model.

    Trajectories are fitted with the one-step estimator: in closed form when the family is
    linear in its parameters (``poly``, ``fourier``, ``rbf``, ``quadratic`` and their sums),
    otherwise by optimising the one-step likelihood for at most ``steps`` steps (``progress``
    and further ``options`` go to :class:`OneStepLikelihood`).

    Example:
        >>> model = iel.fit("walk.npz", energy="poly:4")
        >>> model.formula, model.temperature
    """
    if isinstance(data, (str, Path)):
        data = load_data(data, kind=kind)
    if not isinstance(data, Trajectories):
        raise NotImplementedError(
            f"fitting {data.kind} is not available yet: this version fits trajectories "
            "(paired observations). Estimators for snapshots, equilibrium samples and end states "
            "are planned (issues 4 and 6)."
        )
    family = parse_energy_spec(energy, data.dim)
    if family.is_linear:
        return OneStepClosedForm(energy, ridge=ridge, seed=seed).fit(data).model_
    estimator = OneStepLikelihood(energy, seed=seed, steps=steps, progress=progress, **options)
    return estimator.fit(data).model_
