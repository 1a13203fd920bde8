"""Couplings of large snapshots without the n × m matrix: minibatch exact OT (issue 27)."""

import json

import jax
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
    cost = minibatch._cost_matrix

    def recorded(source, target, report):  # every exact problem's costs: no n × m array
        largest.append(len(source) * len(target))
        return cost(source, target, report)

    monkeypatch.setattr(minibatch, "_cost_matrix", recorded)
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


@pytest.mark.parametrize("d", [2, 30])
def test_block_assignment_is_the_network_simplex_plan(d):
    """Equal blocks are paired by the assignment solver: the same permutation as the exact
    plan of the network simplex (uniform weights: a vertex of the Birkhoff polytope)."""
    x, y = _step(400, d, seed=d, temperature=0.05)
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    by_simplex = np.argmax(exact_plan(x, y), axis=1)
    by_assignment = minibatch._block_partners(x, y, minibatch.MinibatchReport(400, "local"))
    np.testing.assert_array_equal(by_assignment, by_simplex)
    assert cost[np.arange(400), by_assignment].sum() == pytest.approx(
        cost[np.arange(400), by_simplex].sum(), rel=1e-12
    )


def test_feature_force_by_one_reverse_pass_is_the_jacobian_contraction():
    """``∇(θᵀφ)`` by one reverse-mode pass equals ``θᵀ∇φ`` by the library's forward Jacobian
    and central finite differences (poly:2 in d = 8), and a second energy of
    the same library (another θ) gives its own values, not the first one's program's."""
    from iel.energies.spec import parse_energy_spec

    rng = np.random.default_rng(3)
    library = parse_energy_spec("poly:2", 8).library
    energies = [iel.energies.FeatureEnergy(library, rng.standard_normal(library.n_features))
                for _ in range(2)]  # fmt: skip
    x = rng.standard_normal((8, 8))
    jacobians = np.asarray(jax.jit(jax.vmap(library.jacobian))(x))
    for energy in energies:
        by_jacobian = np.einsum("p,npd->nd", np.asarray(energy.theta), jacobians)
        np.testing.assert_allclose(np.asarray(energy.gradient(x)), by_jacobian, rtol=1e-12,
                                   atol=1e-12)  # fmt: skip
        step = 1e-5 * np.eye(8)[4]
        central = np.asarray(energy.energy(x + step)) - np.asarray(energy.energy(x - step))
        np.testing.assert_allclose(np.asarray(energy.gradient(x))[:, 4], central / 2e-5,
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
        values = np.asarray(jax.jit(jax.vmap(energy))(x))
        np.testing.assert_allclose(np.asarray(energy.energy(x)), values, rtol=1e-12)


def test_regime_probe_on_a_subset_of_the_pairs_decides_as_on_all(monkeypatch):
    """The regime's probe fitted on at most PROBE_PAIRS random pairs per snapshot pair (the
    couplings of the whole snapshots) reads the same regime, and a ratio within 30 % of the
    one on all pairs; below the bound nothing changes and the reason does not mention it."""
    from iel.selection import snapshot_regime
    from iel.selection.snapshot_regime import decide_regime

    same = _snapshots(1200, 2, seed=4, count=4)
    rng = np.random.default_rng(5)
    fresh = Snapshots(rng.standard_normal((4800, 2)), np.repeat(np.arange(4) * 0.05, 1200))
    whole = {k: decide_regime(data, "poly:2") for k, data in (("same", same), ("fresh", fresh))}
    assert "probe drift fitted" not in whole["same"].reason
    monkeypatch.setattr(snapshot_regime, "PROBE_PAIRS", 300)
    for kind, data in (("same", same), ("fresh", fresh)):
        part = decide_regime(data, "poly:2")
        assert whole[kind].regime == part.regime == kind
        assert part.statistics["probe_pairs"] == 900 and "900 of the 3600" in part.reason
        assert part.statistics["ratio"] == pytest.approx(whole[kind].statistics["ratio"], rel=0.3)
