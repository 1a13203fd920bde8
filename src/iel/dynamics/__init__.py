"""The contractive operators of THEORY §1, as pure steps behind one interface."""

from .base import AbstractDynamics as AbstractDynamics
from .bounded_descent import BoundedGradientDescent as BoundedGradientDescent
from .diffusion_field import PolynomialDiffusion as PolynomialDiffusion
from .exponentiated import ExponentiatedGradient as ExponentiatedGradient
from .gradient_descent import GradientDescent as GradientDescent
from .gradient_flow import GradientFlow as GradientFlow
from .langevin import Langevin as Langevin
from .mala import MALA as MALA
from .registry import DYNAMICS as DYNAMICS
from .registry import dynamics_from_description as dynamics_from_description
from .simulation import SimulationDivergedError as SimulationDivergedError
from .simulation import simulate as simulate
from .state_langevin import StateLangevin as StateLangevin
