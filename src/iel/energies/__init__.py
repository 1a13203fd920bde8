"""Energies: modules mapping one state to a scalar ``E(x)``; gradients by autodiff."""

from .additive_rbf import AdditiveRBF as AdditiveRBF
from .base import AbstractEnergy as AbstractEnergy
from .base import AbstractForceField as AbstractForceField
from .base import ScaledEnergy as ScaledEnergy
from .base import SumEnergy as SumEnergy
from .base import field_from_config as field_from_config
from .bumps import GaussianBumps as GaussianBumps
from .drift import FeatureDrift as FeatureDrift
from .drift import MLPDrift as MLPDrift
from .exp_quadratics import ExpQuadratics as ExpQuadratics
from .features import AbstractFeatureLibrary as AbstractFeatureLibrary
from .features import ConcatLibrary as ConcatLibrary
from .features import CustomFeatures as CustomFeatures
from .features import FeatureEnergy as FeatureEnergy
from .features import Fourier as Fourier
from .features import GaussianRBF as GaussianRBF
from .features import Monomials as Monomials
from .hopfield import HopfieldEnergy as HopfieldEnergy
from .neural import ICNNEnergy as ICNNEnergy
from .neural import MLPEnergy as MLPEnergy
from .particles import ParticleEnergy as ParticleEnergy
from .projected import ProjectedEnergy as ProjectedEnergy
from .quadratic import Quadratic as Quadratic
from .reference import ReferenceEnergy as ReferenceEnergy
from .reference import RotationField as RotationField
