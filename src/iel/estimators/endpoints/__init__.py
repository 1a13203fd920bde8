"""Estimators for end states: where a process settled, with or without its starts."""

from .end_states import EndStates as EndStates
