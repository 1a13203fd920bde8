"""The same data and seed give the same model, bit for bit, and the report says what produced
it: the seed, the library versions, JAX's backend and precision."""

import importlib.metadata
import json

import jax
import numpy as np
import pytest

import iel
from iel.model import RECORDED_PACKAGES
from iel.systems import simulate_system


@pytest.fixture(scope="module")
def walks():
    return simulate_system("double_well", n=30, steps=60, dt=0.01, temperature=0.3, seed=4)


def _saved(model, folder):
    model.save(folder)
    with np.load(folder / "model.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads((folder / "model.json").read_text())


def _same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a
    )


@pytest.mark.parametrize(
    ("energy", "options"),
    [("poly:4", {}), ("mlp:8", {"steps": 25})],
    ids=["closed-form", "mlp-iterative"],
)
def test_the_same_data_and_seed_give_a_bit_identical_model(tmp_path, walks, energy, options):
    first, meta1 = _saved(iel.fit(walks, energy, seed=3, **options), tmp_path / "a")
    second, meta2 = _saved(iel.fit(walks, energy, seed=3, **options), tmp_path / "b")
    assert _same_bits(first, second)
    for meta in (meta1, meta2):
        meta.pop("fit_seconds")
    assert meta1 == meta2
    if energy.startswith("mlp"):  # the seed reaches the fit: another gives other weights
        other, _ = _saved(iel.fit(walks, energy, seed=4, **options), tmp_path / "c")
        assert not _same_bits(first, other)


def test_the_report_records_seed_versions_and_backend(tmp_path, walks):
    iel.fit(walks, "poly:2", seed=17).save(tmp_path / "m")
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["seed"] == 17
    environment = report["environment"]
    assert set(environment["versions"]) == set(RECORDED_PACKAGES)
    for name, version in environment["versions"].items():
        try:
            assert version == importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert version == "missing"  # named, not left out
    assert environment["jax_backend"] == jax.default_backend()
    assert environment["jax_enable_x64"] is True
    assert environment["jax_devices"] and all(":" in d for d in environment["jax_devices"])
    back = iel.load(tmp_path / "m")  # the model keeps what its fit ran on
    assert back.seed == 17 and dict(back.environment)["versions"] == environment["versions"]


def test_a_model_folder_without_seed_or_environment_still_loads(tmp_path, walks):
    iel.fit(walks, "poly:2", seed=1).save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    del meta["seed"], meta["environment"]  # as written before they were recorded
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    back = iel.load(tmp_path / "m")
    assert back.seed is None and back.environment is None
    back.save(tmp_path / "again")  # its report says the environment is the writer's
    report = json.loads((tmp_path / "again" / "report.json").read_text())
    assert report["seed"] is None
    assert report["environment"]["recorded"] == "when the report was written"
