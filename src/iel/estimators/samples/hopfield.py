"""Learning the connectivity of the notes' Hopfield energy so that given patterns are minima.

Loss: ``L(θ) = Σ_p ½ ‖x*_p(θ) − p‖²`` where ``x*_p`` is where the network settles (the minimum
of ``E_θ`` reached from ``p``).  Its gradient in ``θ = (W, b)`` comes from one of

* ``"implicit"`` — implicit differentiation at the equilibrium (one Hessian solve);
* ``"ep"`` — equilibrium propagation (two nudged equilibria, no backward pass);
* ``"bptt"`` — backpropagation through ``K`` settling steps of gradient descent;

which agree (the tests check it; see :mod:`iel.estimators.gradients`).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...dynamics.gradients import (
    as_energy_fn,
    equilibrium,
    equilibrium_propagation_gradient,
    gd_rollout,
)
from ...energies.hopfield import RHO as _RHO
from ...energies.hopfield import HopfieldEnergy

METHODS = ("implicit", "ep", "bptt")


def pattern_loss_function(
    energy: HopfieldEnergy,
    patterns: np.ndarray,
    method: str = "implicit",
    *,
    beta: float = 1e-3,
    settle_steps: int = 400,
    settle_rate: float = 0.2,
):
    """A jitted ``θ ↦ (L, dL/dθ)`` for the flat parameters of ``energy``'s structure."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    energy_fn, _ = as_energy_fn(energy)
    pats = jnp.asarray(patterns)

    def one(theta, p):
        def loss(x):
            return 0.5 * jnp.sum((x - p) ** 2)

        if method == "implicit":
            return jax.value_and_grad(lambda th: loss(equilibrium(energy_fn, th, p)))(theta)
        if method == "bptt":
            return jax.value_and_grad(
                lambda th: loss(gd_rollout(energy_fn, th, p, settle_rate, settle_steps)[-1])
            )(theta)
        value = loss(equilibrium(energy_fn, theta, p))
        return value, equilibrium_propagation_gradient(energy_fn, theta, p, loss, beta=beta)

    @jax.jit
    def value_and_grad(theta):
        values, grads = jax.vmap(lambda p: one(theta, p))(pats)
        return jnp.sum(values), jnp.sum(grads, axis=0)

    return value_and_grad


def pattern_loss_gradient(
    energy: HopfieldEnergy, patterns: np.ndarray, method: str = "implicit", **options
) -> tuple[float, jax.Array]:
    """``(L, dL/dθ)`` at ``energy``'s parameters (see module docstring)."""
    _, theta = as_energy_fn(energy)
    value, grad = pattern_loss_function(energy, patterns, method, **options)(theta)
    return float(value), grad


def train_hopfield(
    patterns: np.ndarray,
    *,
    method: str = "implicit",
    rho: str = "tanh",
    steps: int = 300,
    hebbian_scale: float = 2.0,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> tuple[HopfieldEnergy, dict]:
    """Learn ``W, b`` so that each row of ``patterns`` is a minimum of the Hopfield energy."""
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 2:
        raise ValueError(f"patterns: expected shape (n_patterns, units), got {patterns.shape}")
    start = time.perf_counter()
    n = patterns.shape[1]
    rng = np.random.default_rng(seed)
    # Hebbian start, W ∝ Σ_p ρ(p)ρ(p)ᵀ: already multi-stable, so each pattern has its own basin
    # to refine (from W ≈ 0 the energy is convex and every pattern falls into one minimum)
    rates = np.asarray(jax.vmap(lambda u: _RHO[rho](u))(jnp.asarray(patterns)))
    hebb = hebbian_scale * rates.T @ rates / len(patterns)
    energy = HopfieldEnergy.from_weights(hebb + 0.01 * rng.normal(size=(n, n)), np.zeros(n), rho)
    _, theta = as_energy_fn(energy)
    value_and_grad = pattern_loss_function(energy, patterns, method)
    optimiser = optax.adam(learning_rate)
    state = optimiser.init(theta)
    history = []
    stop, previous = f"reached the step limit ({steps})", theta
    try:
        for it in range(1, steps + 1):
            try:
                value, grad = value_and_grad(theta)
            except (RuntimeError, ValueError) as err:  # as JAX raises a failed solve
                if "non-finite" not in str(err):  # (the equilibrium's linear solve)
                    raise
                value, grad = np.nan, None
            if not (np.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))):
                if it == 1:
                    raise ValueError("the Hopfield pattern loss is non-finite at the Hebbian "
                                     "start: check the patterns' scale")  # fmt: skip
                # the loss is of the parameters before this update: keep the ones before them
                theta = previous
                stop = (f"the loss became non-finite at step {it} (try a smaller learning "
                        f"rate); kept the parameters after {it - 2} updates, the last with a "
                        "finite loss")  # fmt: skip
                break
            with jax.numpy_dtype_promotion("standard"):
                updates, state = optimiser.update(grad, state, theta)
            previous, theta = theta, optax.apply_updates(theta, updates)
            history.append(float(value))
    except KeyboardInterrupt:
        stop = f"interrupted at step {len(history)} of {steps}"
    learned = _with_theta(energy, theta)
    return learned, {"loss": history, "seconds": time.perf_counter() - start, "method": method,
                     "stop_reason": stop}  # fmt: skip


def _with_theta(energy: HopfieldEnergy, theta: jax.Array) -> HopfieldEnergy:
    n = energy.dim
    return HopfieldEnergy(theta[: n * n].reshape(n, n), theta[n * n :], energy.rho)


def recall(energy: HopfieldEnergy, starts: np.ndarray) -> np.ndarray:
    """Where the network settles from each start (its minimum of ``E``)."""
    energy_fn, theta = as_energy_fn(energy)
    return np.asarray(jax.vmap(lambda s: equilibrium(energy_fn, theta, s))(jnp.asarray(starts)))
