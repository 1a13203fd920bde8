"""Normal equations of data shared out among several processes.

Every field of :class:`~iel.linear.normal_equations.NormalEquations` is a sum over
transitions, so the statistics of all the data are the sum of each process's statistics of
its share: ``A = Σ_p A_p``, ``b = Σ_p b_p``, …  (one all-gather of ``p² + p + d + 5``
numbers per process, whatever the number of transitions).
"""

from __future__ import annotations

import dataclasses

from ..parallel.processes import process_sum
from .normal_equations import NormalEquations


def normal_equations_over_processes(eq: NormalEquations) -> NormalEquations:
    """The statistics of every process's transitions together (``eq`` itself outside
    :func:`iel.parallel.process_sharded` or in a one-process run)."""
    return NormalEquations(*(process_sum(v) for v in dataclasses.astuple(eq)))
