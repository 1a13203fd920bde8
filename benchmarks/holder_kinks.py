"""How sharp holder_table's valleys must be drawn for the JKOnet* suite's 1e-2.

holder_table (BENCHMARKS §A) is ``10·|sin h₁ · cos h₂ · exp(|1 − ‖v‖/π|)|``: its valleys are
kinks — along the lines where ``sin h₁ cos h₂`` vanishes (|·| of a smooth function) and along
the circle ``‖v‖ = π`` — where the force jumps and particles from both sides cross the valley
in one step.  A smooth family draws each kink over some width.  This script scores, with the
suite's protocol and metric (``jkonet_suite.one_step_w1`` on the held-out half), the true
energy with both absolute values smoothed, ``|z| → √(z² + ε²)``: the error of a fit exact
everywhere but within about ``ε`` of the valleys.  Compare the width where it crosses 1e-2
with the training particles' spacing (about 0.25 for 1000 on [−4, 4]²) and with iel's fitted
error (``python benchmarks/jkonet_suite.py --potentials holder_table``).

Run: ``python benchmarks/holder_kinks.py [--widths 0.3 0.1 0.03 0.01] [--dim 2]``.
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jkonet_suite import one_step_w1, simulate, split_snapshots

from iel.energies.reference import holder_table


def smooth_abs(z, width):
    return jnp.sqrt(z**2 + width**2)


def holder_table_smoothed(v, width):
    """holder_table with both ``|·|`` replaced by :func:`smooth_abs` (``h₁, h₂`` as there)."""
    k = max(v.shape[0] // 2, 1)
    h1, h2 = jnp.mean(v[:k]), jnp.mean(v[k:])
    radial = jnp.exp(smooth_abs(1 - jnp.linalg.norm(v) / jnp.pi, width))
    return 10 * smooth_abs(jnp.sin(h1) * jnp.cos(h2) * radial, width)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=float, nargs="*", default=[0.3, 0.1, 0.03, 0.01, 0.0])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    _, test = split_snapshots(simulate("holder_table", args.n, args.dim, 0.0, seed=0))
    train_particles = args.n // 2
    spacing = 8.0 / train_particles ** (1 / args.dim)
    print(f"holder_table, d = {args.dim}: {train_particles} training particles, spacing "
          f"about {spacing:.2g}")  # fmt: skip
    print("| kink width ε | W1, true energy with kinks smoothed over ε |")
    print("|---|---|")
    for width in args.widths:
        energy = functools.partial(holder_table_smoothed, width=width) if width else holder_table
        force = jax.jit(jax.vmap(jax.grad(lambda v, e=energy: -e(v))))
        error, _ = one_step_w1(lambda s, f=force: np.asarray(f(jnp.asarray(s))), test)
        print(f"| {width:g} | {error:.3g} |", flush=True)


if __name__ == "__main__":
    main()
