"""The optimisation loop shared by the iterative estimators: minibatch steps, periodic
evaluation, early stopping on a score, the best parameters kept, and the reason it stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .energies.features import FeatureEnergy


def coefficient_units(theta):
    """``s_i = max(|θ_i|, 0.1·rms θ)``: the size each coefficient is trained in units of."""
    return jnp.maximum(jnp.abs(theta), 0.1 * jnp.sqrt(jnp.mean(theta**2)) + 1e-300)


def trainable(energy):
    """``(params, build)`` with ``build(params)`` the energy.

    A feature energy (``θᵀφ + c``) trains only its coefficients, each in units of its starting
    size (``θ_i = s_i u_i``, ``s_i = max(|θ_i|, 0.1·rms θ)``): Adam moves every parameter by
    about the learning rate, which would otherwise wipe out the small coefficients of high
    powers.  Other energies train all their arrays as they are."""

    if isinstance(energy, FeatureEnergy) and bool(jnp.any(energy.theta != 0)):
        theta = energy.theta
        unit = coefficient_units(theta)
        return theta / unit, lambda u: eqx.tree_at(lambda e: e.theta, energy, u * unit)
    params, static = eqx.partition(energy, eqx.is_inexact_array)
    return params, lambda p: eqx.combine(p, static)


def warmup_cosine_adam(learning_rate: float, steps: int):
    """Adam with a linear warm-up over the first 5 % of ``steps`` to ``learning_rate``, then
    cosine decay to a twentieth of it."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(steps // 20, 1), steps, learning_rate / 20
    )
    return optax.adam(schedule)


def adam_step(optimiser, loss):
    """A jitted ``(params, opt_state, *batch) -> (params, opt_state, loss)`` for ``loss``."""

    @jax.jit
    def step(params, opt_state, *batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        # Optax mixes its int32 step count with floats; allow that under strict promotion
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


LBFGS = optax.lbfgs()  # one instance, so that compiled chunks are reused across fits


def lbfgs_state(params, optimiser=LBFGS):
    """``optimiser.init(params)`` (an ``optax.lbfgs``) with every leaf strongly typed.

    The fresh state holds weakly typed scalars (the step count, the line search's value and
    step size) that come back strongly typed from the first update, so a chunk called with
    the fresh state would be compiled twice: once for the first call and once for the rest
    (``tests/test_estimators.py`` counts the traces).  Built as one compiled program: eagerly,
    each of the state's zero-filled leaves compiled its own (about 0.25 s on two cores)."""
    return _strong_state(optimiser, params)


@eqx.filter_jit
def _strong_state(optimiser, params, flat: bool = False):
    if flat:
        params = ravel_pytree(params)[0]
    with jax.numpy_dtype_promotion("standard"):
        state = optimiser.init(params)
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype=leaf.dtype), state)


def lbfgs_chunk_state(params):
    """The state :func:`lbfgs_iterations` starts from: :func:`lbfgs_state` of ``params``
    flattened into one vector (strongly typed; flattened inside the one compiled program)."""
    return _strong_state(LBFGS, params, flat=True)


@eqx.filter_jit
def lbfgs_iterations(loss, iterations: int, params, opt_state, *data):
    """``iterations`` full-batch L-BFGS steps (:data:`LBFGS`, zoom line search) on
    ``loss(params, *data)`` in one ``lax.scan``: one dispatch per chunk, not per step.
    Returns ``(params, opt_state, last loss)``; ``opt_state`` from :func:`lbfgs_chunk_state`.
    ``loss`` should be a module-level function (and non-array parts of ``data`` hashable), so
    that later fits reuse the compiled code.

    The optimiser runs on the parameters flattened into one vector: on the tree of a network's
    arrays every L-BFGS and line-search operation was repeated per array, and the program
    took 1.7 times as long to compile (3.6 against 2.1 CPU seconds for ``mlp:64``, a
    third of a cold snapshot fit's compiling; ``benchmarks/compile_profile.py``)."""
    flat, unravel = ravel_pytree(params)
    value_fn = lambda v: loss(unravel(v), *data)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(value_fn)

    def body(carry, _):
        flat, opt_state = carry
        with jax.numpy_dtype_promotion("standard"):
            value, grads = value_and_grad(flat, state=opt_state)
            updates, opt_state = LBFGS.update(
                grads, opt_state, flat, value=value, grad=grads, value_fn=value_fn
            )
        return (optax.apply_updates(flat, updates), opt_state), value

    (flat, opt_state), values = jax.lax.scan(body, (flat, opt_state), None, iterations)
    return unravel(flat), opt_state, values[-1]


@dataclass
class TrainingResult:
    params: Any
    best_score: float
    stop_reason: str
    history: dict[str, list[float]] = field(default_factory=dict)


def run_training(
    params,
    opt_state,
    train_step: Callable,
    next_batch: Callable[[], tuple],
    score: Callable[[Any, float], float],
    *,
    steps: int,
    patience: int,
    score_name: str = "held-out",
    progress: Callable[[int, int, float], None] | None = None,
    divergence_hint: str = "",
    eval_every: int | None = None,
) -> TrainingResult:
    """Run ``train_step(params, opt_state, *next_batch()) -> (params, opt_state, loss)``.

    Every ``eval_every`` steps (default ``max(steps // 100, 10)``)
    ``score(params, mean recent loss)`` is evaluated; the
    parameters with the best score are kept, and training stops after ``patience``
    evaluations without a relative improvement of 1e-4, when the loss turns non-finite, or at
    ``steps``.
    """
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "heldout_loss": []}
    best, best_params, since_best = np.inf, params, 0
    eval_every = eval_every or max(steps // 100, 10)
    stop_reason = f"reached the step limit ({steps})"
    running: list[float] = []
    for step in range(1, steps + 1):
        params, opt_state, loss = train_step(params, opt_state, *next_batch())
        running.append(float(loss))
        if not np.isfinite(running[-1]):
            stop_reason = (
                f"the loss became non-finite at step {step}{divergence_hint}; kept the best "
                "parameters so far"
            )
            break
        if step % eval_every == 0 or step == steps:
            mean_loss = float(np.mean(running))
            value = score(params, mean_loss)
            history["step"].append(step)
            history["train_loss"].append(mean_loss)
            history["heldout_loss"].append(value)
            running = []
            if value < best * (1 - 1e-4):
                best, best_params, since_best = value, params, 0
            else:
                since_best += 1
            if progress is not None:
                progress(step, steps, value)
            if since_best >= patience:
                stop_reason = (
                    f"early stop at step {step}: the {score_name} loss did not improve for "
                    f"{patience} evaluations"
                )
                break
    return TrainingResult(best_params, float(best), stop_reason, history)
