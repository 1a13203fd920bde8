"""Estimators: from data to a :class:`~iel.model.FittedModel`, one folder per data kind."""

from .base import AbstractEstimator as AbstractEstimator
from .endpoints import EndStates as EndStates
from .samples import ContrastiveDivergence as ContrastiveDivergence
from .samples import DenoisingScoreMatching as DenoisingScoreMatching
from .samples import ScoreMatching as ScoreMatching
from .snapshots import SnapshotOneStep as SnapshotOneStep
from .snapshots import SnapshotRollout as SnapshotRollout
from .trajectories import DiffusionClosedForm as DiffusionClosedForm
from .trajectories import ExponentiatedGradientClosedForm as ExponentiatedGradientClosedForm
from .trajectories import FreeDriftClosedForm as FreeDriftClosedForm
from .trajectories import OneStepClosedForm as OneStepClosedForm
from .trajectories import OneStepLikelihood as OneStepLikelihood
from .trajectories import Rollout as Rollout
from .trajectories import StreamedClosedForm as StreamedClosedForm
from .trajectories import constant_temperature_test as constant_temperature_test
