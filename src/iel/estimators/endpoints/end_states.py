"""Energies and starting points from end states alone: the notes' Setting (THEORY §6).

We observe states ``x_i`` a minimising process settled into, from starts ``z_i`` we never saw,
and want ``E`` (and the ``z_i``) such that minimising ``E`` from ``z_i`` leads to ``x_i``.
As stated this is degenerate — ``E ≡ const, z_i = x_i`` fits anything — and even done right,
end states fix ``E`` only up to an increasing transform: they determine the minima and, given a
prior ``z ~ p₀`` on the starts, the share of the prior each basin must catch.  Three objectives:

1. ``"likelihood"`` — the end states as a low-temperature Boltzmann law ``exp(−E/T)``:
   closed-form score matching (THEORY §4) on the end states smoothed by Gaussian noise of width
   ``smoothing × extent`` (converged end states are points; the smoothing is the temperature),
   (denoising score matching at that noise for network families), refined by maximum
   likelihood with persistent Langevin (MALA) negatives when ``contrastive_steps > 0``.
   Fixes the minima; the basin boundaries it leaves are whatever the density fit implies.
2. ``"pushforward"`` — the exact likelihood of the end states as the image of the prior under
   ``K`` gradient-descent steps ``Φ(y) = y − ∇E(y)`` (step 1: the energy's scale is the step):
   ``log p_K(x) = log p₀(z) − Σ_k log|det(I − ∇²E(y_k))|`` with ``z = Φ^{−K}(x)`` found by
   inverting each step by the fixed-point iteration ``y ← y_{k+1} + ∇E(y)`` (a contraction
   while ``‖∇²E‖ < 1``, the condition for ``Φ`` to be invertible).  Needs end states that are
   not fully converged (a converged end state has no density) and a prior with a density.
3. ``"latent"`` (default) — per-observation starts ``z_i`` and ``θ`` jointly: the starts are
   draws from ``p₀`` assigned to the end states by exact optimal transport, and ``θ`` minimises
   ``Σ_i ‖Φ_θ^K(z_i) − x_i‖²`` through the unrolled descent, re-assigning every step (minibatch
   OT).  The prior rules out the degenerate solution: with ``E ≡ const`` the loss is
   ``W₂²(p₀, data) > 0``.  In the converged limit this is THEORY §6's mixture over the minima
   with weights equal to each basin's prior mass, so it moves the basin boundaries until the
   prior mass of each basin equals its share of the end states.  The descent is
   ``y ← y − min(η, ½/‖∇²E‖_F, δ/‖∇E‖)∇E`` (:class:`iel.dynamics.BoundedGradientDescent`: slow near
   barriers, so starts close to one are still on their way after ``K`` steps and the fit can
   move the boundary; stable where stiff; bounded where steep), and ``∇E = 0`` is held at
   the centres of the end states' clusters — exactly for feature energies (the condition is
   linear in θ), by a penalty ``anchor·Σ_j‖∇E(m_j)‖²`` for networks.

Observed starts (``Endpoints(x, starts=z)``) replace the prior for objectives 2 and 3: ``θ``
then minimises ``Σ_i ‖Φ_θ^K(z_i) − x_i‖²`` over the given pairs.

Every fit reports the minima of the learned energy, the share of end states each basin
explains, the share of the prior each basin catches, the starts (``starts_``) and the loss of
the degenerate flat energy next to the fitted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...basins import (
    bounded_descent,
    find_minima,
    shares_at,
)
from ...data.populations import (
    Endpoints,
    Samples,
)
from ...dynamics import GradientDescent
from ...energies.base import (
    AbstractEnergy,
    ScaledEnergy,
)
from ...energies.features import FeatureEnergy
from ...energies.spec import parse_energy_spec
from ...model import FittedModel
from ...training import (
    TrainingResult,
    adam_step,
    coefficient_units,
    fit_interrupted,
    lbfgs_state,
    mark_interrupted,
    run_training,
    trainable,
)
from ...transport.couplings import (
    EXACT_LIMIT,
    exact_plan,
)
from ..base import (
    AbstractEstimator,
    data_range,
    shift_to_zero_min,
)
from ..samples.equilibrium import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    ScoreMatching,
)
from .start_priors import (
    DEFAULT_PRIOR,
    NormalPrior,
    UniformPrior,
    parse_prior,
)

OBJECTIVES = ("latent", "likelihood", "pushforward")
DEFAULT_OBJECTIVE = "latent"
MIN_END_STATES = 10

IDENTIFIABILITY = {
    "energy": "E only up to an increasing transform g(E): end states fix the minima and, given "
    "the prior on starts, the share of it each basin catches — not energy values or barrier "
    "heights. The scale is a convention (median Hessian norm over the end states = 1 before "
    "refinement; for the pushforward objective, the descent step is 1 in units of E)",
    "temperature": "not identifiable (reported as 0)",
    "starts": "each start only up to its basin, and only relative to the assumed prior",
    "constant": "shifted so min over the end states = 0",
}


def _scaled(energy: AbstractEnergy, c: float) -> AbstractEnergy:
    if isinstance(energy, FeatureEnergy):
        return FeatureEnergy(energy.library, energy.theta * c, energy.offset * c)
    return ScaledEnergy(energy, c)


@eqx.filter_jit
def _hessian_norms(energy, x):
    return jax.vmap(lambda v: jnp.linalg.norm(jax.hessian(energy)(v), ord=2))(x)


_descent_jit = eqx.filter_jit(bounded_descent)


def _held_at(energy: AbstractEnergy, points: jax.Array):
    """``(params, build, exact)``: trainable parameters of ``energy`` with ``∇E = 0`` held at
    ``points``.

    For a feature energy the condition is linear in ``θ`` — ``Σ_i θ_i ∇φ_i(m_j) = 0`` — so it
    is imposed exactly by training coordinates ``w`` of the null space of those constraints
    (``θ = s ⊙ N w`` with ``s`` the per-coefficient units of :func:`trainable`).  Other
    energies get all their arrays and ``exact = False`` (the caller adds a penalty).
    """
    if not isinstance(energy, FeatureEnergy):
        params, build = trainable(energy)
        return params, build, False
    theta = energy.theta
    unit = coefficient_units(theta)
    jac = jax.vmap(energy.library.jacobian)(points)  # (m, p, d)
    constraints = np.asarray(jnp.transpose(jac, (0, 2, 1)).reshape(-1, theta.shape[0]))
    constraints = constraints * np.asarray(unit)[None, :]
    _, sing, vt = np.linalg.svd(constraints, full_matrices=True)
    rank = int(np.sum(sing > 1e-10 * max(float(sing.max(initial=0.0)), 1e-300)))
    basis = jnp.asarray(vt[rank:].T)  # (p, p − rank)
    if basis.shape[1] == 0:
        params, build = trainable(energy)
        return params, build, False
    w = basis.T @ (theta / unit)

    def build(w):
        return eqx.tree_at(lambda e: e.theta, energy, unit * (basis @ w))

    return w, build, True


def _assign(moved: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the end state each moved start is matched to (exact OT, equal sizes)."""
    return np.argmax(exact_plan(moved, ends), axis=1)


