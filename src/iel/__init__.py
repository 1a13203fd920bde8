"""iel — inverse energy learning.

Given observations of a system that is minimising something, find what it minimises: an energy
``E(x)`` whose gradient descent, gradient flow, Langevin or mirror-descent dynamics explain the
data.  Importing ``iel`` switches JAX to float64 (see :mod:`iel._config`).
"""

from . import _config  # noqa: F401  (float64 on import)
from .auto import fit as fit
from .compilation_cache import enable_compilation_cache as enable_compilation_cache
from .data import DataError as DataError
from .data import Endpoints as Endpoints
from .data import Samples as Samples
from .data import Snapshots as Snapshots
from .data import Trajectories as Trajectories
from .data import TrajectoryStore as TrajectoryStore
from .data import growth_rate_from_scores as growth_rate_from_scores
from .data import load_data as load_data
from .data import open_trajectories as open_trajectories
from .data import read_tracks as read_tracks
from .data import save_data as save_data
from .datasets import load_fish_school as load_fish_school
from .dynamics import MALA as MALA
from .dynamics import AbstractDynamics as AbstractDynamics
from .dynamics import BoundedGradientDescent as BoundedGradientDescent
from .dynamics import ExponentiatedGradient as ExponentiatedGradient
from .dynamics import GradientDescent as GradientDescent
from .dynamics import GradientFlow as GradientFlow
from .dynamics import Langevin as Langevin
from .dynamics import PolynomialDiffusion as PolynomialDiffusion
from .dynamics import SimulationDivergedError as SimulationDivergedError
from .dynamics import StateLangevin as StateLangevin
from .dynamics import simulate as simulate
from .energies import AbstractEnergy as AbstractEnergy
from .energies import FeatureEnergy as FeatureEnergy
from .energies import Fourier as Fourier
from .energies import GaussianRBF as GaussianRBF
from .energies import HopfieldEnergy as HopfieldEnergy
from .energies import ICNNEnergy as ICNNEnergy
from .energies import MLPEnergy as MLPEnergy
from .energies import Monomials as Monomials
from .energies import ParticleEnergy as ParticleEnergy
from .energies import Quadratic as Quadratic
from .estimators import AbstractEstimator as AbstractEstimator
from .estimators import ContrastiveDivergence as ContrastiveDivergence
from .estimators import DenoisingScoreMatching as DenoisingScoreMatching
from .estimators import DiffusionClosedForm as DiffusionClosedForm
from .estimators import EndStates as EndStates
from .estimators import ExponentiatedGradientClosedForm as ExponentiatedGradientClosedForm
from .estimators import FreeDriftClosedForm as FreeDriftClosedForm
from .estimators import OneStepClosedForm as OneStepClosedForm
from .estimators import OneStepLikelihood as OneStepLikelihood
from .estimators import Rollout as Rollout
from .estimators import ScoreMatching as ScoreMatching
from .estimators import SnapshotOneStep as SnapshotOneStep
from .estimators import SnapshotRollout as SnapshotRollout
from .estimators import StreamedClosedForm as StreamedClosedForm
from .model import FittedModel as FittedModel
from .model import load as load
from .model import load as load_model
from .parallel import use_devices as use_devices
from .selection import select as select
from .single_cell import fit_anndata as fit_anndata
from .systems import SYSTEMS as SYSTEMS
from .systems import get_system as get_system
from .systems import simulate_system as simulate_system
from .training import Checkpointer as Checkpointer
from .training import CheckpointError as CheckpointError

__version__ = "0.1.0"

__all__ = [
    # the jobs
    "fit",
    "fit_anndata",
    "use_devices",
    "select",
    "simulate",
    "simulate_system",
    "load_model",
    "load",
    "load_data",
    "open_trajectories",
    "read_tracks",
    "save_data",
    "load_fish_school",
    "enable_compilation_cache",
    # data
    "Trajectories",
    "TrajectoryStore",
    "Snapshots",
    "Samples",
    "Endpoints",
    "DataError",
    "growth_rate_from_scores",
    # energies
    "AbstractEnergy",
    "FeatureEnergy",
    "Monomials",
    "Fourier",
    "GaussianRBF",
    "Quadratic",
    "MLPEnergy",
    "ICNNEnergy",
    "HopfieldEnergy",
    "ParticleEnergy",
    # dynamics
    "AbstractDynamics",
    "GradientDescent",
    "BoundedGradientDescent",
    "GradientFlow",
    "Langevin",
    "StateLangevin",
    "PolynomialDiffusion",
    "MALA",
    "ExponentiatedGradient",
    "SimulationDivergedError",
    # estimators
    "AbstractEstimator",
    "OneStepClosedForm",
    "StreamedClosedForm",
    "ExponentiatedGradientClosedForm",
    "DiffusionClosedForm",
    "OneStepLikelihood",
    "Rollout",
    "FreeDriftClosedForm",
    "SnapshotOneStep",
    "SnapshotRollout",
    "ScoreMatching",
    "DenoisingScoreMatching",
    "ContrastiveDivergence",
    "EndStates",
    # results and reference systems
    "FittedModel",
    "Checkpointer",
    "CheckpointError",
    "SYSTEMS",
    "get_system",
]
