"""The estimator contract (STYLE practice 7), run over every estimator.

Every concrete subclass of :class:`iel.AbstractEstimator` is found by walking the subclasses;
each needs one entry in :data:`CASES` (its data kind and fast settings), and a test fails
loudly for an estimator without one.  The checks are the scikit-learn contract of
:mod:`iel.estimators.base`: ``__init__`` stores the settings unchanged and does no work;
``fit(data)`` returns ``self``; learned attributes end in ``_`` and exist only after a fit;
refitting discards the previous fit; the model saves and loads; its report has the documented
fields and is JSON; wrong or non-finite data are refused with a clear error.
"""

from __future__ import annotations

import copy
import inspect
import json

import numpy as np
import pytest
from contracts_support import KINDS, concrete_subclasses, missing_from_table, tiny_data, with_nan

import iel

# One row per estimator: (data kind, settings).  Settings are the fastest that still fit
# something (networks: ~20–50 steps); the checks are of the contract, not of accuracy.
CASES: dict[str, tuple[str, dict]] = {
    "OneStepClosedForm": ("trajectories", {"energy": "poly:4", "seed": 3}),
    "StreamedClosedForm": ("trajectories", {"energy": "poly:4", "seed": 3}),
    "FreeDriftClosedForm": ("trajectories", {"features": "poly:3", "seed": 3}),
    "DiffusionClosedForm": (
        "trajectories",
        {"energy": "poly:2", "diffusion": "scalar:1", "seed": 3},
    ),
    "ExponentiatedGradientClosedForm": ("proportions", {"energy": "poly:2", "seed": 3}),
    "OneStepLikelihood": ("trajectories", {"energy": "mlp:8", "steps": 30, "seed": 3}),
    "Rollout": (
        "trajectories",
        {"energy": "poly:2", "steps": 10, "horizon": 2, "substeps": 1, "seed": 3},
    ),
    "SnapshotOneStep": ("snapshots", {"energy": "poly:4", "pairing": "transport", "seed": 3}),
    "SnapshotRollout": (
        "snapshots",
        {
            "energy": "poly:2",
            "steps": 2,
            "substeps": 1,
            "sinkhorn_iterations": 2,
            "batch_size": 8,
            "coupling": "exact",
            "seed": 3,
        },
    ),  # fmt: skip
    "ScoreMatching": ("samples", {"energy": "poly:4", "seed": 3}),
    "DenoisingScoreMatching": (
        "samples",
        {"energy": "mlp:8", "steps": 30, "batch": 64, "seed": 3},
    ),
    "ContrastiveDivergence": (
        "samples",
        {"energy": "poly:2", "steps": 3, "chains": 20, "mala_steps": 1, "seed": 3},
    ),
    "EndStates": (
        "endpoints",
        {"energy": "poly:4", "objective": "likelihood", "steps": 20, "batch": 32, "seed": 3},
    ),
}

ESTIMATORS = concrete_subclasses(iel.AbstractEstimator)
COVERED = [c for c in ESTIMATORS if c.__name__ in CASES]
REPORT_FIELDS = ("formula", "temperature", "energy_spec", "method", "data_kind", "diagnostics",
                 "identifiability", "stop_reason", "fit_seconds")  # fmt: skip


def _ids(cls):
    return cls.__name__


def _make(cls):
    kind, settings = CASES[cls.__name__]
    return cls(**settings), kind, settings


def _learned(est) -> set[str]:
    return {name for name in vars(est) if name not in _init_parameters(type(est))}


def _init_parameters(cls) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self"]


def _probe_states(model) -> np.ndarray:
    """A few states inside the data's box (where the model is meant to be used)."""
    low, high = np.asarray(model.data_low), np.asarray(model.data_high)
    u = np.linspace(0.1, 0.9, 5)[:, None]
    return low + u * (high - low)


def _values(model, x) -> np.ndarray:
    """``E`` on ``x`` (for energies) or the drift ``F`` (for non-gradient models)."""
    return np.asarray(model.energy(x) if model.is_gradient else model.force(x))


