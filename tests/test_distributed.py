"""Several processes (iel.distributed): two processes on localhost, each reading half of the
trajectories, give the one-process closed-form fit; process 0 alone writes the model."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from iel.data.trajectories import Trajectories
from iel.distributed import process_share
from iel.estimators.trajectories.closed_form import OneStepClosedForm
from iel.parallel import initialize


def _double_well(path, n=40, steps=30, dt=0.01, temp=0.2, seed=1):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, steps, 2))
    x[:, 0] = rng.normal(size=(n, 2))
    for t in range(1, steps):
        prev = x[:, t - 1]
        force = np.stack([4 * prev[:, 0] * (prev[:, 0] ** 2 - 1), prev[:, 1]], axis=1)
        x[:, t] = prev - dt * force + np.sqrt(2 * temp * dt) * rng.normal(size=(n, 2))
    np.savez(path, x=x, dt=dt)
    return Trajectories(x, dt=dt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_process_fit(tmp_path):
    data = _double_well(tmp_path / "dw.npz")
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iel",
                "fit",
                str(tmp_path / "dw.npz"),
                "-e",
                "poly:4",
                "-o",
                str(tmp_path / "two.iel"),
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    assert "process 0 of 2: 20 trajectories" in outputs[0]
    assert "process 1: the model is written by process 0" in outputs[1]

    import iel

    two = iel.load(tmp_path / "two.iel")
    one = OneStepClosedForm("poly:4").fit(data).model_
    assert np.max(np.abs(np.asarray(two.energy_module.theta - one.energy_module.theta))) < 1e-10
    assert abs(float(two.energy_module.offset - one.energy_module.offset)) < 1e-10
    assert abs(two.temperature - one.temperature) < 1e-10 * one.temperature
    assert 0.15 < one.temperature < 0.25  # (true T = 0.2)
    assert two.diagnostics["n_transitions"] == one.diagnostics["n_transitions"] == 40 * 29
    np.testing.assert_allclose(two.data_low, one.data_low, rtol=0, atol=0)


def test_shares_and_settings_are_checked(tmp_path, monkeypatch):
    data = _double_well(tmp_path / "dw.npz", n=5)
    shares = [process_share(data, i, 2) for i in range(2)]
    assert [s.n_trajectories for s in shares] == [2, 3]
    np.testing.assert_array_equal(np.concatenate([s.x for s in shares]), data.x)
    with pytest.raises(ValueError, match="5 trajectories cannot be shared out among 6"):
        process_share(data, 0, 6)
    with pytest.raises(ValueError, match="expected 0 … 1, got 2"):
        process_share(data, 2, 2)
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize() is False  # nothing given: a lone process
    with pytest.raises(ValueError, match="missing: num_processes, process_id"):
        initialize("127.0.0.1:1234")
