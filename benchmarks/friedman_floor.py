"""How much of friedman's error in the JKOnet* suite is its ``sin(π a b)`` term.

friedman (BENCHMARKS §A) is ``[10 sin(π a b) + 20(a sin b − 0.5)² + 10(a cos b − 1)²
+ 0.1 b sin a] / 100`` with ``a``, ``b`` means of the two halves of ``u = 2(v − 7)`` (``b``
halved).  The first term's phase ``π a b`` is a product of two collective variables: in the
plane its period along ``v₁`` is ``1/|b|`` (0.09–0.33 on [−4, 4]²), no more than the spacing
of 1000 training particles (about 0.25), so no family without that exact product can resolve it
from the suite's data.  This script scores, with the suite's protocol and metric
(``jkonet_suite.one_step_w1`` on the held-out half), the true energy with that term removed:
the error a fit that captures everything else exactly would have.  Where iel's fitted error
(``python benchmarks/jkonet_suite.py --potentials friedman --dim D``) sits at this floor, the
remaining error is that term alone.

Run: ``python benchmarks/friedman_floor.py [--dims 2 10 20 30 50]``.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jkonet_suite import PAPER_HIGH_D, one_step_w1, simulate, split_snapshots

from iel.energies.reference import friedman


def friedman_without_chirp(v):
    """friedman less ``10 sin(π a b) / 100``."""
    u = 2 * (v - 7)
    k = max(v.shape[0] // 2, 1)
    a, b = jnp.mean(u[:k]), jnp.mean(u[k:]) / 2
    return friedman(v) - 10 * jnp.sin(jnp.pi * a * b) / 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dims", type=int, nargs="*", default=[2, 10, 20, 30, 50])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    force = jax.jit(jax.vmap(jax.grad(lambda v: -friedman_without_chirp(v))))
    print("| d | W1, true energy without sin(πab) | paper's range (d ≥ 10) |")
    print("|---|---|---|")
    for dim in args.dims:
        _, test = split_snapshots(simulate("friedman", args.n, dim, 0.0, seed=0))
        floor, _ = one_step_w1(lambda s: np.asarray(force(jnp.asarray(s))), test)
        paper = "{:.3g}–{:.3g}".format(*PAPER_HIGH_D["friedman"]) if dim >= 10 else "—"
        print(f"| {dim} | {floor:.3g} | {paper} |", flush=True)


if __name__ == "__main__":
    main()
