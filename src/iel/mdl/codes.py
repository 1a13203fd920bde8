"""Description lengths in bits (THEORY §7) for one-step models of trajectories.

The data are the increments ``Δx_k`` over steps ``h_k``, quantised at precision ``ε``.  A
one-step model says ``Δx_k ~ N(h_k F(x_k), 2 T h_k I)``; its code length for the data is

    ``L(D | model) = Σ_k [‖Δx_k − h_k F(x_k)‖² / (4 T h_k) + (d/2) log(4π T h_k)] / ln 2
                     + K d log₂(1/ε)``.

A noise-free model (gradient descent) is coded the same way with the residual scale it fits,
floored at the quantisation noise ``ε²/12`` per coordinate (a residual cannot be coded more
finely than the data were recorded).  The residual itself is floored there too
(:func:`floored_fit`): below it, a residual is quantisation and float64 rounding of the
normal equations, and two exact formulas must not differ by the bits of their rounding.

Parameters (two-part code): each active coefficient is coded at the precision ``δ_i = σ_i`` of
its estimate (its standard error, from the Fisher information ``A/(2T)``) within a range
``R_i = max(|θ_i|, s_i)``, costing ``½ log₂(1 + R_i²/δ_i²)`` bits plus one for its sign.  The
natural scale ``s_i = √(Σ‖Δx‖²/h / A_ii)`` is the coefficient whose term alone would carry the
observed speeds; it makes every real coefficient cost about ``½ log₂ n`` bits whatever its
value (so the code is BIC-consistent and a useless term is never free).  The choice of which
``k`` of ``P`` library terms are active costs ``log₂ C(P, k)`` bits.  A coefficient snapped to
a simple rational ``p/q`` costs ``log₂(1 + |p|) + log₂ q + 1`` bits instead, and the data code
grows by exactly the quadratic form ``(θ − θ̂)ᵀ A (θ − θ̂) / (4T ln 2)``.  Asymptotically this is BIC.

The prequential code (Blier & Ollivier 2018) needs no parameter code: trajectories are split in
blocks of doubling size; block ``b`` is coded with the model fitted on blocks ``< b`` (the
first block with the null model, the same for every candidate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Stats:
    """Sufficient statistics of the one-step Gaussian likelihood for a linear model
    ``F(x) = −Gθ`` (or ``Wφ``): ``A = Σ h GᵀG``, ``b = −Σ GᵀΔx``, ``c = Σ ‖Δx‖²/h``,
    ``n = K d`` scalar observations, ``log_h = d Σ log h``."""

    gram: np.ndarray
    rhs: np.ndarray
    sq_over_h: float
    n: float
    log_h: float

    def residual(self, theta: np.ndarray, support: np.ndarray | None = None) -> float:
        if support is None:
            a, b = self.gram, self.rhs
        else:
            a, b = self.gram[np.ix_(support, support)], self.rhs[support]
        return max(float(self.sq_over_h - 2 * theta @ b + theta @ a @ theta), 0.0)

    def __add__(self, other: Stats) -> Stats:
        return Stats(
            self.gram + other.gram,
            self.rhs + other.rhs,
            self.sq_over_h + other.sq_over_h,
            self.n + other.n,
            self.log_h + other.log_h,
        )


def gaussian_nll_bits(residual: float, n: float, log_h: float, temperature: float) -> float:
    """``Σ ‖r‖²/(4Th) + (n/2) log(4πT) + ½ Σ log h``, in bits (``log_h`` = Σ over rows)."""
    t = max(temperature, 1e-300)
    nats = residual / (4 * t) + 0.5 * n * math.log(4 * math.pi * t) + 0.5 * log_h
    return nats / LN2


def temperature_floor(epsilon: float, h_mean: float) -> float:
    """The smallest temperature a residual can show when data are quantised at ``ε``:
    ``2 T h = ε²/12``."""
    return epsilon**2 / (24.0 * h_mean)


def floored_fit(residual, dof, floor: float):
    """``(R, R/(2·dof))``: the residual coded, ``R = max(residual, 2·dof·T_floor)``, and the
    temperature it fits, over ``dof`` coded coordinates (at least one).  Below ``2·dof·T_floor``
    a residual is quantisation and rounding; coding it at the floor temperature would still
    pay ``residual/(4T)`` nats, which rounding can change by hundreds of bits between two
    exact fits."""
    dof = np.maximum(dof, 1.0)
    coded = np.maximum(residual, 2.0 * dof * floor)
    return coded, coded / (2.0 * dof)


def real_number_bits(value: float, precision: float, scale: float = 0.0) -> float:
    """``½ log₂(1 + (max(|value|, scale)/precision)²)`` + 1 sign bit (after Wu & Tegmark
    2019, with the range floored at a natural ``scale``)."""
    span = max(abs(value), scale)
    return 0.5 * math.log2(1.0 + (span / precision) ** 2) + 1.0


def rational_bits(p: int, q: int) -> float:
    """Bits for a snapped constant ``p/q``."""
    return math.log2(1 + abs(p)) + math.log2(q) + 1.0


@dataclass
class CodeLength:
    """A model's description length, split into its parts (bits)."""

    data_bits: float
    parameter_bits: float
    structure_bits: float
    quantisation_bits: float
    details: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.data_bits + self.parameter_bits + self.structure_bits + self.quantisation_bits

    def as_dict(self) -> dict:
        return {
            "total_bits": self.total,
            "data_bits": self.data_bits,
            "parameter_bits": self.parameter_bits,
            "structure_bits": self.structure_bits,
            "quantisation_bits": self.quantisation_bits,
            **self.details,
        }


