"""The energy families ``energy="auto"`` and ``iel select`` choose among, by dimension."""

from __future__ import annotations

SELECT_FAMILIES = ("poly:2", "poly:3", "poly:4", "poly:5", "poly:6", "poly:8", "fourier:3",
                   "rbf:20", "poly:4+rbf:20", "poly:6+rbf:30")  # fmt: skip
# (fourier:K:fit: a periodic part of unknown spacing, fitted by a frequency scan; in up to
# PERIODIC_QUARTIC_DIMENSION dimensions on top of a quartic, above it alone — the quartic's
# C(d+4, 4) − 1 terms make the scan's fixed gradients large)
AUTO_FAMILIES = (
    "poly:2",
    "poly:4",
    "poly:6",
    "poly:4+fourier:4:fit",
    "poly:4+rbf:20",
    "poly:6+rbf:30",
)
PERIODIC_QUARTIC_DIMENSION = 3
PERIODIC_ALONE = "fourier:3:fit"
# compact nonlinear families tried by "auto" in up to EXP_QUADRATIC_DIMENSION dimensions (each
# term has 1 + d + d(d+1)/2 parameters; the variable-projection search is over d + d(d+1)/2)
EXP_QUADRATIC_FAMILIES = ("expquad:2", "expquad:4", "expquad:6")
EXP_QUADRATIC_DIMENSION = 3
HIGH_DIMENSION = 10  # from here on, full polynomial libraries are too large to select among
# from HIGH_DIMENSION on: an additive quartic with 16 one-dimensional bumps per coordinate, for
# sums of one-coordinate shapes no polynomial of low order fits (its Gram is block-diagonal)
ADDITIVE_BUMPS = "poly:4:1+rbf:16:1"
# from d = 21 on: the additive bumps plus the quartic monomials of the coordinate pairs an
# additive fit's residual points to (chains and sparse networks of couplings)
PAIRED_BUMPS = "pairs:4+rbf:16:1"


def auto_families(dim: int, free_parameters: bool = True) -> tuple[str, ...]:
    """The families ``energy="auto"`` selects among in dimension ``dim``.

    Below :data:`HIGH_DIMENSION`: :data:`AUTO_FAMILIES` (from d = 4 with
    :data:`PERIODIC_ALONE` in place of the quartic-plus-Fourier family), and up to
    :data:`EXP_QUADRATIC_DIMENSION` (unless ``free_parameters`` is false) also
    :data:`EXP_QUADRATIC_FAMILIES` (few wells of any orientation, fitted by variable
    projection).  From there on the full degree-4
    library has ``C(d+4, 4) − 1`` monomials (1000 at d = 10, 316 250 at d = 50), so the
    candidates are ANOVA-truncated polynomials: the full quadratic and terms in at most two
    variables (``poly:4:2`` up to d = 20, ``poly:3:2`` up to d = 30); additive ones only
    (``poly:K:1``) beyond, where the pairwise library would have thousands of terms (3 875
    for ``poly:3:2`` at d = 50); at every d ≥ 10 the additive quartic with
    one-dimensional bumps, :data:`ADDITIVE_BUMPS`; from d = 21 on also those bumps with the
    pairwise quartic terms of screened coordinate pairs, :data:`PAIRED_BUMPS`."""
    if dim <= EXP_QUADRATIC_DIMENSION and free_parameters:
        return AUTO_FAMILIES + EXP_QUADRATIC_FAMILIES
    if dim <= PERIODIC_QUARTIC_DIMENSION:
        return AUTO_FAMILIES
    if dim < HIGH_DIMENSION:
        return tuple(PERIODIC_ALONE if "fourier" in f else f for f in AUTO_FAMILIES)
    if dim <= 20:
        return ("poly:2", "poly:4:1", "poly:4:2", ADDITIVE_BUMPS)
    if dim <= 30:
        return ("poly:2", "poly:4:1", "poly:3:2", ADDITIVE_BUMPS, PAIRED_BUMPS)
    return ("poly:2:1", "poly:4:1", "poly:6:1", ADDITIVE_BUMPS, PAIRED_BUMPS)


def streamed_auto_families(dim: int) -> tuple[str, ...]:
    """The families ``energy="auto"`` compares on streamed trajectories (one closed-form pass,
    :mod:`iel.estimators.trajectories.streamed`): those of :func:`auto_families` without
    searched parameters (exponentiated quadratics need many passes)."""
    return tuple(f for f in auto_families(dim, free_parameters=False) if "expquad" not in f)
