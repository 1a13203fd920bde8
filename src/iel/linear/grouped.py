"""The normal equations of many groups of transitions in one pass.

Every field of :class:`~iel.linear.normal_equations.NormalEquations` is a sum over transitions,
so the statistics of group ``g`` (a trajectory, a particle, a simulated dataset) are the sums
over its transitions, and the statistics of any resample with counts ``c_g`` (a bootstrap
draw) are ``Σ_g c_g S_g``: one pass over the data gives every resample's normal equations, and
:func:`iel.linear.uncertainty.linear_intervals` solves them all at once.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..energies.features import AbstractFeatureLibrary
from .normal_equations import NormalEquations

CHUNK = 1024


@eqx.filter_jit
def _accumulate_groups(library: AbstractFeatureLibrary, n_groups: int, x0, dx, h, group):
    p = library.n_features
    d = x0.shape[-1]

    def body(carry, inputs):
        gram, rhs, sq, sdx, sh, n, slh = carry
        xs, dxs, hs, gs = inputs
        live = hs > 0
        safe_h = jnp.where(live, hs, 1.0)
        jac = jax.vmap(library.jacobian)(xs)  # (B, p, d)
        seg = lambda v: jax.ops.segment_sum(v, gs, n_groups)  # noqa: E731
        gram = gram + seg(jnp.einsum("bpd,bqd->bpq", jac * hs[:, None, None], jac))
        rhs = rhs - seg(jnp.einsum("bpd,bd->bp", jac, dxs))
        sq = sq + seg(jnp.sum(dxs**2, axis=1) / safe_h)
        sdx = sdx + seg(dxs)
        sh = sh + seg(hs)
        n = n + seg(jnp.where(live, float(d), 0.0))
        slh = slh + seg(jnp.where(live, jnp.log(safe_h), 0.0))
        return (gram, rhs, sq, sdx, sh, n, slh), None

    zeros = jnp.zeros((n_groups,))
    init = (jnp.zeros((n_groups, p, p)), jnp.zeros((n_groups, p)), zeros,
            jnp.zeros((n_groups, d)), zeros, zeros, zeros)  # fmt: skip
    out, _ = jax.lax.scan(body, init, (x0, dx, h, group))
    return out


def grouped_normal_equations(
    library: AbstractFeatureLibrary,
    x0: np.ndarray,
    dx: np.ndarray,
    h: np.ndarray,
    group: np.ndarray,
    n_groups: int,
) -> NormalEquations:
    """The normal equations of each group: every field gains a leading axis of ``n_groups``
    (``gram``: ``(G, p, p)``, ``rhs``: ``(G, p)``, the scalar sums: ``(G,)``).  ``group[k]``
    in ``[0, n_groups)`` is the group of transition ``k``."""
    x0, dx = np.asarray(x0, dtype=float), np.asarray(dx, dtype=float)
    h, group = np.asarray(h, dtype=float), np.asarray(group, dtype=np.int32)
    if group.shape != h.shape or group.size and (group.min() < 0 or group.max() >= n_groups):
        raise ValueError(
            f"group must hold one index in [0, {n_groups}) per transition ({h.shape}), got "
            f"shape {group.shape}"
            + (f", range [{group.min()}, {group.max()}]" if group.size else "")
        )
    n = h.shape[0]
    pad = (-n) % CHUNK if n else CHUNK
    fill = lambda a: np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)])  # noqa: E731
    chunks = [fill(a).reshape(-1, CHUNK, *a.shape[1:]) for a in (x0, dx, h, group)]
    out = _accumulate_groups(library, int(n_groups), *(jax.device_put(c) for c in chunks))
    gram, rhs, sq, sdx, sh, rows, slh = (np.asarray(v) for v in out)
    return NormalEquations(gram, rhs, sq, sdx, sh, rows, slh)


def resampled(grouped: NormalEquations, counts: np.ndarray) -> NormalEquations:
    """The normal equations of resamples with ``counts`` (``(B, G)``: how often each group is
    drawn): ``Σ_g c_bg S_g`` for every field, with a leading axis of ``B``."""
    counts = np.asarray(counts, dtype=float)
    combine = lambda v: np.tensordot(counts, np.asarray(v), axes=(1, 0))  # noqa: E731
    return NormalEquations(*(combine(getattr(grouped, f)) for f in (
        "gram", "rhs", "sq_over_h", "sum_dx", "sum_h", "n_rows", "sum_log_h")))  # fmt: skip
