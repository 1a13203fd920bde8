"""Energies from equilibrium samples ``x ~ exp(−E/T)/Z`` (THEORY §2, §4).

Only ``E/T`` up to a constant is identifiable from such samples; the fitted model is ``E/T``
with the temperature set to 1 by convention, and says so.

* :class:`ScoreMatching` — Hyvärinen score matching.  For ``E/T = βᵀφ`` it is closed form:
  minimising ``E[½‖∇log p‖² + Δ log p]`` gives ``β̂ = E[GᵀG]⁻¹ E[Δφ]`` with ``G = ∇φ`` and
  ``Δφ`` the Laplacian of each feature — one pass over the samples.
* :class:`DenoisingScoreMatching` — for any energy (networks included): with
  ``x̃ = x + σε``, minimise ``E‖σ∇(E/T)(x̃) − ε‖²`` (Vincent 2011), whose minimiser is the
  score of the samples' law smoothed by ``N(0, σ²)``: biased by ``O(σ²)``, so ``σ`` small
  against the features of the law; ``ε`` and ``−ε`` are used in pairs, which removes the
  ``O(σ)`` noise that otherwise dominates the loss at small ``σ``.
* :class:`ContrastiveDivergence` — maximum likelihood for any energy: the gradient
  ``E_data[∇_θ E] − E_model[∇_θ E]`` with the model expectation over persistent MALA chains
  (negatives), optimised by Adam.
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

from ...data.populations import Samples
from ...dynamics import Langevin
from ...dynamics.mala import MALA
from ...energies.base import AbstractEnergy
from ...energies.features import FeatureEnergy
from ...energies.spec import EnergyFamily, parse_energy_spec
from ...model import FittedModel
from ...training import (
    adam_step,
    fit_interrupted,
    mark_interrupted,
    run_training,
    trainable,
    warmup_cosine_adam,
)
from ..base import (
    AbstractEstimator,
    check_finite_fit,
    data_range,
    shift_to_zero_min,
)

IDENTIFIABILITY = {
    "energy": "E/T up to an additive constant: equilibrium samples fix only the Boltzmann "
    "law exp(−E/T); the model is E/T and its temperature is 1 by convention",
    "temperature": "not identifiable separately from E",
    "constant": "shifted so min over the samples = 0",
}


@eqx.filter_jit
def _score_matching_sums(library, x):
    def one(v):
        jac = library.jacobian(v)  # (p, d)
        hess = jax.hessian(library.__call__)(v)  # (p, d, d)
        return jac @ jac.T, jnp.trace(hess, axis1=1, axis2=2)

    grams, laps = jax.lax.map(one, x, batch_size=4096)
    return jnp.mean(grams, axis=0), jnp.mean(laps, axis=0)


def _finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


def _initial_energy(energy, data: Samples, key) -> tuple[AbstractEnergy, str]:
    """An energy given as a module, or built from a spec string, and its spec."""
    if isinstance(energy, AbstractEnergy):
        return energy, type(energy).__name__
    family = parse_energy_spec(energy, data.dim)
    return family.build(key, data.x), family.spec


def _model(energy, states, spec, method, diagnostics, start, history=None, stop="") -> FittedModel:
    check_finite_fit(energy, 1.0, method)
    low, high = data_range(states)
    return FittedModel(
        energy_module=shift_to_zero_min(energy, states),
        dynamics=Langevin(1.0),
        energy_spec=spec,
        method=method,
        data_kind="samples",
        diagnostics=diagnostics,
        identifiability=IDENTIFIABILITY,
        data_low=low,
        data_high=high,
        history=history or {},
        stop_reason=stop,
        fit_seconds=time.perf_counter() - start,
    )


@dataclass(eq=False)
class ScoreMatching(AbstractEstimator):
    """Closed-form score matching for a linear energy family (spec such as ``"poly:4"``)."""

    method = "score-matching"

    energy: str | EnergyFamily = "poly:4"
    ridge: float = 0.0
    seed: int = 0

    def fit(self, data: Samples) -> ScoreMatching:
        if not isinstance(data, Samples):
            raise TypeError(f"ScoreMatching fits equilibrium samples, got {type(data).__name__}")
        start = time.perf_counter()
        family = parse_energy_spec(self.energy, data.dim)
        if not family.is_linear:
            raise ValueError(
                f"closed-form score matching needs a linear family; {self.energy!r} has a network "
                "term (use ContrastiveDivergence)"
            )
        library = family.library.adapt(data.x, seed=self.seed)
        gram, lap = (np.asarray(v) for v in _score_matching_sums(library, jnp.asarray(data.x)))
        scale = 1.0 / np.sqrt(np.maximum(np.diag(gram), 1e-300))
        a = gram * scale[:, None] * scale[None, :] + self.ridge * np.eye(len(scale))
        beta = np.linalg.lstsq(a, lap * scale, rcond=1e-13)[0] * scale
        objective = 0.5 * beta @ gram @ beta - beta @ lap
        self.model_ = _model(
            FeatureEnergy(library, beta), data.x, family.spec, self.method,
            {"score_matching_objective": float(objective), "n_samples": len(data.x),
             "code_length_bits": None,
             "notes": ["no code length: score matching never normalises exp(−E/T), so it gives "
                       "no likelihood to code the samples with"]}, start,
            stop="closed form: exact minimiser of the score-matching objective",
        )  # fmt: skip
        return self


@dataclass(eq=False)
class ContrastiveDivergence(AbstractEstimator):
    """Maximum likelihood of ``exp(−E_θ)/Z`` with persistent MALA negatives.

    Args:
        energy: spec or initial energy; a linear part starts from score matching.
        steps: optimisation steps; chains: persistent negative chains; mala_steps and
        mala_step: MALA moves per optimisation step and their size; learning_rate; seed.
    """

    method = "contrastive-divergence"

    energy: str | EnergyFamily | AbstractEnergy = "poly:4"
    _: KW_ONLY
    steps: int = 1000
    chains: int = 1000
    mala_steps: int = 5
    mala_step: float = 0.01
    learning_rate: float = 0.01
    seed: int = 0

    def fit(self, data: Samples) -> ContrastiveDivergence:
        if not isinstance(data, Samples):
            raise TypeError(f"ContrastiveDivergence fits samples, got {type(data).__name__}")
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        key = jax.random.PRNGKey(self.seed)
        linear = (
            isinstance(self.energy, (str, EnergyFamily))
            and parse_energy_spec(self.energy, data.dim).is_linear
        )
        energy, spec = _initial_energy(self.energy, data, key)
        if linear:  # start from the closed form
            energy = ScoreMatching(self.energy, seed=self.seed).fit(data).energy_
        params, build = trainable(energy)
        optimiser = optax.adam(self.learning_rate)
        opt_state = optimiser.init(params)
        mala = MALA(1.0)
        negatives = jnp.asarray(data.x[rng.choice(len(data.x), self.chains)])
        x_data = jnp.asarray(data.x)
        batch = min(len(data.x), 4096)

        def gap(p, xb, negatives):
            model = build(p)
            return jnp.mean(jax.vmap(model)(xb)) - jnp.mean(jax.vmap(model)(negatives))

        update = adam_step(optimiser, gap)

        @jax.jit
        def move(p, negatives, key):
            e = build(p)

            def chain(x, k):
                for kk in jax.random.split(k, self.mala_steps):
                    x = mala.step(e, x, kk, self.mala_step)
                return x

            return jax.vmap(chain)(negatives, jax.random.split(key, negatives.shape[0]))

        def step(params, opt_state, negatives, xb, key):
            negatives = move(params, negatives, key)
            params, opt_state, value = update(params, opt_state, xb, negatives)
            return params, opt_state, negatives, value

        history: dict[str, list[float]] = {"gap": []}
        stop, done = f"reached the step limit ({self.steps})", 0
        steps = self.steps
        if fit_interrupted():
            stop = "interrupted before step 1 (an earlier loop of this fit was interrupted)"
            steps = 0
        try:
            for it in range(1, steps + 1):
                key, sub = jax.random.split(key)
                xb = x_data[rng.choice(len(data.x), batch, replace=False)]
                new = step(params, opt_state, negatives, xb, sub)
                if not (np.isfinite(float(new[3])) and _finite(new[0]) and _finite(new[2])):
                    stop = (f"the energy gap or the negatives became non-finite at step {it} "
                            "(try a smaller mala_step or learning_rate); kept the parameters "
                            f"of step {done}")  # fmt: skip
                    break
                params, opt_state, negatives, value = new  # one assignment: a whole step
                done = it
                history["gap"].append(float(value))
        except KeyboardInterrupt:
            mark_interrupted()
            stop = f"interrupted at step {done} of {self.steps}; kept the parameters of step {done}"
        self.negatives_ = np.asarray(negatives)
        gaps = history["gap"]
        self.model_ = _model(
            build(params), data.x, spec, self.method,
            {"final_energy_gap": gaps[-1] if gaps else None, "chains": self.chains}, start,
            history, stop=stop,
        )  # fmt: skip
        return self


@dataclass(eq=False)
class DenoisingScoreMatching(AbstractEstimator):
    """Denoising score matching for any energy family (module docstring).

    Args:
        energy: spec (``"mlp:64x64"``, …) or an initial energy.
        noise: ``σ``; default 10 % of the samples' root-mean-square standard deviation.
        steps: Adam steps (warm-up, then cosine decay).
        batch: samples per minibatch.
        learning_rate: Adam's peak learning rate.
        patience: evaluations without improvement on 10 % held-out samples (with fixed
            noise) before stopping.
        seed: random seed.
    """

    method = "denoising-score-matching"

    energy: str | EnergyFamily | AbstractEnergy = "mlp:64x64"
    _: KW_ONLY
    noise: float | None = None
    steps: int = 3000
    batch: int = 512
    learning_rate: float = 0.003
    patience: int = 20
    seed: int = 0
    progress: Callable[[int, int, float], None] | None = None

    def fit(self, data: Samples) -> DenoisingScoreMatching:
        if not isinstance(data, Samples):
            raise TypeError(f"DenoisingScoreMatching fits samples, got {type(data).__name__}")
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        key = jax.random.PRNGKey(self.seed)
        x = data.x
        energy, spec = _initial_energy(self.energy, data, key)
        sigma = self.noise
        if sigma is None:
            sigma = 0.1 * float(np.sqrt(np.mean(np.var(x, axis=0))))
        if not sigma > 0:
            raise ValueError(f"denoising score matching needs noise > 0, got {sigma}")
        order = rng.permutation(len(x))
        n_hold = max(1, len(x) // 10)
        held, train = jnp.asarray(x[order[:n_hold]]), x[order[n_hold:]]
        held_noise = jnp.asarray(rng.standard_normal(held.shape))
        params, build = trainable(energy)

        def loss(p, xb, eps):
            # ‖σ∇E(x + σε) − ε‖² averaged over ±ε (antithetic), without the constant ‖ε‖²:
            # σ²(‖g₊‖² + ‖g₋‖²)/2 − σ ε·(g₊ − g₋).  The pairing cancels the O(σ) noise term
            # that otherwise swamps the O(σ²) signal at small σ.
            grad = jax.vmap(jax.grad(build(p)))
            plus, minus = grad(xb + sigma * eps), grad(xb - sigma * eps)
            quadratic = 0.5 * sigma**2 * (jnp.sum(plus**2, -1) + jnp.sum(minus**2, -1))
            return jnp.mean(quadratic - sigma * jnp.sum(eps * (plus - minus), axis=-1))

        optimiser = warmup_cosine_adam(self.learning_rate, self.steps)
        batch = min(self.batch, len(train))
        held_loss = jax.jit(loss)
        result = run_training(
            params, optimiser.init(params), adam_step(optimiser, loss),
            lambda: (jnp.asarray(train[rng.choice(len(train), batch, replace=False)]),
                     jnp.asarray(rng.standard_normal((batch, x.shape[1])))),
            lambda p, _: float(held_loss(p, held, held_noise)),
            steps=self.steps, patience=self.patience, progress=self.progress, rng=rng,
        )  # fmt: skip
        self.model_ = _model(
            build(result.params), x, spec, self.method,
            {"noise": sigma, "heldout_loss": result.best_score, "n_samples": len(x),
             "code_length_bits": None,
             "notes": [f"the model is the law of the samples smoothed by N(0, {sigma:.3g}²): "
                       "its E/T is biased by O(σ²)"]}, start, result.history,
            stop=result.stop_reason,
        )  # fmt: skip
        return self
