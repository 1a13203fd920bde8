"""Estimators: from data to a :class:`~iel.model.FittedModel`."""

from .base import AbstractEstimator as AbstractEstimator
from .closed_form import OneStepClosedForm as OneStepClosedForm
from .fit import fit as fit
from .likelihood import OneStepLikelihood as OneStepLikelihood
