"""``energy="auto"`` on the pairs a snapshot fit makes: which family explains the paired steps
most simply (:class:`~iel.estimators.SnapshotOneStep` takes this as its ``select``)."""

from __future__ import annotations

from ..data.trajectories import Trajectories
from ..model import FittedModel
from .distinct import without_copies
from .families import EXP_QUADRATIC_DIMENSION, HIGH_DIMENSION, auto_families
from .trajectories import select

SNAPSHOT_AUTO_NOTE = (
    "snapshot auto: exponentiated quadratics (expquad:M) are not among the candidates — on "
    "noise-free pairs their variable-projection search runs to its step limit and takes tens "
    "of seconds; ask for them with energy='expquad:6'"
)
# the network tried by snapshot auto when no formula explains the pairs, and its L-BFGS budget:
# 500 iterations below HIGH_DIMENSION (a fit of a few seconds in the plane), 1500 from there on,
# where the network reads ten or more inputs and 500 iterations leave it short (JKOnet* suite,
# d = 10, `python benchmarks/jkonet_suite.py --dim 10` at ce7b878 → e739485: double_exp
# 2.1e-3 → 1.4e-3, holder_table 3.9e-2 → 3.2e-2)
SNAPSHOT_NETWORK_STEPS, HIGH_DIMENSION_NETWORK_STEPS = 500, 1500
# below HIGH_DIMENSION the network is one hidden layer of 64 units: in the plane 257 weights, a
# fifth of the 32×32 network's, so its code is shorter and each iteration cheaper (JKOnet*
# suite, d = 2: see the README's table); from HIGH_DIMENSION on the 32×32 network is kept (the
# d = 10–50 tables were measured with it; one hidden layer was not tried there)
SNAPSHOT_NETWORK, HIGH_DIMENSION_NETWORK = "mlp:64", "mlp:32x32:radial"


def select_snapshot_pairs(pairs: Trajectories, seed: int) -> FittedModel:
    """``energy="auto"`` on the paired steps: description-length selection over the fixed
    families (:func:`~iel.selection.families.auto_families` without free parameters) and,
    unless a sparse formula explains the pairs exactly (residuals at the data precision), a
    small network (:data:`SNAPSHOT_NETWORK`, full-batch L-BFGS; from ``HIGH_DIMENSION`` on
    :data:`HIGH_DIMENSION_NETWORK` with more iterations), coded by its parameter count.  The
    general-drift comparison is not made: OT pairs are gradient displacements by
    construction.  Exact copies among the pairs are counted once (:func:`without_copies`)."""

    pairs, copies_note = without_copies(pairs)
    families = auto_families(pairs.dim, free_parameters=False)
    high = pairs.dim >= HIGH_DIMENSION
    model = select(
        pairs, families, prequential=False, seed=seed, search_free=False,
        networks=(HIGH_DIMENSION_NETWORK if high else SNAPSHOT_NETWORK,),
        network_steps=HIGH_DIMENSION_NETWORK_STEPS if high else SNAPSHOT_NETWORK_STEPS,
        network_optimiser="lbfgs", gradient_test=False,
    ).model  # fmt: skip
    model = model.with_diagnostics(
        gradient_system_note="not tested: optimal-transport pairs are displaced by the gradient "
        "of a convex function (Brenier's theorem), so a non-gradient drift cannot show in them"
    )
    if copies_note:
        model = model.with_notes(copies_note)
    return model.with_notes(SNAPSHOT_AUTO_NOTE) if pairs.dim <= EXP_QUADRATIC_DIMENSION else model
