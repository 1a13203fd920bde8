"""The contractive operators of THEORY §1, as pure steps behind one interface."""

from .base import AbstractDynamics as AbstractDynamics
from .exponentiated import ExponentiatedGradient as ExponentiatedGradient
from .gradient_descent import GradientDescent as GradientDescent
from .gradient_flow import GradientFlow as GradientFlow
from .langevin import Langevin as Langevin
from .mala import MALA as MALA
from .simulation import SimulationDivergedError as SimulationDivergedError
from .simulation import simulate as simulate
