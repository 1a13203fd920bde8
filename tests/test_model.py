"""Fitted models: exact save/load round trips without pickle, reports, extrapolation flags."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import iel
from iel.energies import (
    FeatureEnergy,
    Fourier,
    HopfieldEnergy,
    ICNNEnergy,
    MLPEnergy,
    Monomials,
    ParticleEnergy,
    Quadratic,
    ReferenceEnergy,
)
from iel.estimators.base import shift_to_zero_min
from iel.model import FittedModel
from iel.systems import simulate_system


def _model(energy, dim):
    return FittedModel(
        energy_module=energy,
        dynamics=iel.Langevin(0.25),
        energy_spec="test",
        method="test",
        data_kind="trajectories",
        diagnostics={"drift_r2": 0.5, "notes": ["a note"]},
        identifiability={"energy": "E up to a constant"},
        data_low=-np.ones(dim),
        data_high=np.ones(dim),
    )


ENERGIES = [
    FeatureEnergy(Monomials(2, 3) + Fourier(2, 2), np.arange(17.0) / 7, offset=0.3),
    Quadratic.from_matrix([0.1, 0.2], [[2.0, 0.1], [0.1, 1.0]]),
    shift_to_zero_min(MLPEnergy(2, (8, 8), jax.random.PRNGKey(0)), np.zeros((3, 2))),
    ICNNEnergy(2, (4, 4), jax.random.PRNGKey(1)),
    MLPEnergy(2, (4,), jax.random.PRNGKey(2), radial=True),
    HopfieldEnergy.from_weights(np.ones((2, 2)), [0.5, -0.5], rho="hard_sigmoid"),
    ReferenceEnergy("muller_brown", 2) + 2.0 * Quadratic.from_matrix(np.zeros(2), np.eye(2)),
]


@pytest.mark.parametrize("energy", ENERGIES, ids=lambda e: type(e).__name__)
def test_save_load_round_trip_is_exact(tmp_path, energy, rng):
    model = _model(energy, 2)
    model.save(tmp_path / "m")
    back = iel.load(tmp_path / "m")
    x = rng.normal(size=(10, 2))
    np.testing.assert_array_equal(np.asarray(back.energy(x)), np.asarray(model.energy(x)))
    np.testing.assert_array_equal(np.asarray(back.grad(x)), np.asarray(model.grad(x)))
    assert back.temperature == model.temperature
    assert back.dynamics == model.dynamics
    assert back.formula == model.formula
    assert back.diagnostics == model.diagnostics


def test_particle_energy_round_trip(tmp_path, rng):
    energy = ParticleEnergy(
        FeatureEnergy(Monomials(2, 2), rng.normal(size=5)),
        FeatureEnergy(Fourier(2, 1), rng.normal(size=4)),
    )
    model = _model(energy, 2)
    model.save(tmp_path / "p")
    back = iel.load(tmp_path / "p")
    x = rng.normal(size=(3, 6, 2))
    np.testing.assert_array_equal(np.asarray(back.energy(x)), np.asarray(model.energy(x)))


def test_saved_files_hold_no_pickle(tmp_path):
    _model(ENERGIES[0], 2).save(tmp_path / "m")
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["energy"]["type"] == "FeatureEnergy"


def test_save_refuses_to_overwrite_and_load_checks(tmp_path):
    model = _model(ENERGIES[1], 2)
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)
    with pytest.raises(FileNotFoundError, match="no model.json"):
        iel.load(tmp_path / "nothing")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["energy"]["type"] = "os.system"
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown energy type 'os.system'"):
        iel.load(tmp_path / "m")


def test_report_has_the_promised_keys(tmp_path):
    data = simulate_system("double_well", n=20, steps=100, dt=0.01, temperature=0.5)
    model = iel.fit(data, "poly:4")
    model.save(tmp_path / "m")
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    for key in (
        "formula",
        "temperature",
        "energy_spec",
        "n_parameters",
        "diagnostics",
        "identifiability",
    ):
        assert key in report
    assert report["n_parameters"] == 4  # four monomials; the constant is not a parameter
    assert report["energy_spec"] == "poly:4"


def test_extrapolation_flag():
    model = _model(ENERGIES[1], 2)
    flags = model.is_extrapolating(np.array([[0.0, 0.0], [1.5, 0.0], [0.0, -1.01]]))
    np.testing.assert_array_equal(flags, [False, True, True])


def test_a_model_is_read_only_and_changes_make_new_models():
    model = _model(ENERGIES[1], 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.dynamics = iel.Langevin(1.0)
    with pytest.raises(TypeError):
        model.diagnostics["drift_r2"] = 0.9  # the diagnostics are read-only too
    noted = model.with_notes("another").with_diagnostics(method_reason="why", drift_r2=0.7)
    assert noted.diagnostics["notes"] == ("a note", "another")
    assert noted.diagnostics.method_reason == "why" and noted.diagnostics["drift_r2"] == 0.7
    assert model.diagnostics["notes"] == ("a note",) and model.diagnostics["drift_r2"] == 0.5
    assert "method_reason" not in model.diagnostics


def test_the_dynamics_sets_temperature_and_time_convention():
    model = _model(ENERGIES[1], 2)
    assert model.temperature == 0.25
    assert model.time_convention.startswith("dx = −∇E(x) dt + √(2T) dW")
    cold = model.replace(dynamics=iel.GradientFlow())
    assert cold.temperature == 0.0 and cold.time_convention.startswith("dx/dt = −∇E(x)")
    with pytest.raises(TypeError, match="dynamics must be"):
        model.replace(dynamics="dx/dt = −∇E")


def test_simulate_runs_the_fitted_dynamics(rng):
    quadratic = Quadratic.from_matrix([1.0, -1.0], np.eye(2))
    model = _model(quadratic, 2).replace(dynamics=iel.GradientDescent(), step_size=0.1)
    paths = model.simulate(np.zeros((3, 2)), steps=200, seed=1)
    assert paths.x.shape == (3, 201, 2)
    np.testing.assert_allclose(paths.x[:, -1], np.tile([1.0, -1.0], (3, 1)), atol=1e-8)
    noisy = _model(quadratic, 2).replace(step_size=0.01)  # Langevin at T = 0.25
    a = noisy.simulate(np.zeros((2000, 2)), steps=1000, seed=3, save_every=1000).x[:, -1]
    np.testing.assert_allclose(a.mean(0), [1.0, -1.0], atol=0.05)
    np.testing.assert_allclose(a.var(0), [0.25, 0.25], rtol=0.1)  # the stationary law N(c, T)
    with pytest.raises(ValueError, match="pass dt="):
        _model(quadratic, 2).simulate(np.zeros((1, 2)), steps=3)


def test_a_version_one_folder_still_loads(tmp_path):
    model = _model(ENERGIES[1], 2)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format_version"] = 1
    del meta["dynamics"], meta["step_size"]
    meta["time_convention"] = "dx/dt = −∇E(x) (+ √(2T) dW/dt); t in the units of the data"
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    back = iel.load_model(tmp_path / "m")
    assert back.dynamics == iel.Langevin(0.25) and back.step_size is None
