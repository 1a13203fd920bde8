"""Estimators for trajectories: the one-step fits (closed form, likelihood), the rollout and a
general non-gradient drift."""

from .closed_form import OneStepClosedForm as OneStepClosedForm
from .diffusion import DiffusionClosedForm as DiffusionClosedForm
from .diffusion import constant_temperature_test as constant_temperature_test
from .drift import FreeDriftClosedForm as FreeDriftClosedForm
from .likelihood import OneStepLikelihood as OneStepLikelihood
from .mirror_descent import ExponentiatedGradientClosedForm as ExponentiatedGradientClosedForm
from .rollout import Rollout as Rollout
from .streamed import StreamedClosedForm as StreamedClosedForm
