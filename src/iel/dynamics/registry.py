"""Every dynamics by name, and a dynamics rebuilt from its saved description."""

from __future__ import annotations

from typing import Any

from .base import AbstractDynamics
from .bounded_descent import BoundedGradientDescent
from .exponentiated import ExponentiatedGradient
from .gradient_descent import GradientDescent
from .gradient_flow import GradientFlow
from .langevin import Langevin
from .mala import MALA
from .state_langevin import StateLangevin

DYNAMICS: dict[str, type[AbstractDynamics]] = {
    cls.__name__: cls
    for cls in (
        GradientDescent,
        BoundedGradientDescent,
        GradientFlow,
        Langevin,
        MALA,
        ExponentiatedGradient,
        StateLangevin,
    )
}


def dynamics_from_description(description: dict[str, Any]) -> AbstractDynamics:
    """The dynamics :meth:`AbstractDynamics.describe` described (as saved in ``model.json``)."""
    settings = dict(description)
    name = settings.pop("type", None)
    if name not in DYNAMICS:
        raise ValueError(f"unknown dynamics {name!r}; known: {', '.join(DYNAMICS)}")
    return DYNAMICS[name](**settings)
