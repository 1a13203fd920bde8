"""The one-step loss of an energy network and its gradient: iel's softplus (derivative stated
as the logistic) against ``jax.nn.softplus`` (``logaddexp(x, 0)``), same network, same data.

The loss ``mean ‖Δx − h F(x)‖²/(h d)`` with ``F = −∇E`` differentiates the network twice;
the activation's derivative rule decides what the compiled program computes per unit.
Prints, per network and float type: milliseconds per value-and-gradient (compiled, median of
repeats) for each activation, their ratio, and the largest relative difference of the losses.
5000 random transitions in the plane.

Run: ``python benchmarks/network_loss.py``.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import iel  # noqa: F401  (float64)
from iel.energies.neural import ACTIVATIONS, MLPEnergy
from iel.estimators.trajectories.likelihood import one_step_residual

CASES = ((2, (64,)), (2, (32, 32)), (10, (32, 32)))
REPEATS = 7


class _Network(eqx.Module):
    """The same layers as an :class:`MLPEnergy`, with the activation passed as a function."""

    layers: tuple
    activation: object = eqx.field(static=True)

    def force_single(self, x):
        return -jax.grad(lambda z: _apply(self.layers, self.activation, z))(x)


def _apply(layers, activation, x):
    """``layers[-1](σ(… σ(layers[0](x))))`` with ``σ = activation``."""
    for layer in layers[:-1]:
        x = activation(layer(x))
    return layers[-1](x)


def _loss(layers, activation, x0, dx, h):
    return one_step_residual(_Network(layers, activation), x0, dx, h)


def _timed(loss, params):
    value = loss(params)[0].block_until_ready()  # compile
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(20):
            loss(params)[0].block_until_ready()
        times.append((time.perf_counter() - start) / 20)
    return 1e3 * float(np.median(times)), float(value)


def main() -> None:
    rng = np.random.default_rng(0)
    print("| d | widths | dtype | iel softplus ms | jax.nn.softplus ms | ratio | rel. diff |")
    print("|---|---|---|---|---|---|---|")
    for dim, widths in CASES:
        for dtype in (jnp.float64, jnp.float32):
            x0 = jnp.asarray(rng.uniform(-4, 4, (5000, dim)), dtype=dtype)
            dx = jnp.asarray(0.01 * rng.standard_normal((5000, dim)), dtype=dtype)
            h = jnp.full(5000, 0.01, dtype=dtype)
            layers = MLPEnergy(dim, widths, jax.random.PRNGKey(0)).layers
            layers = jax.tree_util.tree_map(lambda a, t=dtype: a.astype(t), layers)
            results = []
            for activation in (ACTIVATIONS["softplus"], jax.nn.softplus):
                loss = jax.jit(jax.value_and_grad(_loss, argnums=0), static_argnums=1)
                results.append(_timed(lambda lay, f=loss, a=activation, data=(x0, dx, h):
                                      f(lay, a, *data), layers))  # fmt: skip
            (ours, a), (theirs, b) = results
            name = "float64" if dtype == jnp.float64 else "float32"
            print(f"| {dim} | {'x'.join(map(str, widths))} | {name} | {ours:.2f} | "
                  f"{theirs:.2f} | {ours / theirs:.2f} | {abs(a - b) / abs(b):.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
