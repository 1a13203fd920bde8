"""Estimators for unpaired snapshots of a population: one step on transport or registered
pairs, the JKO condition for re-sampled populations, and the Sinkhorn rollout."""

from .onestep import SnapshotOneStep as SnapshotOneStep
from .rollout import SnapshotRollout as SnapshotRollout