def _transport_cost(moved: np.ndarray, ends: np.ndarray, paired: bool) -> float:
    """Mean squared distance from each moved start to its end state: the given pairs, or the
    exact OT matching."""
    target = ends if paired else ends[_assign(moved, ends)]
    return float(np.mean(np.sum((moved - target) ** 2, axis=-1)))


CODE_DESCRIPTION = {
    "mixture": "two-part code (THEORY §6–7): each end state coded as a draw from the mixture "
    "over the minima with weights = the prior mass each basin catches and a Gaussian spread "
    "fitted to the end states (floored at the precision), plus ½·log₂ n bits per parameter; "
    "the null code (E ≡ const) codes the end states with the prior itself",
    "pushforward": "two-part code: the exact push-forward likelihood plus ½·log₂ n bits per "
    "parameter; the null code (E ≡ const) codes the end states with the prior itself",
    "pairs": "two-part code: each end state coded by its distance to where the descent from "
    "its observed start ends (Gaussian, fitted spread) plus ½·log₂ n bits per parameter; the "
    "null code (E ≡ const) codes the end states by their distance to their starts",
}


def _bits(log_density: np.ndarray, d: int, epsilon: float) -> float:
    """``Σ_i −log₂(p(x_i) ε^d)`` with each term at least 0 (a bin holds probability ≤ 1)."""
    return float(np.sum(np.maximum(-(log_density + d * np.log(epsilon)) / np.log(2), 0.0)))


