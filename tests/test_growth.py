"""Growing and shrinking populations: couplings with births and deaths between snapshots.

The population: particles in the double well ``V = (x² − 1)²`` (Euler–Maruyama, ``T`` small),
started in both wells; those in the left well (``x < 0``) divide at rate ``BIRTH``, those in
the right one die at rate ``DEATH``.  Every snapshot holds the whole population, so the left
well's share grows without any particle crossing the barrier, and a balanced plan must carry
mass across it.
"""

import json

import numpy as np
import pytest

import iel
from iel.data import DataError, Snapshots, growth_rate_from_scores, load_data, save_data
from iel.transport.unbalanced import couple_with_growth, unbalanced_plan

BIRTH, DEATH, GAP, TIMES = 10.0, 5.0, 0.02, 4


def true_force(x):
    return -4 * x * (x**2 - 1)


def grow(n0=400, dt=1e-3, temperature=0.005, seed=0):
    """The snapshots (one array per time) of the growing population."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random((n0, 1)) < 0.5, -1.0, 1.0) + 0.3 * rng.standard_normal((n0, 1))
    snaps = [x.copy()]
    for _ in range(TIMES - 1):
        for _ in range(round(GAP / dt)):
            noise = np.sqrt(2 * temperature * dt) * rng.standard_normal(x.shape)
            x = x + dt * true_force(x) + noise
            u = rng.random(len(x))
            divide = (x[:, 0] < 0) & (u < BIRTH * dt)
            die = (x[:, 0] > 0) & (u > 1 - DEATH * dt)
            x = np.concatenate([x[~die], x[divide]])
        snaps.append(x.copy())
    return snaps


def rates(x):
    return np.where(x[:, 0] < 0, BIRTH, -DEATH)


@pytest.fixture(scope="module")
def population():
    snaps = grow()
    x = np.concatenate(snaps)
    t = np.repeat(GAP * np.arange(TIMES), [len(s) for s in snaps])
    return snaps, x, t


def force_error(model, x):
    """``‖F̂ − F‖ / ‖F‖`` over the observed states."""
    f = true_force(x)[:, 0]
    return float(np.sqrt(np.mean((np.asarray(model.force(x))[:, 0] - f) ** 2) / np.mean(f**2)))


def test_balanced_fit_is_biased_given_rates_recover_the_energy(population):
    """The balanced plan drags right-well particles across the barrier to feed the growing
    left well: the force is wrong several times over.  Weighting each particle by its known
    expected descendants ``exp(gΔt)`` recovers it (error at the level of the noise-free
    pairing on these populations, ~0.2), and the mass change per interval is the population's
    own within the births' and deaths' sampling error."""
    snaps, x, t = population
    balanced = iel.fit(Snapshots(x, t), "poly:4", pairing="transport")
    given = iel.fit(Snapshots(x, t, growth_rate=rates(x)), "poly:4")
    assert force_error(balanced, x) > 2.0
    assert force_error(given, x) < 0.3
    assert balanced.diagnostics["growth"]["mode"] == "none"
    report = given.diagnostics["growth"]
    assert report["mode"] == "given" and "exp(g·Δt)" in report["assumption"]
    assert "growth" in given.identifiability
    for k, interval in enumerate(report["mass_change"]):
        n = len(snaps[k])
        truth = len(snaps[k + 1]) / n
        # births and deaths are Poisson: ±3 standard deviations of their count
        tolerance = 3 * np.sqrt(n * (np.exp(BIRTH * GAP) - np.exp(-DEATH * GAP) + 1) / 2) / n
        assert interval["mass_change"] == pytest.approx(truth, abs=tolerance)
        assert (interval["from"], interval["to"]) == pytest.approx((GAP * k, GAP * (k + 1)))


def test_unbalanced_fit_recovers_the_energy_and_where_the_population_grows(population):
    """Without rates, ``growth="auto"`` relaxes the source marginal: the fit recovers the
    energy, and the descendants per particle (row sums of the plan) are ``exp(βΔt)`` in the
    dividing well and ``exp(−δΔt)`` in the dying one."""
    snaps, x, t = population
    model = iel.fit(Snapshots(x, t), "poly:4", growth="auto")
    assert force_error(model, x) < 0.3
    assert model.diagnostics["growth"]["mode"] == "unbalanced"
    assert any("relative mass change per interval" in note for note in model.diagnostics.notes)
    for k in range(TIMES - 1):
        coupling = couple_with_growth(snaps[k], snaps[k + 1])
        left = snaps[k][:, 0] < 0
        n_left = left.sum()
        assert np.median(coupling.descendants[left]) == pytest.approx(
            np.exp(BIRTH * GAP), abs=3 * np.sqrt(BIRTH * GAP / n_left) + 0.03
        )
        assert np.median(coupling.descendants[~left]) == pytest.approx(
            np.exp(-DEATH * GAP), abs=3 * np.sqrt(DEATH * GAP / (~left).sum()) + 0.03
        )
        assert coupling.mass_change == pytest.approx(len(snaps[k + 1]) / len(snaps[k]))


def test_large_reg_m_is_the_balanced_plan(rng):
    """``reg_m → ∞``: the source marginal is matched too (rows ``1/n``)."""
    a, b = rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + [1.0, 0.0]
    plan, _, _ = unbalanced_plan(a, b, reg_m=1e3, epsilon=0.3)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 50, rtol=1e-2)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 50, rtol=1e-6)  # the target: matched
    small, _, _ = unbalanced_plan(a, b, reg_m=1.0, epsilon=0.3)
    assert np.ptp(small.sum(axis=1) * 50) > 1.0  # a small weight creates and destroys mass


def test_growth_rate_is_validated(population):
    _, x, t = population
    with pytest.raises(DataError, match=rf"one log growth rate per row, shape \({len(x)},\)"):
        Snapshots(x, t, growth_rate=np.zeros(5))
    with pytest.raises(DataError, match="growth_rate"):
        Snapshots(x, t, growth_rate=np.full(len(x), np.nan))
    with pytest.raises(DataError, match="growth_rate"):
        Snapshots(x, t, growth_rate=["fast"] * len(x))
    with pytest.raises(ValueError, match="growth='given' needs growth rates"):
        iel.fit(Snapshots(x, t), "poly:4", growth="given")
    with pytest.raises(ValueError, match="growth must be one of"):
        iel.fit(Snapshots(x, t), "poly:4", growth="yes")
    with pytest.raises(ValueError, match="growth='none' for the rollout"):
        iel.fit(Snapshots(x, t, growth_rate=rates(x)), "poly:4", method="rollout")
    with pytest.raises(ValueError, match="reg_m"):
        iel.fit(Snapshots(x, t), "poly:4", growth="auto", reg_m=-1.0)


def test_growth_rates_from_scores():
    """The logistic birth–death map: a proliferating cell grows at ``β_max − δ_min``, an
    apoptotic one shrinks at ``β_min − δ_max``, one with both scores low neither."""
    g = growth_rate_from_scores([5.0, -5.0, -5.0], [-5.0, 5.0, -5.0])
    np.testing.assert_allclose(g, [1.4, -1.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(growth_rate_from_scores([5.0], per_day=1 / 24), [1.4 / 24])
    centre = growth_rate_from_scores([0.25], birth={"low": 0.0, "high": 2.0})
    np.testing.assert_allclose(centre, [1.0 - 0.3])  # half way at the centre
    with pytest.raises(DataError, match="one of each per cell"):
        growth_rate_from_scores([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="give proliferation"):
        growth_rate_from_scores()


def test_growth_rate_round_trips_through_npz_and_csv_refuses_it(tmp_path, population):
    _, x, t = population
    data = Snapshots(x, t, growth_rate=rates(x))
    save_data(tmp_path / "grow.npz", data)
    back = load_data(tmp_path / "grow.npz")
    np.testing.assert_array_equal(back.growth_rate, data.growth_rate)
    with pytest.raises(DataError, match=r"written as \.npz"):
        save_data(tmp_path / "grow.csv", data)


def test_cli_growth_option(tmp_path, population):
    from typer.testing import CliRunner

    from iel.cli import app

    _, x, t = population
    save_data(tmp_path / "grow.npz", Snapshots(x, t, growth_rate=rates(x)))
    out = tmp_path / "fit"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "grow.npz"), "--energy", "poly:4",
                                      "--growth", "given", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    growth = report["diagnostics"]["growth"]
    assert growth["mode"] == "given" and len(growth["mass_change"]) == TIMES - 1
    bad = CliRunner().invoke(app, ["fit", str(tmp_path / "grow.npz"), "--energy", "poly:4",
                                   "--growth", "maybe", "--out", f"{tmp_path}/bad"])  # fmt: skip
    assert bad.exit_code != 0 and "growth must be one of" in bad.output
