"""Out-of-core trajectories: a memory-mapped or zarr file read in chunks, and the closed-form
fit accumulated over them in one pass (iel.data.store, iel.estimators.trajectories.streamed).

The streamed fit must be the in-memory fit up to the order of summation; chunks must hold the
transitions of :meth:`Trajectories.increments` in its order, whatever the mask, the times and
the chunk size; and a chunk never reads more of the file than its bound (checked by recording
every read, not by timing)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import iel
from iel.cli import app
from iel.data import DataError, Trajectories, TrajectoryStore, open_trajectories
from iel.data.store import MappedArray
from iel.estimators import OneStepClosedForm, StreamedClosedForm

DT, TEMPERATURE = 0.01, 0.5


def _double_well(n: int, steps: int, seed: int = 0) -> np.ndarray:
    """Euler–Maruyama paths of ``E = x₀⁴ − 2x₀² + x₁²`` at ``T = 0.5``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, steps, 2))
    x[:, 0] = rng.normal(size=(n, 2))
    for k in range(steps - 1):
        s = x[:, k]
        force = np.stack([-4 * s[:, 0] ** 3 + 4 * s[:, 0], -2 * s[:, 1]], axis=1)
        x[:, k + 1] = s + DT * force + np.sqrt(2 * TEMPERATURE * DT) * rng.normal(size=(n, 2))
    return x


def _close(a, b, tol=1e-10) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300)) <= tol


@pytest.fixture(scope="module")
def paths():
    return _double_well(12, 150)


@pytest.mark.parametrize("spec", ["poly:4", "rbf:8"])
def test_streamed_fit_equals_in_memory_fit(paths, tmp_path, spec):
    np.save(tmp_path / "x.npy", paths)
    store = open_trajectories(tmp_path / "x.npy", dt=DT, chunk_transitions=333)
    assert isinstance(store.x, MappedArray) and store.n_chunks() == 6
    streamed = StreamedClosedForm(spec, seed=1).fit(store).model_
    memory = OneStepClosedForm(spec, seed=1).fit(Trajectories(paths, dt=DT)).model_
    theta_s = np.asarray(streamed.energy_module.theta)
    theta_m = np.asarray(memory.energy_module.theta)
    assert _close(theta_m, theta_s)
    assert _close(memory.temperature, streamed.temperature)
    for key in ("code_length_bits", "null_code_bits", "drift_r2", "residual_scale"):
        assert _close(memory.diagnostics[key], streamed.diagnostics[key]), key
    assert streamed.diagnostics["n_transitions"] == 12 * 149
    assert streamed.diagnostics["streamed"]["n_chunks"] == 6
    assert np.array_equal(streamed.data_low, memory.data_low)
    # and the fit recovers the system (T within 10 % on 1 788 transitions)
    assert abs(streamed.temperature / TEMPERATURE - 1) < 0.1


@pytest.mark.parametrize("size", [5, 40, 1000])
def test_chunks_hold_the_in_memory_transitions_with_masks_and_irregular_times(size):
    rng = np.random.default_rng(3)
    n, steps = 6, 60
    x = rng.normal(size=(n, steps, 2))
    t = np.cumsum(rng.uniform(0.05, 0.2, size=(n, steps)), axis=1)
    mask = rng.random((n, steps)) > 0.3
    mask[2, 5:50] = False  # a gap across several windows
    mask[4] = False
    mask[4, 17] = True  # one observed state: no transition
    x[~mask] = np.nan  # missing states may be NaN
    for times in ({"t": t}, {"t": t[0]}, {"dt": 0.1}):
        memory = Trajectories(x, mask=mask, **times)
        store = TrajectoryStore(x, mask=mask, chunk_transitions=size, **times)
        chunks = list(store.chunks())
        assert all(c.n_transitions <= size for c in chunks)
        got = [np.concatenate([getattr(c, f) for c in chunks]) for f in ("x0", "dx", "h")]
        for want, have in zip(memory.increments(), got):
            assert want.shape == have.shape
            np.testing.assert_allclose(have, want, rtol=1e-15, atol=0)
        assert store.n_transitions == memory.n_transitions
        assert np.array_equal(store.sample_states(10**6), memory.observed_states())


class _Recorder:
    """An array-like over ``x`` that records how many states each read returns."""

    def __init__(self, x):
        self.array, self.reads = x, []
        self.shape, self.dtype, self.ndim = x.shape, x.dtype, x.ndim

    def __getitem__(self, index):
        out = self.array[index]
        self.reads.append(int(np.prod(np.shape(out)[:2])) if np.ndim(out) >= 2 else 1)
        return out


