"""Exact copies out before a description length counts the data (noise-free runs from one
start repeat the same steps bit for bit: ``N`` copies are one observation, not ``N``)."""

from __future__ import annotations

from ..data.trajectories import Trajectories


def without_copies(data: Trajectories) -> tuple[Trajectories, str | None]:
    """``(data without exact copies, a report note or None)`` (:meth:`Trajectories.distinct`)."""
    distinct, copies = data.distinct()
    if not copies:
        return data, None
    states = len(distinct.observed_states())
    return distinct, (
        f"{copies} of the {data.n_trajectories} trajectories (or pairs) are exact copies of "
        f"others (noise-free runs from the same start): the selection counted each distinct "
        f"one once; the data hold {states} states, and ∇E is determined only there"
    )