@pytest.fixture(scope="module", params=COVERED, ids=_ids)
def fitted(request):
    """``(estimator class, estimator, fit's return value, data)``: one fit per estimator."""
    est, kind, _ = _make(request.param)
    data = tiny_data(kind, seed=0)
    returned = est.fit(data)
    return request.param, est, returned, data


def test_every_estimator_has_a_contract_case():
    assert len(ESTIMATORS) >= 10, [c.__name__ for c in ESTIMATORS]
    message = missing_from_table(ESTIMATORS, CASES, "estimators", "CASES in " + __name__)
    assert message is None, message
    stale = sorted(set(CASES) - {c.__name__ for c in ESTIMATORS})
    assert not stale, f"CASES names estimators that no longer exist: {stale}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_estimator_is_exported_by_iel(cls):
    assert getattr(iel, cls.__name__, None) is cls, f"iel.{cls.__name__} is not exported"
    assert cls.__name__ in iel.__all__


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_init_stores_settings_unchanged_and_does_no_work(cls):
    # sentinel objects: stored as given means stored as the same object
    kind, settings = CASES[cls.__name__]
    given = dict(settings, seed=np.int64(11))  # the seed as given, not converted
    est = cls(**given)
    for name, value in given.items():
        assert getattr(est, name) is value, f"{cls.__name__}.{name} was not stored as given"
    # every setting of __init__ is an attribute of the same name (defaults included) …
    params = inspect.signature(cls.__init__).parameters
    for name, param in params.items():
        if name == "self":
            continue
        assert hasattr(est, name), f"{cls.__name__}() does not store its setting {name!r}"
        if name not in given:
            default = param.default
            stored = getattr(est, name)
            assert stored is default or stored == default, (name, stored, default)
    # … and nothing else: no learned attribute, no derived state
    assert set(vars(est)) == set(_init_parameters(cls)), set(vars(est)) ^ set(params)
    assert not hasattr(est, "model_") and not hasattr(est, "energy_")


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_settings_are_keyword_arguments_with_defaults(cls):
    """Every setting has a default, so ``cls()`` is the common case in one line."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    no_default = [p.name for p in params if p.default is inspect.Parameter.empty]
    assert not no_default, f"{cls.__name__} settings without a default: {no_default}"
    cls()  # and constructing with the defaults does no work that could fail


def test_fit_returns_self_and_learned_attributes_end_in_underscore(fitted):
    cls, est, returned, data = fitted
    assert returned is est
    learned = _learned(est)
    assert "model_" in learned
    bad = sorted(n for n in learned if not n.endswith("_"))
    assert not bad, f"{cls.__name__}.fit set attributes not ending in '_': {bad}"
    assert isinstance(est.model_, iel.FittedModel)
    assert est.energy_ is est.model_.energy_module
    assert est.temperature_ == est.model_.temperature


def test_fit_leaves_the_settings_unchanged(fitted):
    cls, est, _, _ = fitted
    _, settings = CASES[cls.__name__]
    for name, value in settings.items():
        assert getattr(est, name) == value, f"fit changed the setting {name!r}"


@pytest.fixture(scope="module")
def refitted(fitted):
    """``(class, estimator fitted on data A then refitted on data B, the A model, B)``."""
    cls, first, _, _ = fitted
    kind, _ = CASES[cls.__name__]
    other = tiny_data(kind, seed=1)
    est = copy.deepcopy(first)
    old_model = est.model_
    returned = est.fit(other)
    return cls, est, returned, old_model, other


def test_refit_replaces_the_model(refitted):
    cls, est, returned, old_model, other = refitted
    assert returned is est
    assert est.model_ is not old_model
    # a different result: the new model is fitted to the other data
    np.testing.assert_array_equal(est.model_.data_low, np.min(other.observed_states(), axis=0))
    np.testing.assert_array_equal(est.model_.data_high, np.max(other.observed_states(), axis=0))
    x = _probe_states(old_model)
    assert not np.allclose(_values(est.model_, x), _values(old_model, x), rtol=1e-9, atol=1e-12)


def test_refit_equals_a_fresh_fit(refitted):
    """Nothing of the first fit is left over: refitting gives exactly what a fresh estimator
    fits to the same data (no warm start from the previous model, no stale attributes)."""
    cls, est, _, _, other = refitted
    _check_same_fit(est, _make(cls)[0].fit(other))


def _check_same_fit(est, fresh):
    assert _learned(est) == _learned(fresh)
    x = _probe_states(fresh.model_)
    np.testing.assert_allclose(_values(est.model_, x), _values(fresh.model_, x),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    assert est.model_.temperature == pytest.approx(fresh.model_.temperature, rel=1e-10, abs=1e-14)
    assert est.model_.report()["formula"] == fresh.model_.report()["formula"]


def test_save_and_load_round_trip(fitted, tmp_path):
    cls, est, _, data = fitted
    model = est.model_
    model.save(tmp_path / "model")
    loaded = iel.load_model(tmp_path / "model")
    assert type(loaded.energy_module) is type(model.energy_module)
    x = np.concatenate([_probe_states(model), data.observed_states()[:3]])
    np.testing.assert_allclose(_values(loaded, x), _values(model, x), rtol=1e-12, atol=1e-12)
    assert loaded.temperature == model.temperature
    assert json.dumps(loaded.report(), sort_keys=True) == json.dumps(model.report(), sort_keys=True)
    if model.starts is not None:
        np.testing.assert_array_equal(loaded.starts, model.starts)
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "model")


def test_report_has_the_documented_fields_and_is_json(fitted):
    cls, est, _, data = fitted
    report = est.model_.report()
    missing = [f for f in REPORT_FIELDS if f not in report]
    assert not missing, f"{cls.__name__} report lacks {missing}"
    text = json.dumps(report)
    assert json.loads(text)["method"] == report["method"]
    assert isinstance(report["formula"], str) and report["formula"]
    assert isinstance(report["temperature"], float) and report["temperature"] >= 0
    assert isinstance(report["energy_spec"], str) and report["energy_spec"]
    assert report["method"] == est.model_.method and report["method"]
    assert report["data_kind"] == data.kind
    assert isinstance(report["diagnostics"], dict)
    assert isinstance(report["identifiability"], dict) and report["identifiability"]
    assert all(isinstance(v, str) for v in report["identifiability"].values())
    assert isinstance(report["stop_reason"], str) and report["stop_reason"]
    assert isinstance(report["fit_seconds"], float) and report["fit_seconds"] >= 0


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_wrong_data_kind_is_refused_naming_the_expected_kind(cls):
    kind, _ = CASES[cls.__name__]
    for other in KINDS:
        if other == kind:
            continue
        est = _make(cls)[0]
        with pytest.raises((TypeError, ValueError)) as info:
            est.fit(tiny_data(other, seed=0))
        message = str(info.value).lower()
        assert kind.rstrip("s") in message, (
            f"{cls.__name__}.fit({other}) refused with a message that does not name "
            f"{kind}: {info.value}"
        )
        assert not hasattr(est, "model_")
    # a bare array is not a data set: the containers validate, so the estimator asks for one
    est = _make(cls)[0]
    with pytest.raises((TypeError, ValueError)) as info:
        est.fit(np.asarray(tiny_data(kind, seed=0).x))
    assert kind.rstrip("s") in str(info.value).lower() or "endpoints" in str(info.value).lower()


@pytest.mark.parametrize("cls", COVERED, ids=_ids)
def test_non_finite_states_are_refused(cls):
    kind, _ = CASES[cls.__name__]
    est = _make(cls)[0]
    with pytest.raises(ValueError) as info:
        est.fit(with_nan(kind))  # the container's constructor or the fit must refuse
    message = str(info.value).lower()
    assert "nan" in message or "non-finite" in message or "finite" in message, info.value
    assert not hasattr(est, "model_")