@pytest.mark.parametrize("size", [7, 100, 4096])
def test_a_chunk_never_reads_more_than_its_bound(size):
    x = np.random.default_rng(0).normal(size=(30, 50, 3))
    recorder = _Recorder(x)
    store = TrajectoryStore(recorder, dt=0.1, chunk_transitions=size)
    bound = store.chunk_read_bound()
    rows = max(1, size // 49)
    assert bound <= size + max(rows, 2)  # whole trajectories, or a window and one state before
    count = 0
    for chunk in store.chunks():
        assert chunk.n_transitions <= size
        count += chunk.n_transitions
    assert count == 30 * 49
    assert recorder.reads and max(recorder.reads) <= bound
    # the reads together cover each state at most twice (a window's first state is also the
    # previous window's last): one pass
    assert sum(recorder.reads) <= 2 * x.shape[0] * x.shape[1]


def test_npz_members_are_memory_mapped_and_compressed_ones_refused(paths, tmp_path):
    mask = np.ones(paths.shape[:2], bool)
    mask[3, 40:45] = False
    np.savez(tmp_path / "x.npz", x=paths, dt=DT, mask=mask)
    store = open_trajectories(tmp_path / "x.npz", chunk_transitions=500)
    assert isinstance(store.x, MappedArray) and isinstance(store.mask, MappedArray)
    assert store.dt == DT
    memory = Trajectories(paths, dt=DT, mask=mask)
    assert store.n_transitions == memory.n_transitions
    np.savez_compressed(tmp_path / "c.npz", x=paths, dt=DT)
    with pytest.raises(DataError, match=r"compressed.*np\.savez"):
        open_trajectories(tmp_path / "c.npz")


def test_bad_files_give_clear_errors(paths, tmp_path):
    np.save(tmp_path / "flat.npy", paths[0])
    with pytest.raises(DataError, match=r"\(N, T, d\).*x\[None\]"):
        open_trajectories(tmp_path / "flat.npy", dt=DT)
    np.save(tmp_path / "x.npy", paths)
    with pytest.raises(DataError, match="pass dt"):
        open_trajectories(tmp_path / "x.npy")
    bad = paths.copy()
    bad[7, 33, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    store = open_trajectories(tmp_path / "nan.npy", dt=DT, chunk_transitions=300)
    # 300 // 149 = 2 trajectories per chunk: trajectory 7 is in chunk 3, found while streaming
    with pytest.raises(DataError, match=r"chunk 3: trajectory 7, time index 33 has x = nan"):
        StreamedClosedForm("poly:2", max_states=10).fit(store)
    t = np.tile(np.arange(150) * DT, (12, 1))
    t[5, 90] = t[5, 89]
    store = TrajectoryStore(paths, t=t, chunk_transitions=100)  # windows: 2 per trajectory
    with pytest.raises(DataError, match=r"chunk 10: trajectory 5, time index 90: times must"):
        list(store.chunks())
    with pytest.raises(ValueError, match="one pass"):
        StreamedClosedForm("mlp:8").fit(TrajectoryStore(paths, dt=DT))
    with pytest.raises(ValueError, match="in memory"):
        iel.fit(TrajectoryStore(paths, dt=DT), "poly:4", method="rollout")


def test_zarr_store_and_a_clear_error_without_zarr(paths, tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "x.zarr"), mode="w")
    group.create_array("x", shape=paths.shape, chunks=(4, 150, 2), dtype="f8")[:] = paths
    store = open_trajectories(tmp_path / "x.zarr", dt=DT, chunk_transitions=400)
    reference = TrajectoryStore(paths, dt=DT, chunk_transitions=400)
    for a, b in zip(store.chunks(), reference.chunks()):
        assert np.array_equal(a.x0, b.x0) and np.array_equal(a.h, b.h)
    assert np.array_equal(store.sample_states(50, seed=2), reference.sample_states(50, seed=2))
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install zarr"):
        open_trajectories(tmp_path / "x.zarr", dt=DT)


def test_cli_fits_a_memory_mapped_npy_in_chunks(paths, tmp_path):
    np.save(tmp_path / "big.npy", paths)
    out = tmp_path / "big.iel"
    args = ["fit", str(tmp_path / "big.npy"), "--dt", str(DT), "--energy", "poly:4",
            "--stream", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "read 1 788 transitions in 1 chunks" in text and "peak resident memory" in text
    report = json.loads((out / "report.json").read_text())
    memory = OneStepClosedForm("poly:4").fit(Trajectories(paths, dt=DT)).model_
    assert _close(memory.temperature, report["temperature"])
    assert report["diagnostics"]["streamed"]["n_transitions"] == 1788
    assert (out / "landscape.png").exists()
    # a NaN found while streaming is an error naming where, and nothing is written
    bad = paths.copy()
    bad[2, 10, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "bad.npy"), "--dt", "0.01",
                                      "--energy", "poly:2", "--stream"])  # fmt: skip
    assert result.exit_code != 0
    assert "trajectory 2, time index 10" in " ".join(result.output.split())
    assert not (tmp_path / "bad.iel" / "model.json").exists()


def test_auto_on_streamed_data_compares_closed_form_families(tmp_path):
    paths = _double_well(10, 300, seed=4)
    store = TrajectoryStore(paths, dt=DT, chunk_transitions=1000)
    model = iel.fit(store, "auto")
    assert model.energy_spec.startswith("auto → poly:4")
    assert any("energy 'auto' on streamed data" in n for n in model.diagnostics["notes"])
    assert "second pass" in model.diagnostics["method_reason"]


def test_cli_streams_above_the_size_threshold_and_reads_small_files_in_memory(
    paths, tmp_path, monkeypatch
):
    import iel.data.store as store_module

    np.savez(tmp_path / "walk.npz", x=paths, dt=DT)
    args = ["fit", str(tmp_path / "walk.npz"), "--energy", "poly:2", "--out"]
    small = CliRunner().invoke(app, [*args, str(tmp_path / "a"), "--method", "onestep"])
    assert small.exit_code == 0, small.output
    assert "streaming" not in small.output and "Trajectories(N=12" in small.output
    monkeypatch.setattr(store_module, "STREAM_ABOVE_BYTES", paths.nbytes - 1)
    big = CliRunner().invoke(app, [*args, str(tmp_path / "b")])
    assert big.exit_code == 0, big.output
    text = " ".join(big.output.split())
    assert "streaming the trajectories (over" in text and "read 1 788 transitions" in text
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert _close(a["temperature"], b["temperature"])
    # a .npy holds no times: load_data says how to open it
    np.save(tmp_path / "x.npy", paths)
    with pytest.raises(DataError, match="open_trajectories"):
        iel.load_data(tmp_path / "x.npy")