def two_part_linear(
    stats: Stats,
    support: np.ndarray,
    theta: np.ndarray,
    *,
    n_library: int,
    epsilon: float,
    h_mean: float,
    snapped: dict[int, tuple[int, int]] | None = None,
    theta_hat: np.ndarray | None = None,
    temperature: float | None = None,
    free_parameters: int = 0,
) -> CodeLength:
    """Two-part code of a linear model restricted to ``support`` with coefficients ``theta``.

    ``snapped`` maps positions in ``support`` to the rational ``(p, q)`` they were snapped to;
    ``theta_hat`` is then the unsnapped least-squares solution (for the precision of the rest).
    ``free_parameters`` counts nonlinear parameters the features were fitted with (centres and
    matrices of exponentiated quadratics); each costs ``½ log₂ n + 1`` bits, as in
    :func:`bic_code`.
    """
    residual = stats.residual(theta, support)
    parts = linear_code_parts(
        stats, np.asarray(support, dtype=int)[None], np.asarray(theta, dtype=float)[None],
        np.array([residual]), temperature=temperature, epsilon=epsilon, h_mean=h_mean,
        free_parameters=np.array([free_parameters]),
    )  # fmt: skip
    coefficient_bits = parts["coefficient_bits"][0]
    for i, (p, q) in (snapped or {}).items():
        coefficient_bits[i] = rational_bits(p, q)
    params = float(np.sum(coefficient_bits)) + float(parts["free_parameter_bits"][0])
    k = len(support)
    structure = math.log2(math.comb(n_library, k)) if n_library else 0.0
    quant = stats.n * math.log2(1.0 / epsilon)
    t = float(parts["temperature"][0])
    return CodeLength(
        float(parts["data_bits"][0]), params, structure, quant,
        {"temperature": t, "n_terms": k, "residual": residual, "free_parameters": free_parameters},
    )  # fmt: skip


