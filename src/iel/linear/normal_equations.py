"""The normal equations of the one-step likelihood for an energy linear in its parameters.

For ``E_θ = θᵀφ`` and transitions ``(x_k, Δx_k, h_k)`` with weights ``w_k``, writing
``G_k = ∇φ(x_k)ᵀ`` (``d × p``), the one-step negative log-likelihood is minimised by

    ``(Σ_k w_k h_k G_kᵀG_k) θ = −Σ_k w_k G_kᵀ Δx_k``.

All sums are accumulated in one pass over the data (in chunks, so memory stays bounded; from
data moments for monomial libraries); the residual sum comes from the same sums,
``Σ‖Δx‖²/h − 2θᵀb + θᵀAθ``, with no second pass.  The system is solved after Jacobi scaling
with a symmetric eigendecomposition, so features whose gradients are (nearly) collinear on the
data are reported rather than blowing up.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..energies.features import (
    AbstractFeatureLibrary,
    Monomials,
    graded_exponents,
)
from ..parallel.devices import device_sum, fit_devices

CHUNK = 4096


@dataclass(frozen=True)
class NormalEquations:
    """Sufficient statistics of the one-step likelihood for a linear energy."""

    gram: np.ndarray  # A = Σ w h GᵀG   (p, p)
    rhs: np.ndarray  # b = −Σ w GᵀΔx   (p,)
    sq_over_h: float  # Σ w ‖Δx‖²/h
    sum_dx: np.ndarray  # Σ w Δx   (d,)
    sum_h: float  # Σ w h
    n_rows: float  # Σ w · d  (scalar observations)
    sum_log_h: float = 0.0  # Σ w log h

    def __add__(self, other: NormalEquations) -> NormalEquations:
        """The statistics of two disjoint sets of transitions together: every field is a sum
        over transitions, so chunks, files, devices or hosts combine by adding them."""
        if not isinstance(other, NormalEquations):
            return NotImplemented
        if self.gram.shape != other.gram.shape or self.sum_dx.shape != other.sum_dx.shape:
            raise ValueError(
                "normal equations of different libraries cannot be added: "
                f"{self.gram.shape}/{self.sum_dx.shape} and {other.gram.shape}/{other.sum_dx.shape}"
            )
        return NormalEquations(
            self.gram + other.gram,
            self.rhs + other.rhs,
            self.sq_over_h + other.sq_over_h,
            self.sum_dx + other.sum_dx,
            self.sum_h + other.sum_h,
            self.n_rows + other.n_rows,
            self.sum_log_h + other.sum_log_h,
        )


def _no_increment_sums(d: int):
    return (jnp.zeros(()), jnp.zeros(d), jnp.zeros(()), jnp.zeros(()))


def _add_increment_sums(sums, dxs, hs, ws):
    """The sums every accumulator shares: ``Σ w‖Δx‖²/h``, ``Σ wΔx``, ``Σ wh`` and
    ``Σ w log h`` (padded rows have ``h = 0``, ``Δx = 0`` and add nothing)."""
    sq, sdx, sh, slh = sums
    safe_h = jnp.where(hs > 0, hs, 1.0)
    return (
        sq + jnp.sum(ws * jnp.sum(dxs**2, axis=1) / safe_h),
        sdx + jnp.sum(dxs * ws[:, None], axis=0),
        sh + jnp.sum(ws * hs),
        slh + jnp.sum(ws * jnp.log(safe_h)),
    )


@eqx.filter_jit
def _accumulate(library: AbstractFeatureLibrary, x0, dx, h, w):
    p = library.n_features
    d = x0.shape[-1]

    def body(carry, inputs):
        gram, rhs, shared = carry
        xs, dxs, hs, ws = inputs
        ws = jnp.ones_like(hs) if ws is None else ws
        jac = jax.vmap(library.jacobian)(xs)  # (B, p, d)
        gram = gram + jnp.einsum("bpd,bqd->pq", jac * (ws * hs)[:, None, None], jac)
        rhs = rhs - jnp.einsum("bpd,bd->p", jac, dxs * ws[:, None])
        return (gram, rhs, _add_increment_sums(shared, dxs, hs, ws)), None

    init = (jnp.zeros((p, p)), jnp.zeros(p), _no_increment_sums(d))
    out, _ = jax.lax.scan(body, init, (x0, dx, h, w))
    return out


@eqx.filter_jit
def _accumulate_sparse(library: AbstractFeatureLibrary, columns, coupled: bool, x0, dx, h, w):
    """:func:`_accumulate` for a library whose features each depend on at most two coordinates
    (``columns``: ``(p, 2)``, see ``feature_coordinates``).  Row ``i`` of ``∇φ`` is
    ``D1_i e_{c1} + D2_i e_{c2}``; two forward-mode products per state give both:
    ``∇φ·1 = D1 + D2`` and ``∇φ·(0, 1, …, d−1) = c1 D1 + c2 D2`` (one product when no feature
    is ``coupled``).  Then ``A = Σ h Σ_ab D_a D_bᵀ [c_a = c_b]`` and
    ``b = −Σ (D1 Δx_{c1} + D2 Δx_{c2})``: ``O(p²)`` per state instead of ``O(p² d)``."""
    p = library.n_features
    d = x0.shape[-1]
    first, second = columns[:, 0], columns[:, 1]
    two = second >= 0
    slots = [first, second] if coupled else [first]
    masks = [[(a[:, None] == b[None, :]).astype(x0.dtype) for b in slots] for a in slots]
    ones = jnp.ones(d, dtype=x0.dtype)
    index = jnp.arange(d, dtype=x0.dtype)

    def derivatives(x):
        total = jax.jvp(library, (x,), (ones,))[1]
        if not coupled:
            return [total]
        weighted = jax.jvp(library, (x,), (index,))[1]
        gap = jnp.where(two, second - first, 1).astype(x.dtype)
        d2 = jnp.where(two, (weighted - first.astype(x.dtype) * total) / gap, 0.0)
        return [total - d2, d2]

    def body(carry, inputs):
        gram, rhs, shared = carry
        xs, dxs, hs, ws = inputs
        ws = jnp.ones_like(hs) if ws is None else ws
        parts = jax.vmap(derivatives)(xs)
        for a, da in enumerate(parts):
            for b, db in enumerate(parts):
                gram = gram + ((da * (ws * hs)[:, None]).T @ db) * masks[a][b]
            rhs = rhs - jnp.sum(da * dxs[:, slots[a]] * ws[:, None], axis=0)
        return (gram, rhs, _add_increment_sums(shared, dxs, hs, ws)), None

    init = (jnp.zeros((p, p)), jnp.zeros(p), _no_increment_sums(d))
    out, _ = jax.lax.scan(body, init, (x0, dx, h, w))
    return out


def _chunked(arr: np.ndarray, chunk: int, fill: float = 0.0) -> np.ndarray:
    """``arr`` padded with ``fill`` to whole chunks and reshaped to ``(n_chunks, chunk, …)``."""
    n = arr.shape[0]
    n_chunks = max(1, -(-n // chunk))
    pad = n_chunks * chunk - n
    if pad:
        arr = np.concatenate([arr, np.full((pad, *arr.shape[1:]), fill)])
    return arr.reshape((n_chunks, chunk, *arr.shape[1:]))


def _chunk_groups(arrays, chunk: int):
    """Split rows into whole chunks (reshaped views, no copy) and one zero-padded remainder
    chunk.  ``None`` entries stay ``None``."""
    n = arrays[0].shape[0]
    whole = (n // chunk) * chunk
    groups = []
    if whole:
        groups.append(
            tuple(
                None if a is None else jax.device_put(a[:whole].reshape(-1, chunk, *a.shape[1:]))
                for a in arrays
            )
        )
    if n > whole:
        groups.append(
            tuple(None if a is None else jax.device_put(_chunked(a[whole:], chunk)) for a in arrays)
        )
    return groups


def _block_sums(spec, x0, dx, h, w):
    """The sums of one device's block of rows (:func:`~iel.parallel.devices.device_sum`):
    the block in chunks of at most ``CHUNK`` rows, accumulated as on one device."""
    library, columns, coupled = spec
    chunk = min(CHUNK, x0.shape[0])
    blocks = [None if a is None else a.reshape(-1, chunk, *a.shape[1:]) for a in (x0, dx, h, w)]
    if columns is None:
        return _accumulate(library, *blocks)
    return _accumulate_sparse(library, columns, coupled, *blocks)


MAX_MOMENTS = 2000


@functools.lru_cache(maxsize=32)
def _moment_plan_cached(dim: int, degree: int):
    return _moment_plan(Monomials(dim, degree))


def _moment_plan(library: Monomials):
    """Index tables turning data moments into the normal equations of a monomial energy.

    With ``φ_p = x^{α_p}``: ``A_pq = Σ_j α_pj α_qj Σ_k w h x^{α_p+α_q−2e_j}`` and
    ``b_p = −Σ_j α_pj Σ_k w Δx_j x^{α_p−e_j}``, so one pass computing the moments
    ``Σ w h x^β`` (``|β| ≤ 2D−2``) and ``Σ w Δx_j x^γ`` (``|γ| ≤ D−1``) replaces the
    ``p² d`` products per transition of the generic Gram accumulation.  Moments are
    accumulated as matrices ``M[head, k] = Σ w h x_head^{β'} x_last^k`` (one small GEMM per
    chunk), where ``head`` runs over monomials of the first ``d − 1`` coordinates.
    """
    d, deg = library.dim, library.degree
    top = 2 * deg - 2
    heads = graded_exponents(d - 1, top, start=0)
    head_index = {e: i for i, e in enumerate(heads)}
    low_heads = len(graded_exponents(d - 1, deg - 1, start=0))  # a prefix of ``heads``

    def where(beta):
        return head_index[tuple(beta[:-1])], int(beta[-1])

    alphas = np.asarray(library.exponents)
    rows, cols, coef, h_head, h_last = [], [], [], [], []
    for p, ap in enumerate(alphas):
        for q, aq in enumerate(alphas):
            for j in range(d):
                if ap[j] and aq[j]:
                    beta = ap + aq
                    beta[j] -= 2
                    rows.append(p)
                    cols.append(q)
                    coef.append(ap[j] * aq[j])
                    i, k = where(beta)
                    h_head.append(i)
                    h_last.append(k)
    b_terms = []
    for p, ap in enumerate(alphas):
        for j in range(d):
            if ap[j]:
                beta = ap - np.eye(d, dtype=int)[j]
                b_terms.append((p, j, int(ap[j]), *where(beta)))
    gram_plan = (rows, cols, np.asarray(coef, float), h_head, h_last)
    return heads, low_heads, top, deg, gram_plan, b_terms


def _use_moments(library: AbstractFeatureLibrary) -> bool:
    if not isinstance(library, Monomials) or library.degree < 1:
        return False
    if library.max_vars is not None:
        return False  # the moment plan assumes every monomial up to the degree
    top = 2 * library.degree - 2
    n_moments = math.comb(library.dim - 1 + top, library.dim - 1) * (top + 1)
    return n_moments <= min(MAX_MOMENTS, library.n_features**2 * library.dim)


def _monomial_rows(cols: np.ndarray, exponents) -> np.ndarray:
    """``[Π_j x_j^{α_j} for α in exponents]`` for the states in the columns of ``cols``
    (``(d, B)``): ``(len(exponents), B)``, powers by repeated multiplication."""
    top = max((max(a) for a in exponents), default=0)
    powers = [[np.ones_like(c), c] for c in cols]
    for col, c in zip(powers, cols):
        while len(col) <= top:
            col.append(col[-1] * c)
    out = np.empty((len(exponents), cols.shape[1]))
    for row, alpha in enumerate(exponents):
        factors = [powers[j][a] for j, a in enumerate(alpha) if a]
        term = factors[0] if factors else np.ones(cols.shape[1])
        for f in factors[1:]:
            term = term * f
        out[row] = term
    return out


def _accumulate_moments(heads, low_heads: int, top: int, deg: int, x0, dx, h, w):
    """The data moments of :func:`_moment_plan` and the shared sums, in NumPy ``CHUNK`` rows
    at a time: a few small matrix products per chunk, nothing for JAX to compile (as a
    jitted scan each degree and dimension was a program of its own, about a second of
    compiling per snapshot fit on two cores)."""
    n, d = x0.shape
    w = np.ones(n) if w is None else w
    last_powers = tuple((k,) for k in range(top + 1))
    m_h = np.zeros((len(heads), top + 1))
    m_dx = np.zeros((d, low_heads, deg))
    sq = slh = sh = 0.0
    sdx = np.zeros(d)
    for lo in range(0, n, CHUNK):
        xs, dxs, hs, ws = (a[lo : lo + CHUNK] for a in (x0, dx, h, w))
        cols = xs.T
        head = _monomial_rows(cols[:-1], heads) if d > 1 else np.ones((1, len(xs)))
        tail = _monomial_rows(cols[-1:], last_powers)
        m_h += (head * (ws * hs)[None, :]) @ tail.T
        low_head, low_tail = head[:low_heads], tail[:deg]
        weighted = dxs * ws[:, None]
        for j in range(d):
            m_dx[j] += (low_head * weighted[:, j][None, :]) @ low_tail.T
        safe_h = np.where(hs > 0, hs, 1.0)
        sq += float(np.sum(ws * np.sum(dxs**2, axis=1) / safe_h))
        sdx += np.sum(weighted, axis=0)
        sh += float(np.sum(ws * hs))
        slh += float(np.sum(ws * np.log(safe_h)))
    return m_h, m_dx, (sq, sdx, sh, slh)


def normal_equations(
    library: AbstractFeatureLibrary,
    x0: np.ndarray,
    dx: np.ndarray,
    h: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    use_moments: bool | None = None,
    use_sparse: bool | None = None,
) -> NormalEquations:
    """Accumulate the sufficient statistics over transitions ``x0 → x0 + dx`` taking time
    ``h``, each with an optional weight (default 1).

    Monomial libraries of small dimension use data moments (see :func:`_moment_plan`);
    ``use_moments=False`` forces the generic Gram accumulation.  Libraries whose features
    each depend on at most two coordinates use forward-mode products
    (:func:`_accumulate_sparse`); ``use_sparse=False`` forces full Jacobians.
    """
    n_transitions = x0.shape[0]
    chunk = min(CHUNK, max(n_transitions, 1))
    w = None if weights is None else np.asarray(weights, dtype=float)
    if use_moments is None:
        use_moments = _use_moments(library)
    if use_moments:
        heads, low_heads, top, deg, gram_plan, b_terms = _moment_plan_cached(
            library.dim, library.degree
        )
        f64 = [None if a is None else np.asarray(a, dtype=float) for a in (x0, dx, h, w)]
        m_h, m_dx, (sq, sdx, sh, slh) = _accumulate_moments(heads, low_heads, top, deg, *f64)
        rows, cols, coef, h_head, h_last = gram_plan
        gram = np.zeros((library.n_features, library.n_features))
        np.add.at(gram, (rows, cols), coef * m_h[h_head, h_last])
        rhs = np.zeros(library.n_features)
        for p, j, a, head, power in b_terms:
            rhs[p] -= a * m_dx[j, head, power]
    else:
        # padded rows have dx = 0, h = 0 and weight 0, so they add nothing to any sum
        columns = library.feature_coordinates() if use_sparse is not False else None
        coupled = columns is not None and bool(np.any(columns[:, 1] >= 0))
        if len(fit_devices()) > 1:  # rows split over the devices, sums added across them
            spec = (library, None if columns is None else jnp.asarray(columns), coupled)
            sums = device_sum(_block_sums, spec, (x0, dx, h, w), multiple=CHUNK)
        else:
            groups = _chunk_groups((x0, dx, h, w), chunk)
            if columns is None:
                chunks = [_accumulate(library, *g) for g in groups]
            else:
                columns = jax.device_put(columns)
                chunks = [_accumulate_sparse(library, columns, coupled, *g) for g in groups]
            sums = jax.tree_util.tree_map(lambda *parts: sum(np.asarray(v) for v in parts), *chunks)
        gram, rhs, (sq, sdx, sh, slh) = sums
    return NormalEquations(
        np.asarray(gram),
        np.asarray(rhs),
        float(sq),
        np.asarray(sdx),
        float(sh),
        float((n_transitions if w is None else w.sum()) * x0.shape[-1]),
        float(slh),
    )


@dataclass(frozen=True)
class LinearSolution:
    theta: np.ndarray
    rank: int
    dropped: list[int]  # features with no gradient signal on the data
    condition: float


def solve_normal_equations(
    eq: NormalEquations, ridge: float = 0.0, rcond: float = 1e-13
) -> LinearSolution:
    """``(A + ridge·diag(A)) θ = b`` after Jacobi scaling; pseudo-inverse below ``rcond``.

    Raises ``ValueError`` when ``A`` or ``b`` hold NaN or inf (features of large states
    overflow: ``x⁴`` of ``|x| ≈ 1e80`` is inf), which the eigen solve would otherwise turn into
    "Eigenvalues did not converge"."""
    gram, rhs = eq.gram, eq.rhs
    bad = gram.size + rhs.size - int(np.isfinite(gram).sum() + np.isfinite(rhs).sum())
    if bad:
        raise ValueError(
            f"the closed-form fit met non-finite values: {bad} of the {gram.size + rhs.size} "
            "entries of its normal equations are NaN or inf (the features overflow on these "
            "states): rescale the data (e.g. to unit spread) or choose a lower degree"
        )
    diag = np.diag(gram).copy()
    dropped = [int(i) for i in np.flatnonzero(diag <= 1e-300)]
    scale = np.where(diag > 1e-300, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
    scaled = gram * scale[:, None] * scale[None, :]
    scaled = scaled + ridge * np.diag((diag > 1e-300).astype(float))
    evals, evecs = np.linalg.eigh(scaled)
    top = evals.max() if evals.size else 0.0
    keep = evals > rcond * top
    inv = np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)
    theta_scaled = evecs @ (inv * (evecs.T @ (rhs * scale)))
    positive = evals[keep]
    condition = float(positive.max() / positive.min()) if positive.size else float("inf")
    return LinearSolution(theta_scaled * scale, int(keep.sum()), dropped, condition)


def residual_sum(eq: NormalEquations, theta: np.ndarray) -> float:
    """``Σ w ‖Δx + h G θ‖² / h`` from the sufficient statistics (clipped at 0)."""
    value = eq.sq_over_h - 2.0 * theta @ eq.rhs + theta @ eq.gram @ theta
    return max(float(value), 0.0)
