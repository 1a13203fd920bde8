"""iel — inverse energy learning.

Given observations of a system that is minimising something, find what it minimises: an energy
``E(x)`` whose gradient descent, gradient flow, Langevin or mirror-descent dynamics explain the
data.  Importing ``iel`` switches JAX to float64 (see :mod:`iel._config`).
"""

from . import _config  # noqa: F401  (float64 on import)
from .auto import fit as fit
from .compilation_cache import enable_compilation_cache as enable_compilation_cache
from .data import Endpoints as Endpoints
from .data import Samples as Samples
from .data import Snapshots as Snapshots
from .data import Trajectories as Trajectories
from .data import load_data as load_data
from .data import save_data as save_data
from .dynamics import MALA as MALA
from .dynamics import ExponentiatedGradient as ExponentiatedGradient
from .dynamics import GradientDescent as GradientDescent
from .dynamics import GradientFlow as GradientFlow
from .dynamics import Langevin as Langevin
from .dynamics import SimulationDivergedError as SimulationDivergedError
from .dynamics import simulate as simulate
from .energies import FeatureEnergy as FeatureEnergy
from .energies import Fourier as Fourier
from .energies import GaussianRBF as GaussianRBF
from .energies import HopfieldEnergy as HopfieldEnergy
from .energies import ICNNEnergy as ICNNEnergy
from .energies import MLPEnergy as MLPEnergy
from .energies import Monomials as Monomials
from .energies import ParticleEnergy as ParticleEnergy
from .energies import Quadratic as Quadratic
from .model import FittedModel as FittedModel
from .model import load as load
from .systems import SYSTEMS as SYSTEMS
from .systems import get_system as get_system

__version__ = "0.1.0"
