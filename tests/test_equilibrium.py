"""Equilibrium samples (score matching, contrastive divergence) and Hopfield learning."""

import jax
import numpy as np
import pytest
from scipy.linalg import hadamard

import iel
from iel.energies import HopfieldEnergy
from iel.estimators.samples.equilibrium import (
    ContrastiveDivergence,
    ScoreMatching,
)
from iel.estimators.samples.hopfield import (
    pattern_loss_gradient,
    recall,
    train_hopfield,
)
from iel.systems import get_system


@pytest.fixture(scope="module")
def double_well_samples():
    """Exact Boltzmann samples of (x² − 1)² at T = 0.5 by MALA: E/T = 2x⁴ − 4x² + const."""
    energy = get_system("double_well").energy
    x0 = np.random.default_rng(0).normal(size=(5000, 1))
    traj = iel.simulate(energy, iel.MALA(0.5), x0, 2000, jax.random.PRNGKey(0), 0.02,
                        save_every=2000)  # fmt: skip
    return iel.Samples(traj.x[:, -1])


def test_score_matching_recovers_theta_over_t(double_well_samples):
    model = ScoreMatching("poly:4").fit(double_well_samples).model_
    terms = dict(model.energy_module.terms())
    assert terms["x0^4"] == pytest.approx(2.0, rel=0.03)
    assert terms["x0^2"] == pytest.approx(-4.0, rel=0.03)
    assert model.temperature == 1.0 and model.identifiability["energy"].startswith("E/T")


def test_contrastive_divergence_agrees_with_score_matching(double_well_samples):
    sm = dict(ScoreMatching("poly:4").fit(double_well_samples).energy_.terms())
    cd = dict(ContrastiveDivergence("poly:4", steps=400).fit(double_well_samples).energy_.terms())
    for name in ("x0^2", "x0^4"):
        assert cd[name] == pytest.approx(sm[name], rel=0.05)


def test_denoising_score_matching_learns_a_network_energy(double_well_samples):
    """A network fitted by denoising score matching has the double well's E/T = 2x⁴ − 4x²:
    minima at ±1 and a barrier of 2."""
    model = iel.fit(double_well_samples, "mlp:32x32", steps=1500)
    assert model.method == "denoising-score-matching"
    grid = np.linspace(-1.5, 1.5, 301)[:, None]
    learned = np.asarray(model.energy(grid))
    left, right = np.argmin(learned[:150]), 151 + np.argmin(learned[151:])
    assert grid[left, 0] == pytest.approx(-1.0, abs=0.1)
    assert grid[right, 0] == pytest.approx(1.0, abs=0.1)
    barrier = learned[150] - 0.5 * (learned[left] + learned[right])
    assert barrier == pytest.approx(2.0, rel=0.15)  # σ = 10 % of the spread: O(σ²) bias
    cd = iel.fit(double_well_samples, "poly:4", method="contrastive-divergence", steps=300)
    assert cd.method == "contrastive-divergence"
    with pytest.raises(ValueError, match="for equilibrium samples, method must be"):
        iel.fit(double_well_samples, "poly:4", method="rollout")


def test_fit_dispatches_samples(double_well_samples):
    model = iel.fit(double_well_samples, "poly:4")
    assert model.data_kind == "samples" and model.method == "score-matching"


def test_hopfield_gradient_methods_agree(rng):
    hop = HopfieldEnergy.from_weights(0.5 * rng.normal(size=(5, 5)), 0.1 * rng.normal(size=5),
                                      "tanh")  # fmt: skip
    patterns = rng.choice([-1.0, 1.0], size=(3, 5))
    grads = {m: np.asarray(pattern_loss_gradient(hop, patterns, m, beta=1e-4)[1])
             for m in ("implicit", "ep", "bptt")}  # fmt: skip
    np.testing.assert_allclose(grads["ep"], grads["implicit"], atol=1e-5)
    np.testing.assert_allclose(grads["bptt"], grads["implicit"], atol=1e-5)
    assert np.abs(grads["implicit"]).max() > 1e-3


@pytest.mark.parametrize("method", ["implicit", "ep"])
def test_hopfield_stores_and_recalls_patterns(method, rng):
    patterns = hadamard(8)[1:4].astype(float)  # three orthogonal ±1 patterns
    learned, info = train_hopfield(patterns, method=method, steps=200)
    assert info["loss"][-1] < 1e-6
    corrupted = patterns + 0.3 * rng.normal(size=patterns.shape)
    settled = recall(learned, corrupted)
    np.testing.assert_allclose(settled, patterns, atol=1e-3)
