"""End states of a minimising process (THEORY §6): minima, basin shares, starts."""

import jax.numpy as jnp
import numpy as np
import pytest

import iel
from iel.basins import find_minima
from iel.data import Endpoints
from iel.dynamics import GradientDescent, simulate
from iel.energies.reference import ReferenceEnergy
from iel.estimators.endpoints.end_states import EndStates
from iel.estimators.endpoints.start_priors import (
    NormalPrior,
    UniformPrior,
    parse_prior,
)

THREE_WELL_MINIMA = np.array([-2.0, 0.0, 2.0])


def _gradient_descent_ends(name, starts, steps, eta, seed=0):
    """End states of plain gradient descent ``x ← x − η∇E(x)`` from ``starts``."""
    import jax

    run = simulate(ReferenceEnergy(name, 1), GradientDescent(), starts, steps,
                   jax.random.PRNGKey(seed), eta, save_every=steps)  # fmt: skip
    return run.x[:, -1]


def _true_shares(ends):
    """Share of end states at −2, 0 and 2 (the three-well minima)."""
    nearest = np.argmin(np.abs(ends - THREE_WELL_MINIMA[None, :]), axis=1)
    return np.bincount(nearest, minlength=3) / len(ends)


def _by_location(model):
    """``[(location, data share, prior share)]`` sorted by location (1-D models)."""
    rows = [(r["location"][0], r["share"], r.get("prior_share")) for r in
            model.diagnostics["minima"]]  # fmt: skip
    return sorted(rows)


@pytest.fixture(scope="module")
def three_well_ends():
    """1000 converged end states of GD on the three-well polynomial, starts ~ N(−0.2, 1)."""
    prior = NormalPrior(np.array([-0.2]), np.array([1.0]))
    starts = np.clip(prior.sample(np.random.default_rng(3), 1000), -3.2, 3.2)
    # η = 0.002 is stable up to |x| ≈ 3.3 (E'' = 5x⁴ − 15x² + 4); 4000 steps converge the
    # slow middle well (E''(0) = 4) to 1e-7
    ends = _gradient_descent_ends("three_well", starts, 4000, 0.002)
    return prior, starts, ends


def test_find_minima_of_the_three_well_polynomial():
    energy = ReferenceEnergy("three_well", 1)
    grid = np.linspace(-2.7, 2.7, 540)[:, None]
    basins = find_minima(energy, grid)
    order = np.argsort(basins.minima[:, 0])
    np.testing.assert_allclose(basins.minima[order, 0], THREE_WELL_MINIMA, atol=1e-6)
    # E'' = 5x⁴ − 15x² + 4: 24 at ±2, 4 at 0
    np.testing.assert_allclose(basins.curvature[order], [24.0, 4.0, 24.0], rtol=1e-5)
    # the maxima at ±1 split the grid on [−2.7, 2.7] into 1.7 : 2 : 1.7
    np.testing.assert_allclose(basins.shares[order], np.array([1.7, 2.0, 1.7]) / 5.4, atol=0.003)
    assert basins.converged.all() and basins.is_minimum.all()
    # a start exactly on the maximum at x = 1 stays there, and is flagged as no minimum
    on_top = find_minima(energy, np.array([[1.0], [2.5]]))
    top = np.argmin(np.abs(on_top.minima[:, 0] - 1.0))
    assert on_top.minima[top, 0] == 1.0 and on_top.curvature[top] == pytest.approx(-6.0)
    assert not on_top.is_minimum[top]


@pytest.fixture(scope="module")
def latent_fit(three_well_ends):
    prior, _, ends = three_well_ends
    return EndStates("poly:6", prior=prior, steps=800, batch=256).fit(Endpoints(ends)).model_


def test_latent_objective_recovers_minima_and_basin_shares(three_well_ends, latent_fit):
    _, _, ends = three_well_ends
    model = latent_fit
    rows = _by_location(model)
    assert len(rows) == 3
    locations = np.array([r[0] for r in rows])
    np.testing.assert_allclose(locations, THREE_WELL_MINIMA, atol=0.05)
    truth = _true_shares(ends)
    data_shares = np.array([r[1] for r in rows])
    prior_shares = np.array([r[2] for r in rows])
    np.testing.assert_allclose(data_shares, truth, atol=1e-12)
    # the fitted basins catch the prior in the proportions the end states show
    np.testing.assert_allclose(prior_shares, truth, atol=0.05)
    # and the degenerate flat energy is not what came back: the fit explains the end states
    # far better than E ≡ const (which leaves every start where it was)
    d = model.diagnostics
    assert d["transport_loss"] < 0.5 * d["transport_loss_flat_energy"]
    values = np.asarray(model.energy(np.linspace(-2.5, 2.5, 101)[:, None]))
    assert np.ptp(values) > 0.1 and model.method == "endpoints-latent"
    assert "increasing transform" in model.identifiability["energy"]


