"""Couplings of large snapshots without the n × m matrix: minibatch exact OT (issue 27)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.data.populations import Snapshots
from iel.transport import couplings, minibatch
from iel.transport.couplings import couple, exact_plan
from iel.transport.minibatch import minibatch_targets


def _step(n, d, seed, temperature, h=0.05):
    """``n`` particles and their images after one Euler–Maruyama step of ``V = |x|²/2``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, x - h * x + np.sqrt(2 * temperature * h) * rng.standard_normal((n, d))


@pytest.mark.parametrize("d", [2, 30])
def test_minibatch_pairs_every_particle_once_in_blocks_of_at_most_the_batch(d, monkeypatch):
    x, y = _step(1500, d, seed=d, temperature=0.05)
    largest = []
    solve = minibatch._block_plan

    def recorded(source, target, report):  # every exact problem solved: no n × m array
        largest.append(len(source) * len(target))
        return solve(source, target, report)

    monkeypatch.setattr(minibatch, "_block_plan", recorded)
    dest, report = minibatch_targets(x, y, batch=200)
    rows = {tuple(row) for row in dest}
    assert len(rows) == len(x) and rows == {tuple(row) for row in y}  # a permutation of y
    assert max(largest) <= 200 * 200 and report.largest_block[0] <= 200
    assert report.blocks == len(largest) >= len(x) // 200
    assert all(a >= b for a, b in zip(report.costs, report.costs[1:]))  # sweeps never worsen


def test_unequal_sizes_give_each_source_a_destination_in_the_target_hull():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((900, 2)), rng.standard_normal((1300, 2)) + 0.1
    dest, report = minibatch_targets(x, y, batch=128)
    assert dest.shape == x.shape and report.sweeps == 0 and report.largest_block[0] <= 128
    assert np.all(dest.min(0) >= y.min(0)) and np.all(dest.max(0) <= y.max(0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_local_minibatches_match_the_exact_plan_where_random_ones_do_not(seed):
    """d = 10, noise small against the spacing: the exact plan recovers every identity; local
    blocks with repair sweeps give the same pairs (cost within 0.1 %), flow matching's random
    blocks of the same size pair a particle with its own image rarely (≈ B/n)."""
    x, y = _step(2000, 10, seed, temperature=0.005)
    exact = y[np.argmax(exact_plan(x, y), axis=1)]
    local, _ = minibatch_targets(x, y, batch=256)
    random, _ = minibatch_targets(x, y, batch=256, partition="random")

    def cost(dest):
        return np.mean(np.sum((dest - x) ** 2, axis=1))

    assert np.mean(np.all(exact == y, axis=1)) == 1.0
    assert np.mean(np.all(local == exact, axis=1)) >= 0.99
    assert cost(local) <= 1.001 * cost(exact)
    assert np.mean(np.all(random == y, axis=1)) < 0.5 and cost(random) > 3 * cost(exact)


def _snapshots(n, d, seed, temperature=0.02, h=0.05, count=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    pops = [x]
    for _ in range(count - 1):
        x = x - h * x + np.sqrt(2 * temperature * h) * rng.standard_normal((n, d))
        pops.append(x)
    return Snapshots(np.concatenate(pops), np.repeat(np.arange(count) * h, n))


def test_minibatch_fit_agrees_with_the_exact_fit(monkeypatch):
    """A quadratic fitted on minibatch pairs against exact pairs, 1200 particles in d = 3:
    force coefficients within 2 % of each other, temperatures within 5 %."""
    data = _snapshots(1200, 3, seed=4)
    exact = iel.fit(data, "quadratic", coupling="exact", regime="same")
    monkeypatch.setattr(couplings, "minibatch_targets",
                        lambda s, t: minibatch_targets(s, t, batch=200))  # fmt: skip
    small = iel.fit(data, "quadratic", coupling="minibatch", regime="same")
    assert "minibatch exact optimal transport" in small.diagnostics["coupling"]
    probe = np.random.default_rng(5).standard_normal((200, 3))
    fe, fm = np.asarray(exact.force(probe)), np.asarray(small.force(probe))
    assert np.linalg.norm(fm - fe) <= 0.02 * np.linalg.norm(fe)
    assert small.temperature == pytest.approx(exact.temperature, rel=0.05)


def test_auto_says_why_it_leaves_the_exact_plan(monkeypatch, tmp_path):
    """With the exact limit lowered to 10⁵ entries, 400 × 400 particles go to minibatch OT:
    the CLI prints the reason (the cost matrix's size) and the report names the coupling."""
    monkeypatch.setattr(couplings, "EXACT_ENTRIES", 1e5)
    method, why = couplings.auto_coupling(100_000, 100_000, 30)
    assert method == "minibatch" and "exact needs 80 GB of cost matrix" in why
    assert couplings.auto_coupling(10**6, 10**6, 1)[0] == "exact"  # the line: O(n log n)
    data = _snapshots(400, 2, seed=6)
    path = tmp_path / "s.npz"
    np.savez(path, x=data.x, t=data.t)
    result = CliRunner().invoke(app, ["fit", str(path), "--kind", "snapshots", "--energy",
                                      "quadratic", "--regime", "same"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "coupling: 400 × 400 particles; exact needs 1.28 MB of cost matrix" in result.output
    report = json.loads((tmp_path / "s.iel" / "report.json").read_text())
    assert "minibatch exact optimal transport" in report["diagnostics"]["coupling"]


def test_the_line_stays_exact_and_sparse_at_a_million_particles():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((10**6, 1))
    y = 0.9 * x + 0.01 * rng.standard_normal(x.shape)
    dest, how = couple(x, y, "auto")
    assert "monotone rearrangement" in how
    assert np.array_equal(np.argsort(dest[:, 0]), np.argsort(x[:, 0]))  # order kept