def _gaussian_bits(residuals: np.ndarray, epsilon: float) -> float:
    n, d = residuals.shape
    scale = max(float(np.sqrt(np.mean(residuals**2))), epsilon)
    log_density = -0.5 * np.sum(residuals**2, axis=1) / scale**2 - d * np.log(
        scale * np.sqrt(2 * np.pi)
    )
    return _bits(log_density, d, epsilon)


def _spread(x: np.ndarray, basins, epsilon: float) -> float:
    """Root-mean-square distance of the end states to their minima, at least ``ε``."""
    residuals = x - basins.minima[basins.labels]
    return max(float(np.sqrt(np.mean(residuals**2))), epsilon)


def _mixture_bits(
    x: np.ndarray, minima: np.ndarray, weights: np.ndarray, scale: float, epsilon: float
) -> float:
    """Bits of ``x`` under ``Σ_j w_j N(m_j, scale² I)`` at precision ``ε``."""
    d = x.shape[1]
    keep = weights > 0
    if not np.any(keep):
        return float("inf")
    distance = np.sum((x[:, None, :] - minima[None, keep, :]) ** 2, axis=-1)
    terms = np.log(weights[keep])[None, :] - 0.5 * distance / scale**2
    peak = np.max(terms, axis=1, keepdims=True)
    log_density = peak[:, 0] + np.log(np.sum(np.exp(terms - peak), axis=1))
    return _bits(log_density - d * np.log(scale * np.sqrt(2 * np.pi)), d, epsilon)


def _prior_bits(prior, x: np.ndarray, epsilon: float) -> float:
    return _bits(np.asarray(prior.log_density(jnp.asarray(x))), x.shape[1], epsilon)


def minima_lines(minima: list[dict]) -> list[str]:
    """One line per minimum for people: where, its energy, the shares its basin catches."""
    lines = []
    for row in minima:
        where = ", ".join(f"{v:.4g}" for v in row["location"])
        shares = f"{row['share']:.1%} of end states"
        if "prior_share" in row:
            shares += f", {row['prior_share']:.1%} of the prior"
        lines.append(f"({where})  E = {row['energy']:.4g}  {shares}")
    return lines