def test_the_starts_a_latent_fit_recovers_lie_in_the_right_basin(three_well_ends, latent_fit):
    _, _, ends = three_well_ends
    recovered = latent_fit.starts
    assert recovered.shape == ends.shape
    # each recovered start descends (under the true energy) to the end state it explains
    truth_ends = find_minima(ReferenceEnergy("three_well", 1), recovered).end_points
    agree = np.mean(np.abs(truth_ends - ends)[:, 0] < 0.05)
    assert agree > 0.9  # the prior draws themselves put ±1.3 % per basin off the shares


def test_likelihood_objective_finds_the_minima(three_well_ends):
    _, _, ends = three_well_ends
    model = iel.fit(Endpoints(ends), "poly:6", objective="likelihood")
    rows = _by_location(model)
    np.testing.assert_allclose([r[0] for r in rows], THREE_WELL_MINIMA, atol=0.05)
    np.testing.assert_allclose([r[1] for r in rows], _true_shares(ends), atol=1e-12)
    assert model.method == "endpoints-likelihood" and model.history == {}


def test_pushforward_likelihood_recovers_step_scaled_energy_and_starts():
    """Partially converged ends of 50 GD steps (η = 0.01) on (x² − 1)² from N(0.3, 0.6²):
    the exact push-forward likelihood identifies η·E = 0.01x⁴ − 0.02x² + const, and inverting
    the fitted step map gives back the starts."""
    prior = NormalPrior(np.array([0.3]), np.array([0.6]))
    starts = prior.sample(np.random.default_rng(0), 800)
    ends = _gradient_descent_ends("double_well", starts, 50, 0.01)
    est = EndStates("poly:4", "pushforward", prior=prior, descent_steps=50).fit(Endpoints(ends))
    terms = dict(est.model_.energy_module.terms())
    assert terms["x0^4"] == pytest.approx(0.01, rel=0.05)
    assert terms["x0^2"] == pytest.approx(-0.02, rel=0.05)
    assert abs(terms.get("x0", 0.0)) < 1e-3 and abs(terms.get("x0^3", 0.0)) < 1e-3
    assert np.median(np.abs(est.model_.starts - starts)) < 0.02
    rows = _by_location(est.model_)
    np.testing.assert_allclose([r[0] for r in rows], [-1.0, 1.0], atol=0.02)
    np.testing.assert_allclose([r[2] for r in rows], [r[1] for r in rows], atol=0.05)
    assert est.model_.diagnostics["step_map_invertible_share"] == 1.0


def test_observed_starts_are_used(three_well_ends):
    _, starts, ends = three_well_ends
    model = EndStates("poly:6", steps=500, batch=256).fit(Endpoints(ends, starts=starts)).model_
    rows = _by_location(model)
    np.testing.assert_allclose([r[0] for r in rows], THREE_WELL_MINIMA, atol=0.05)
    # the "prior" is the observed starts: each basin must catch exactly its own starts
    np.testing.assert_allclose([r[2] for r in rows], _true_shares(ends), atol=0.05)
    assert model.diagnostics["prior"] == "observed starts"
    np.testing.assert_array_equal(model.starts, starts)


def test_end_state_models_save_and_load_with_their_starts(tmp_path, three_well_ends):
    _, _, ends = three_well_ends
    model = iel.fit(Endpoints(ends[:200]), "poly:6", objective="likelihood")
    loaded = iel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.starts, model.starts)
    grid = jnp.linspace(-2.5, 2.5, 11)[:, None]
    np.testing.assert_allclose(loaded.energy(grid), model.energy(grid))


def test_priors_parse_and_reject_bad_specs():
    ends = np.array([[0.0], [2.0], [-2.0], [1.0]])
    p = parse_prior("normal", ends)
    assert isinstance(p, NormalPrior) and p.std[0] == pytest.approx(1.5 * np.std(ends))
    u = parse_prior("uniform:-3:3", ends)
    assert isinstance(u, UniformPrior) and float(u.log_density(jnp.array([4.0]))) == -np.inf
    for bad in ("normal:0:-1", "uniform:2:1", "cauchy", "normal:a:b"):
        with pytest.raises(ValueError, match="prior on starts"):
            parse_prior(bad, ends)


def test_bad_end_state_input_is_refused():
    ends = np.linspace(-2, 2, 30)[:, None]
    with pytest.raises(ValueError, match="objective must be one of"):
        EndStates(objective="magic").fit(Endpoints(ends))
    with pytest.raises(ValueError, match="at least 10 end states"):
        EndStates().fit(Endpoints(ends[:5]))
    with pytest.raises(ValueError, match="smooth density"):
        EndStates(objective="pushforward", prior="uniform:-3:3").fit(Endpoints(ends))
    with pytest.raises(TypeError, match="Endpoints"):
        EndStates().fit(iel.Samples(ends))
    with pytest.raises(ValueError, match="rollout options do not apply"):
        iel.fit(Endpoints(ends), method="rollout")
