"""Closed-form fit throughput against the physical floor (issue 2's benchmark).

For a degree-6 polynomial energy in d = 2 (27 features) and 10⁴ … 10⁷ transitions, prints

* fit: ``OneStepClosedForm.fit`` on a ``Trajectories`` object (n/10 trajectories of 10 steps),
  end to end (transitions, one pass accumulating the normal equations, the solve, the pass
  fixing the additive constant, the data range);
* floor: one pass computing every feature gradient ``∇φ(x_k)`` (reduced to a sum so the work
  is not optimised away) plus one dense ``p × p`` solve — the least any closed form must do;
* ratio fit / floor (target ≤ 2) and transitions per second;
* compile times, measured separately on the first call of each.

Run: ``python benchmarks/closed_form_throughput.py [--max 1e7] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import iel  # noqa: F401  (float64)
from iel.data import Trajectories
from iel.energies import Monomials
from iel.estimators import OneStepClosedForm
from iel.linear.normal_equations import (
    CHUNK,
    _chunked,
)


@eqx.filter_jit
def _gradient_pass(library, xs):
    def body(total, chunk):
        jac = jax.vmap(library.jacobian)(chunk)
        return total + jnp.sum(jac, axis=0), None

    total, _ = jax.lax.scan(body, jnp.zeros((library.n_features, library.dim)), xs)
    return total


def floor_once(library, x0: np.ndarray) -> float:
    start = time.perf_counter()
    chunks = jnp.asarray(_chunked(x0, min(CHUNK, len(x0))))
    total = _gradient_pass(library, chunks).block_until_ready()
    gram = np.eye(library.n_features) + 1e-3 * np.outer(total[:, 0], total[:, 0])
    np.linalg.solve(gram, np.ones(library.n_features))
    return time.perf_counter() - start


def fit_once(data: Trajectories, library) -> float:
    start = time.perf_counter()
    OneStepClosedForm(library).fit(data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=1e7, help="largest number of transitions")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    library = Monomials(2, 6)
    rng = np.random.default_rng(0)
    sizes = [n for n in (10**4, 10**5, 10**6, 10**7) if n <= args.max]
    print(f"degree-6 polynomial, d = 2, p = {library.n_features} features; best of {args.repeats}")
    header = f"{'transitions':>12} {'fit s':>9} {'floor s':>9} {'ratio':>6} {'trans/s':>10}"
    print(header + f" {'fit compile s':>14} {'floor compile s':>16}")
    for n in sizes:
        # n / 10 random-walk trajectories of 10 steps each: n transitions, 1.1 n states
        start = rng.uniform(-2, 2, size=(n // 10, 1, 2))
        steps = 0.01 * rng.normal(size=(n // 10, 10, 2))
        data = Trajectories(np.concatenate([start, start + np.cumsum(steps, axis=1)], 1), dt=0.01)
        x0 = data.transitions()[0]
        fit_first = fit_once(data, library)
        floor_first = floor_once(library, x0)
        fit_t = min(fit_once(data, library) for _ in range(args.repeats))
        floor_t = min(floor_once(library, x0) for _ in range(args.repeats))
        print(
            f"{n:>12.0e} {fit_t:>9.4f} {floor_t:>9.4f} {fit_t / floor_t:>6.2f} "
            f"{n / fit_t:>10.3g} {fit_first - fit_t:>14.2f} {floor_first - floor_t:>16.2f}"
        )


if __name__ == "__main__":
    main()
