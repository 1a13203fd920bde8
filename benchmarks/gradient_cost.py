"""Cost of the gradient of a K-step rollout loss against K forward steps (issue 3, benchmark 3).

For a 64x64 MLP energy in d = 2 and a batch of 256 states, times (compiled, best of 5):

* forward: K gradient-descent steps ``x ← x − h∇E(x)`` and the loss;
* gradient: ``∇_θ`` of the same loss by reverse mode through the rollout (BPTT);
* gradient with checkpointing (substeps recomputed in the backward pass);

and prints the ratios gradient / forward (target ≤ 4) and the peak size of the arrays the
backward pass keeps (XLA's own memory analysis of the compiled program), K = 10 … 1000.

Run: ``python benchmarks/gradient_cost.py``.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp

import iel  # noqa: F401
from iel.energies import MLPEnergy
from iel.estimators.trajectories.rollout import rollout_observed


def best_time(fn, *args, repeats=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def temp_bytes(fn, *args) -> int:
    compiled = fn.lower(*args).compile()
    analysis = compiled.memory_analysis()
    return int(getattr(analysis, "temp_size_in_bytes", 0)) if analysis is not None else -1


def main() -> None:
    energy = MLPEnergy(2, (64, 64), jax.random.PRNGKey(0))
    params, static = eqx.partition(energy, eqx.is_inexact_array)
    z = jax.random.normal(jax.random.PRNGKey(1), (256, 2))
    print(f"{'K':>6} {'forward s':>10} {'grad s':>10} {'ratio':>6} {'grad+ckpt s':>12} "
          f"{'ratio':>6} {'temp MB':>9} {'temp MB ckpt':>13}")  # fmt: skip
    for k in (10, 30, 100, 300, 1000):
        intervals = 10 if k >= 10 else 1
        sub = k // intervals

        def loss(p, z, checkpoint, sub=sub, intervals=intervals):
            e = eqx.combine(p, static)
            xs = jax.vmap(lambda s: rollout_observed(e, s, intervals, sub, 0.01, checkpoint))(z)
            return jnp.mean(xs**2)

        forward = jax.jit(lambda p, z: loss(p, z, False))
        grad = jax.jit(jax.grad(lambda p, z: loss(p, z, False)))
        grad_ckpt = jax.jit(jax.grad(lambda p, z: loss(p, z, True)))
        t_f = best_time(forward, params, z)
        t_g = best_time(grad, params, z)
        t_c = best_time(grad_ckpt, params, z)
        m_g = temp_bytes(grad, params, z) / 2**20
        m_c = temp_bytes(grad_ckpt, params, z) / 2**20
        print(f"{k:>6} {t_f:>10.4f} {t_g:>10.4f} {t_g / t_f:>6.2f} {t_c:>12.4f} "
              f"{t_c / t_f:>6.2f} {m_g:>9.1f} {m_c:>13.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
