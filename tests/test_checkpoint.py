"""Checkpoint, resume and Ctrl-C for the iterative fits (iel.training.run_training and what
uses it): the files are written every N steps and load without pickle, a resumed loop ends
where the uninterrupted one ends, an interrupt keeps the best parameters so far, and a resume
from other data or settings is refused."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import iel
from iel.systems import simulate_system
from iel.training import (
    Checkpointer,
    CheckpointError,
    adam_step,
    checkpointing,
    run_training,
)

TARGET = jnp.asarray([1.0, -2.0, 0.5])


def _loss(params, batch):
    return jnp.mean((batch @ params["w"] - batch @ TARGET) ** 2) + 0.1 * jnp.sum(params["b"] ** 2)


def _loop(steps=60, interrupt_at=None, seen=None, on_step=None, scores=None, **kwargs):
    """A small stochastic loop: Adam on a least-squares loss with minibatches drawn from a
    generator, scored on fixed held-out rows."""
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(200, 3))
    held = jnp.asarray(rng.normal(size=(50, 3)))
    params = {"w": jnp.zeros(3), "b": jnp.ones(2)}
    optimiser = optax.adam(0.05)
    step = adam_step(optimiser, _loss)

    def train_step(p, state, batch):
        if on_step is not None:
            on_step()
        return step(p, state, batch)

    def score(p, _):
        value = float(_loss(p, held)) if scores is None else scores[len(seen)]
        if seen is not None:
            seen.append((p, value))
        return value

    def progress(k, total, value):
        if interrupt_at is not None and k >= interrupt_at:
            raise KeyboardInterrupt

    result = run_training(
        params, optimiser.init(params), train_step,
        lambda: (jnp.asarray(rng.choice(rows, 16, replace=False)),), score,
        steps=steps, patience=100, eval_every=5, progress=progress, rng=rng, **kwargs,
    )  # fmt: skip
    return result, rng


def _same(a, b):
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


def test_checkpoint_is_written_every_n_steps_and_loads_without_pickle(tmp_path):
    saved_steps = []

    def look():  # called at the start of every step: what the latest checkpoint holds
        path = tmp_path / "loop-0.json"
        saved_steps.append(json.loads(path.read_text())["step"] if path.exists() else 0)

    with checkpointing(Checkpointer(tmp_path, every=7)):
        result, _ = _loop(steps=30, on_step=look)
    # before step k the latest save is from the last multiple of 7 below k
    assert saved_steps == [7 * ((k - 1) // 7) for k in range(1, 31)]
    meta = json.loads((tmp_path / "loop-0.json").read_text())
    assert meta["step"] == 30 and meta["stop_reason"] == "reached the step limit (30)"
    npz_files = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert npz_files == [meta["arrays"]]  # earlier saves are removed
    with np.load(tmp_path / meta["arrays"], allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)
        np.testing.assert_array_equal(arrays["best/0"], np.asarray(result.params["b"]))
        np.testing.assert_array_equal(arrays["best/1"], np.asarray(result.params["w"]))
        assert arrays["opt_state/0"].dtype == np.int32 and int(arrays["opt_state/0"]) == 30


def test_resumed_loop_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    full, full_rng = _loop(steps=60)
    with checkpointing(Checkpointer(tmp_path, every=0)):  # written only at the interrupt
        part, _ = _loop(steps=60, interrupt_at=25)
    assert part.stop_reason.startswith("interrupted at step 25 of 60")
    calls = []
    with checkpointing(Checkpointer(resume=tmp_path)):
        resumed, resumed_rng = _loop(steps=60, on_step=lambda: calls.append(1))
    assert len(calls) == 60 - 25  # it continued after step 25, not from the start
    assert _same(resumed.params, full.params) and resumed.best_score == full.best_score
    assert resumed.history == full.history and resumed.stop_reason == full.stop_reason
    assert resumed_rng.bit_generator.state == full_rng.bit_generator.state


def test_interrupt_keeps_the_best_parameters_so_far():
    seen = []  # scores that do not fall steadily: the best (step 20) is not the last
    result, _ = _loop(steps=60, interrupt_at=40, seen=seen,
                      scores=[5.0, 3.0, 4.0, 2.5, 6.0, 2.6, 7.0, 8.0])  # fmt: skip
    assert len(seen) == 40 // 5
    assert _same(result.params, seen[3][0]) and result.best_score == 2.5
    assert not _same(result.params, seen[-1][0])
    assert result.stop_reason.startswith("interrupted at step 40 of 60")
    assert "kept the parameters of step 20" in result.stop_reason


def test_loops_after_an_interrupt_return_at_once_and_resume_restores_finished_loops(tmp_path):
    calls = []
    with checkpointing(Checkpointer(tmp_path, every=10)):
        first, _ = _loop(steps=20)
        second, _ = _loop(steps=40, interrupt_at=15)
        third, _ = _loop(steps=20, on_step=lambda: calls.append(1))
    assert not calls and third.stop_reason.startswith("interrupted before step 1")
    assert second.stop_reason.startswith("interrupted at step 15")
    with checkpointing(Checkpointer(resume=tmp_path)):
        again, _ = _loop(steps=20, on_step=lambda: calls.append("first"))
        resumed, _ = _loop(steps=40, on_step=lambda: calls.append("second"))
    assert "first" not in calls and calls.count("second") == 40 - 15
    assert _same(again.params, first.params) and again.stop_reason == first.stop_reason
    assert _same(resumed.params, _loop(steps=40)[0].params)


def test_resume_refuses_other_settings(tmp_path):
    with checkpointing(Checkpointer(tmp_path, every=10), {"seed": 0, "steps": 40}):
        _loop(steps=40)
    with pytest.raises(CheckpointError, match="seed: 0 → 1"):
        checkpointing(Checkpointer(resume=tmp_path), {"seed": 1, "steps": 40}).__enter__()
    same = checkpointing(Checkpointer(resume=tmp_path), {"seed": 0, "steps": 40})
    with same, pytest.raises(CheckpointError, match="steps: 40 → 50"):
        _loop(steps=50)
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        checkpointing(Checkpointer(resume=tmp_path / "nowhere")).__enter__()
    with pytest.raises(ValueError, match="needs a directory"):
        Checkpointer(every=5)


# -- through iel.fit and the command line --------------------------------------------------------
@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    path = tmp_path_factory.mktemp("walk") / "walk.npz"
    data = simulate_system("double_well", n=20, steps=20, dt=0.01, temperature=0.1, seed=3)
    iel.save_data(path, data)
    return path


def _leaves(model):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(model.energy_module)]


SETTINGS = {"method": "onestep", "steps": 90, "seed": 1}


def test_fit_interrupted_saves_a_model_and_resumes_to_the_uninterrupted_one(walk, tmp_path):
    def stop_at_45(step, total, loss):  # called at evaluations: every 10 steps here
        if step >= 45:
            raise KeyboardInterrupt

    folder = tmp_path / "out" / "checkpoint"
    part = iel.fit(walk, "mlp:8", progress=stop_at_45,
                   checkpoint=Checkpointer(folder, every=30), **SETTINGS)  # fmt: skip
    assert part.stop_reason.startswith("interrupted at step 50 of 90")
    part.save(tmp_path / "out")
    assert iel.load(tmp_path / "out").stop_reason == part.stop_reason
    assert np.all([np.isfinite(leaf).all() for leaf in _leaves(part)])
    # the command line resumes it and ends where an uninterrupted fit ends
    run = _iel("fit", walk, "-e", "mlp:8", "-m", "onestep", "--steps", "90", "--seed", "1",
               "--resume", tmp_path / "out", "-o", tmp_path / "resumed")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    full = iel.fit(walk, "mlp:8", **SETTINGS)
    resumed = iel.load(tmp_path / "resumed")
    assert resumed.stop_reason == full.stop_reason
    for a, b in zip(_leaves(resumed), _leaves(full), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)  # the shift to min 0 aside


def test_fit_checkpoint_flags_on_the_command_line(walk, tmp_path):
    run = _iel("fit", walk, "-e", "mlp:8", "-m", "onestep", "--steps", "40",
               "--checkpoint-every", "20", "-o", tmp_path / "a")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    meta = json.loads((tmp_path / "a" / "checkpoint" / "loop-0.json").read_text())
    assert (
        meta["stop_reason"]
        == json.loads((tmp_path / "a" / "report.json").read_text())["stop_reason"]
    )
    other = _iel("fit", walk, "-e", "mlp:8", "-m", "onestep", "--steps", "40", "--seed", "2",
                 "--resume", tmp_path / "a", "-o", tmp_path / "b")  # fmt: skip
    assert other.returncode != 0 and not (tmp_path / "b" / "model.json").exists()
    message = " ".join((other.stdout + other.stderr).split())
    assert "same data and settings" in message and "seed: 0 → 2" in message


def _iel(*args):
    return subprocess.run([sys.executable, "-m", "iel", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_writes_the_model(walk, tmp_path):
    out = tmp_path / "fit"
    # Ctrl-C reaches the command as SIGINT; the child restores Python's handler in case this
    # process was started with SIGINT ignored (as background jobs are)
    start = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "runpy.run_module('iel', run_name='__main__')")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", start, "fit", str(walk), "-e", "mlp:8", "-m", "onestep",
         "--steps", "100000", "--checkpoint-every", "20", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    deadline = time.time() + 300
    while not (out / "checkpoint" / "loop-0.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout
    report = json.loads((out / "report.json").read_text())
    assert report["stop_reason"].startswith("interrupted at step"), report["stop_reason"]
    assert json.loads((out / "checkpoint" / "loop-0.json").read_text())["stop_reason"] is None