@dataclass(eq=False)
class EndStates(AbstractEstimator):
    """Fit an energy to end states of a minimising process (module docstring).

    Args:
        energy: energy spec (``"poly:6"``, ``"rbf:30"``, ``"mlp:32x32"``, …).
        objective: ``"latent"`` (default), ``"likelihood"`` or ``"pushforward"``.
        prior: prior on starts, a spec string (:mod:`iel.estimators.start_priors`) or a prior.
        smoothing: width of the Gaussian smoothing of the end states for objective 1, as a
            fraction of their largest coordinate extent.
        contrastive_steps: maximum-likelihood (CD) refinement steps after score matching.
        descent_steps: ``K``, the descent steps of the model's process (objectives 2 and 3).
        step_size: ``η`` of the bounded descent for objective 3.
        max_step: ``δ`` of the bounded descent for objective 3, as a fraction of the extent.
        steps: Adam steps (cosine decay).
        batch: end states per minibatch.
        learning_rate: Adam's peak learning rate.
        anchor: weight holding the minima of objective 1 in objective 3.
        precision: the precision ``ε`` the end states are coded at, as a fraction of their
            extent (for the code lengths).
        seed: random seed.
    """

    energy: str = "poly:6"
    objective: str = DEFAULT_OBJECTIVE
    _: KW_ONLY
    prior: str | NormalPrior | UniformPrior = DEFAULT_PRIOR
    smoothing: float = 0.02
    contrastive_steps: int = 0
    descent_steps: int = 30
    step_size: float = 0.25
    max_step: float = 0.05
    steps: int = 1500
    batch: int = 512
    learning_rate: float = 0.01
    anchor: float = 10.0
    precision: float = 0.001
    seed: int = 0
    progress: Callable[[int, int, float], None] | None = None

    @property
    def method(self) -> str:
        return f"endpoints-{self.objective}"

    # -- objective 1 ---------------------------------------------------------------------------
    def _likelihood_fit(self, x: np.ndarray, extent: float, rng) -> tuple[AbstractEnergy, str]:
        family = parse_energy_spec(self.energy, x.shape[1])
        width = self.smoothing * extent
        copies = max(1, int(np.ceil(20000 / len(x))))
        smoothed = Samples(np.concatenate([x + width * rng.standard_normal(x.shape)
                                           for _ in range(copies)]))  # fmt: skip
        if family.is_linear:
            energy = ScoreMatching(self.energy, seed=self.seed).fit(smoothed).energy_
            how = f"score matching on the end states smoothed by N(0, {width:.3g}²)"
            if self.contrastive_steps > 0:
                energy = self._contrastive(energy, smoothed, width)
                how += f", then {self.contrastive_steps} contrastive-divergence steps"
        else:
            est = DenoisingScoreMatching(self.energy, noise=width, steps=self.steps,
                                         seed=self.seed).fit(Samples(x))  # fmt: skip
            energy = est.energy_
            how = f"denoising score matching on the end states with noise N(0, {width:.3g}²)"
            if self.contrastive_steps > 0:
                energy = self._contrastive(energy, smoothed, width)
                how += f", then {self.contrastive_steps} contrastive-divergence steps"
        return energy, how

    def _contrastive(self, energy, smoothed: Samples, width: float) -> AbstractEnergy:
        est = ContrastiveDivergence(energy, steps=self.contrastive_steps,
                                    mala_step=0.1 * width**2, learning_rate=1e-3,
                                    seed=self.seed)  # fmt: skip
        return est.fit(smoothed).energy_

    # -- objective 3 ---------------------------------------------------------------------------
    def _latent_fit(self, energy, data: Endpoints, prior, extent, minima, rng):
        x = data.x
        anchors = jnp.asarray(minima)
        params, build, exact = _held_at(energy, anchors)
        anchor_weight = 0.0 if exact else self.anchor
        k, eta, delta = self.descent_steps, self.step_size, self.max_step * extent
        batch = min(self.batch, len(x))
        optimiser = optax.adam(optax.cosine_decay_schedule(self.learning_rate, self.steps))
        paired = data.starts is not None

        def flow(p, z):
            return bounded_descent(build(p), z, k, eta, delta)

        def loss(p, z, target):
            e = build(p)
            hold = jnp.sum(jax.vmap(jax.grad(e))(anchors) ** 2)
            return jnp.mean(jnp.sum((flow(p, z) - target) ** 2, axis=-1)) + anchor_weight * hold

        flow_jit = jax.jit(flow)
        train_step = adam_step(optimiser, loss)

        def step(p, opt_state, z, ends):
            # the minibatch's starts are matched to its end states under the current energy
            if not paired:
                ends = ends[_assign(np.asarray(flow_jit(p, jnp.asarray(z))), ends)]
            return train_step(p, opt_state, jnp.asarray(z), jnp.asarray(ends))

        def next_batch():
            pick = rng.choice(len(x), batch, replace=False)
            return (data.starts[pick] if paired else prior.sample(rng, batch)), x[pick]

        eval_pick = rng.choice(len(x), min(len(x), 1000), replace=False)
        z_eval = data.starts[eval_pick] if paired else prior.sample(rng, len(eval_pick))

        def score(p, _):
            moved = np.asarray(flow_jit(p, jnp.asarray(z_eval)))
            return _transport_cost(moved, x[eval_pick], paired)

        start_score = score(params, 0.0)
        result = run_training(
            params, optimiser.init(params), step, next_batch, score,
            steps=self.steps, patience=40, score_name="transport",
            progress=self.progress, rng=rng,
        )  # fmt: skip
        energy = build(result.params)
        flat = _transport_cost(z_eval, x[eval_pick], paired)  # E ≡ const leaves starts in place
        info = {
            "transport_loss": result.best_score,
            "transport_loss_at_start": start_score,
            "transport_loss_flat_energy": flat,
        }
        return energy, info, result

    # -- objective 2 ---------------------------------------------------------------------------
    def _pushforward_fit(self, energy, data: Endpoints, prior, rng):
        x = data.x
        d = x.shape[1]
        k = self.descent_steps
        eye = jnp.eye(d)

        def invert(e, end):
            def back(y_next, _):
                def fixed_point(y, _):
                    return y_next + jax.grad(e)(y), None

                y = jax.lax.scan(fixed_point, y_next, None, length=30)[0]
                sign, logabs = jnp.linalg.slogdet(eye - jax.hessian(e)(y))
                return y, (logabs, sign)

            z, (logdets, signs) = jax.lax.scan(back, end, None, length=k)
            return z, jnp.sum(logdets), jnp.all(signs > 0)

        # start from a scale at which every end state can be traced back K steps
        norms = np.asarray(_hessian_norms(energy, jnp.asarray(x)))
        scale = 0.5 / max(float(np.max(norms)), 1e-300)
        for _ in range(40):
            trial = _scaled(energy, scale)
            z, logdet, ok = jax.jit(jax.vmap(lambda v, e=trial: invert(e, v)))(jnp.asarray(x))
            if np.all(np.asarray(ok)) and np.all(np.isfinite(np.asarray(z))):
                break
            scale *= 0.5
        else:
            raise ValueError("the pushforward objective could not trace the end states back "
                             f"{k} descent steps at any scale of the starting energy")  # fmt: skip
        params, build = trainable(trial)

        fit_x = jnp.asarray(x if len(x) <= 4000 else x[rng.choice(len(x), 4000, replace=False)])

        def loss(p):
            z, logdet, _ = jax.vmap(lambda v: invert(build(p), v))(fit_x)
            return -jnp.mean(prior.log_density(z) - logdet)

        # full-batch L-BFGS: the objective is smooth and deterministic, and Adam crawls on it
        optimiser = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(loss)

        @jax.jit
        def lbfgs_step(p, state):
            with jax.numpy_dtype_promotion("standard"):
                value, grad = value_and_grad(p, state=state)
                updates, state = optimiser.update(
                    grad, state, p, value=value, grad=grad, value_fn=loss
                )
            return optax.apply_updates(p, updates), state, value

        iterations = min(self.steps, 300)
        state = lbfgs_state(params, optimiser)  # strongly typed: the step compiles once
        history: dict[str, list[float]] = {"step": [], "negative_log_likelihood": []}
        best, best_params, previous = np.inf, params, np.inf
        stop = f"reached the iteration limit ({iterations})"
        if fit_interrupted():
            stop = "interrupted before iteration 1 (an earlier loop of this fit was interrupted)"
            iterations = 0
        try:
            for it in range(1, iterations + 1):
                new, state, value = lbfgs_step(params, state)
                value = float(value)  # the loss at `params`, before this update
                if not np.isfinite(value):
                    stop = (f"the loss became non-finite at iteration {it} (an end state could not "
                            "be traced back: the step map stopped being invertible); kept the best "
                            "parameters")  # fmt: skip
                    break
                history["step"].append(it)
                history["negative_log_likelihood"].append(value)
                if value < best:
                    best, best_params = value, params
                if self.progress is not None:
                    self.progress(it, iterations, value)
                if abs(previous - value) <= 1e-10 * max(1.0, abs(value)):
                    stop = f"converged at iteration {it} (the loss stopped changing)"
                    break
                params, previous = new, value
        except KeyboardInterrupt:
            mark_interrupted()
            done = history["step"][-1] if history["step"] else 0
            stop = (f"interrupted at iteration {done} of {iterations}; kept the parameters "
                    "with the lowest loss so far")  # fmt: skip
        result = TrainingResult(best_params, best, stop, history)
        energy = build(result.params)
        starts, _, invertible = jax.jit(jax.vmap(lambda v: invert(energy, v)))(jnp.asarray(x))
        info = {
            "negative_log_likelihood": result.best_score,
            "step_map_invertible_share": float(np.mean(np.asarray(invertible))),
        }
        return energy, info, result, np.asarray(starts)

    # -- the fit -------------------------------------------------------------------------------
    def fit(self, data: Endpoints) -> EndStates:
        if not isinstance(data, Endpoints):
            raise TypeError(f"EndStates fits end states (Endpoints), got {type(data).__name__}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        x = data.x
        if len(x) < MIN_END_STATES:
            raise ValueError(f"need at least {MIN_END_STATES} end states, got {len(x)}")
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        prior = parse_prior(self.prior, x)
        if (
            self.objective == "pushforward"
            and data.starts is None
            and isinstance(prior, UniformPrior)
        ):
            raise ValueError("the pushforward likelihood needs a prior with a smooth density; "
                             "use a normal prior")  # fmt: skip
        extent = float(np.max(np.ptp(x, axis=0)))
        notes: list[str] = []
        energy, how = self._likelihood_fit(x, extent, rng)
        norms = np.asarray(_hessian_norms(energy, jnp.asarray(x)))
        energy = _scaled(energy, 1.0 / max(float(np.median(norms)), 1e-300))
        tol = 0.02 * extent
        first = find_minima(energy, x, tol=tol)
        info: dict = {"objective_1": how}
        if self.objective == "latent" or data.starts is not None:
            info["descent"] = (f"{self.descent_steps} steps of y ← y − min({self.step_size}, "
                               f"½/‖∇²E‖, {self.max_step * extent:.3g}/‖∇E‖)∇E")  # fmt: skip
        elif self.objective == "pushforward":
            info["descent"] = f"{self.descent_steps} steps of y ← y − ∇E(y)"
        history: dict = {}
        stop = "closed form" if "contrastive" not in how else "contrastive divergence finished"
        starts = None
        if self.objective == "latent" or (self.objective == "pushforward" and data.starts
                                          is not None):  # fmt: skip
            # hold the minima at the centres of the end states that descend into them (exact
            # for converged end states, and free of the smoothing's bias)
            centres = np.array(
                [
                    x[first.labels == k].mean(axis=0)
                    for k in range(len(first.minima))
                    if np.any(first.labels == k)
                ]
            )
            energy, extra, result = self._latent_fit(energy, data, prior, extent, centres, rng)
            info.update(extra)
            history, stop = result.history, result.stop_reason
            if extra["transport_loss"] >= extra["transport_loss_flat_energy"]:
                notes.append("the fitted energy does not move the prior closer to the end states "
                             "than the flat energy (E ≡ const) does: the data do not support a "
                             "landscape under this prior")  # fmt: skip
            if data.starts is not None and self.objective == "pushforward":
                notes.append("observed starts given: fitted by matching the descent of each "
                             "start to its end state (objective 3 with known starts)")  # fmt: skip
        elif self.objective == "pushforward":
            energy, extra, result, starts = self._pushforward_fit(energy, data, prior, rng)
            info.update(extra)
            history, stop = result.history, result.stop_reason
        basins = find_minima(energy, x, tol=tol)
        prior_draws = data.starts if data.starts is not None else prior.sample(rng, 4000)
        prior_ends = find_minima(energy, prior_draws, tol=tol).end_points
        prior_shares, unreached = shares_at(basins, prior_ends, tol)
        if starts is None:
            starts = self._recover_starts(energy, data, prior, extent, rng)
        minima = basins.summary()
        for row, share in zip(minima, prior_shares):
            row["prior_share"] = float(share)
        epsilon = self.precision * extent
        spread = _spread(x, basins, epsilon)
        n_params = sum(int(np.size(v)) for v in jax.tree.leaves(trainable(energy)[0]))
        if data.starts is not None:
            fit_bits = _gaussian_bits(x - prior_ends, epsilon)
            null_bits = _gaussian_bits(x - data.starts, epsilon)
        elif self.objective == "pushforward":
            fit_bits = len(x) * (info["negative_log_likelihood"] - x.shape[1] * np.log(epsilon))
            fit_bits = max(fit_bits / np.log(2), 0.0)
            null_bits = _prior_bits(prior, x, epsilon)
        else:
            fit_bits = _mixture_bits(x, basins.minima, prior_shares, spread, epsilon)
            null_bits = _prior_bits(prior, x, epsilon)
        info.update({
            "minima": minima,
            "prior": ("observed starts" if data.starts is not None else prior.describe()),
            "prior_share_reaching_no_observed_minimum": unreached,
            "n_end_states": len(x),
            "notes": notes,
            "code_length_bits": fit_bits + 0.5 * n_params * np.log2(len(x)),
            "null_code_bits": null_bits,
            "code_precision": epsilon,
            "end_state_spread": spread,
            "code": CODE_DESCRIPTION[
                "pairs" if data.starts is not None else
                "pushforward" if self.objective == "pushforward" else "mixture"],
        })  # fmt: skip
        if unreached > 0.05:
            notes.append(f"{unreached:.0%} of the prior descends to minima no end state reached")
        lowest, highest = np.min(x, axis=0), np.max(x, axis=0)
        margin = 0.5 * (highest - lowest)
        outside = np.any(
            (basins.minima < lowest - margin) | (basins.minima > highest + margin), axis=1
        )
        if np.any(outside):
            share = float(np.sum(basins.shares[outside]))
            notes.append(
                f"descent from {share:.0%} of the end states leaves the region they occupy "
                "(the learned energy does not confine them there: networks are not bounded "
                "below by construction; prefer a polynomial family)"
            )
        if np.any(basins.curvature <= 0):
            notes.append("some descents stopped where the Hessian is not positive definite "
                         "(a saddle or flat region), listed among the minima")  # fmt: skip
        self.starts_ = starts
        self.basins_ = basins
        self.prior_ = prior
        self.prior_shares_ = prior_shares
        self.code_precision_ = epsilon
        low, high = data_range(x)
        energy = shift_to_zero_min(energy, x)
        for row, value in zip(minima, np.asarray(jax.vmap(energy)(jnp.asarray(basins.minima)))):
            row["energy"] = float(value)
        self.model_ = FittedModel(
            energy_module=energy,
            dynamics=GradientDescent(),
            energy_spec=parse_energy_spec(self.energy, x.shape[1]).spec,
            method=self.method,
            data_kind="endpoints",
            diagnostics={**info, "minima_summary": minima_lines(minima)},
            identifiability=IDENTIFIABILITY,
            data_low=low,
            data_high=high,
            history=history,
            stop_reason=stop,
            fit_seconds=time.perf_counter() - start,
            starts=starts,
        )
        return self

    def code_bits(self, x_new) -> float:
        """Bits of new end states under this fit's mixture code (its minima, the prior mass
        of their basins, its spread), at the fit's precision: the prequential step."""
        if self.objective == "pushforward" or self.model_.diagnostics["prior"] == "observed starts":
            raise NotImplementedError(
                "new end states are coded with the mixture code only (latent or likelihood "
                "objective, no observed starts)"
            )
        x_new = np.asarray(x_new, dtype=float)
        fitted = self.model_.diagnostics["minima"]
        minima = np.array([row["location"] for row in fitted])
        spread = self.model_.diagnostics["end_state_spread"]
        return _mixture_bits(x_new, minima, self.prior_shares_, spread, self.code_precision_)

    def _recover_starts(self, energy, data: Endpoints, prior, extent, rng) -> np.ndarray:
        """A start for every end state: prior draws moved by the model's descent and matched
        to the end states by exact OT (in blocks of at most the exact solver's size)."""
        if data.starts is not None:
            return data.starts
        x = data.x
        z = prior.sample(rng, len(x))
        moved = np.asarray(_descent_jit(energy, jnp.asarray(z), max(self.descent_steps, 200),
                                            self.step_size, self.max_step * extent))  # fmt: skip
        starts = np.empty_like(x)
        order = rng.permutation(len(x))
        for block in np.array_split(order, int(np.ceil(len(x) / EXACT_LIMIT))):
            match = _assign(moved[block], x[block])
            starts[block[match]] = z[block]
        return starts


__all__ = ["EndStates", "OBJECTIVES", "DEFAULT_OBJECTIVE", "NormalPrior", "UniformPrior"]