def linear_code_parts(
    stats: Stats,
    supports: np.ndarray,
    thetas: np.ndarray,
    residuals: np.ndarray,
    *,
    epsilon: float,
    h_mean: float,
    temperature: float | None = None,
    free_parameters: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The parts of :func:`two_part_linear` for ``m`` models of ``k`` terms at once:
    ``supports`` and ``thetas`` are ``(m, k)``, ``residuals`` (``c − 2θ·b + θᵀAθ``) and
    ``free_parameters`` ``(m,)``.  Returns arrays ``temperature``, ``data_bits`` and
    ``free_parameter_bits`` of shape ``(m,)`` and ``coefficient_bits`` ``(m, k)`` (every
    coefficient coded as a real number)."""
    m, k = supports.shape
    free = np.zeros(m) if free_parameters is None else np.asarray(free_parameters, dtype=float)
    floor = temperature_floor(epsilon, h_mean)
    residual, t_fit = floored_fit(residuals, stats.n - k - free, floor)
    t = np.maximum(t_fit if temperature is None else temperature, floor)
    data = (residual / (4 * t) + 0.5 * stats.n * np.log(4 * math.pi * t)
            + 0.5 * stats.log_h) / LN2  # fmt: skip
    diag = np.maximum(np.diagonal(stats.gram)[supports], 1e-300)
    sigma = np.sqrt(2 * t[:, None] / diag)
    span = np.maximum(np.abs(thetas), np.sqrt(stats.sq_over_h / diag))
    return {
        "temperature": t,
        "data_bits": data,
        "coefficient_bits": 0.5 * np.log2(1.0 + (span / sigma) ** 2) + 1.0,
        "free_parameter_bits": free * (0.5 * math.log2(max(stats.n, 2.0)) + 1.0),
    }


def null_code(stats: Stats, epsilon: float, h_mean: float) -> CodeLength:
    """E ≡ const: "nothing moves except noise" (Δx ~ N(0, 2Th))."""
    empty = np.zeros(0, dtype=int)
    return two_part_linear(stats, empty, np.zeros(0), n_library=0, epsilon=epsilon, h_mean=h_mean)


def prequential_linear(
    blocks: list[Stats],
    support: np.ndarray,
    *,
    epsilon: float,
    h_mean: float,
    ridge: float = 1e-10,
) -> float:
    """Prequential (online) code in bits: block ``b`` coded by the model fitted on blocks
    ``< b``; the first block by the null model at its own fitted temperature."""
    floor = temperature_floor(epsilon, h_mean)
    total = 0.0
    seen: Stats | None = None
    for block in blocks:
        if seen is None:
            first, t0 = floored_fit(block.sq_over_h, block.n, floor)
            total += gaussian_nll_bits(first, block.n, block.log_h, t0)
        else:
            k = len(support)
            if k:
                a = seen.gram[np.ix_(support, support)]
                a = a + ridge * np.trace(a) / k * np.eye(k)
                theta = np.linalg.solve(a, seen.rhs[support])
            else:
                theta = np.zeros(0)
            _, t = floored_fit(seen.residual(theta, support), seen.n - k, floor)
            coded, _ = floored_fit(block.residual(theta, support), block.n, floor)
            total += gaussian_nll_bits(coded, block.n, block.log_h, t)
        seen = block if seen is None else seen + block
    n_total = sum(b.n for b in blocks)
    return total + n_total * math.log2(1.0 / epsilon)


def bic_code(
    residual: float, n: float, log_h: float, n_params: int, *, epsilon: float, h_mean: float
) -> CodeLength:
    """Two-part code of a model fitted by iterative optimisation (networks, bumps): the data
    at the fitted temperature plus ``½ log₂ n + 1`` bits per parameter — what the precision
    code above gives each coefficient at its natural scale, without per-parameter Fisher
    information."""
    floored, t = floored_fit(residual, n - n_params, temperature_floor(epsilon, h_mean))
    data = gaussian_nll_bits(floored, n, log_h, t)
    params = n_params * (0.5 * math.log2(max(n, 2.0)) + 1.0)
    return CodeLength(
        data, params, 0.0, n * math.log2(1.0 / epsilon),
        {"temperature": t, "n_terms": n_params, "residual": residual},
    )  # fmt: skip


def default_epsilon(data) -> float:
    """Data precision: 1e-8 of the typical coordinate scale (well below any physical noise,
    above float64 round-off)."""
    scale = float(np.max(np.abs(data.observed_states()))) or 1.0
    return 1e-8 * scale
