"""Data parallelism over several devices (iel.parallel.devices): one device and four give the
same fit.  Four CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before
JAX starts, so the comparisons run in a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from iel.parallel import fit_devices, parse_devices, shard_batch, use_devices

FOUR_DEVICES = r"""
import json
import equinox as eqx
import jax
import numpy as np
import iel
from iel.data.trajectories import Trajectories
from iel.estimators.trajectories.closed_form import OneStepClosedForm
from iel.estimators.trajectories.likelihood import OneStepLikelihood, _static_loss
from iel.linear.normal_equations import normal_equations
from iel.parallel import shard_batch, use_devices

assert len(jax.devices()) == 4, jax.devices()
rng = np.random.default_rng(3)
n, T, d, dt, temp = 30, 41, 2, 0.01, 0.3   # 1 200 transitions: not a multiple of 4 × chunk
x = np.zeros((n, T, d)); x[:, 0] = rng.normal(size=(n, d))
force = lambda x: 4 * x * (x**2 - 1) * np.array([1.0, 0.0]) + x * np.array([0.0, 2.0])
for t in range(1, T):
    noise = np.sqrt(2 * temp * dt) * rng.normal(size=(n, d))
    x[:, t] = x[:, t - 1] - dt * force(x[:, t - 1]) + noise
data = Trajectories(x, dt=dt)
out = {}
PART = __import__("sys").argv[1]

def closed(spec, devices):
    with use_devices(devices):
        return OneStepClosedForm(spec).fit(data).model_

for spec in ("poly:4+fourier:1",) if PART == "closed" else ():  # (forward-mode sums)
    one, four = closed(spec, 1), closed(spec, 4)
    t1, t4 = (np.concatenate([np.ravel(leaf) for leaf in jax.tree_util.tree_leaves(
        eqx.filter(m.energy_module, eqx.is_inexact_array))]) for m in (one, four))
    out[spec] = {"coef": float(np.max(np.abs(t1 - t4)) / np.max(np.abs(t1))),
                 "temperature": [one.temperature, four.temperature]}

x0, dx, h = data.increments()
if PART == "closed":
    library = iel.energies.features.Monomials(2, 4)
    with use_devices(1):
        a = normal_equations(library, x0, dx, h, use_moments=False, use_sparse=False)
    with use_devices(4):
        b = normal_equations(library, x0, dx, h, use_moments=False, use_sparse=False)
    out["gram"] = float(np.max(np.abs(a.gram - b.gram)) / np.max(np.abs(a.gram)))
    out["rhs"] = float(np.max(np.abs(a.rhs - b.rhs)) / np.max(np.abs(a.rhs)))
    print("RESULT " + json.dumps(out))
    raise SystemExit

# the network's loss and gradient at its first step, on one device and split over four
energy = iel.energies.spec.parse_energy_spec("mlp:16", 2).build(jax.random.PRNGKey(0), x0)
params, static = eqx.partition(energy, eqx.is_inexact_array)
batch = (x0[:256], dx[:256], h[:256])
value_and_grad = eqx.filter_jit(jax.value_and_grad(_static_loss))
v1, g1 = value_and_grad(params, static, *batch)
with use_devices(4):
    split = shard_batch(batch)
out["split_over"] = len(split[0].sharding.device_set)
v4, g4 = value_and_grad(params, static, *split)
out["loss"] = [float(v1), float(v4)]
out["grad"] = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-300))
                  for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g4)))

def network(devices):
    with use_devices(devices):
        return OneStepLikelihood("mlp:16", steps=20, batch_size=256).fit(data).model_

m1, m4 = network(1), network(4)
p1 = jax.tree_util.tree_leaves(eqx.filter(m1.energy_module, eqx.is_inexact_array))
p4 = jax.tree_util.tree_leaves(eqx.filter(m4.energy_module, eqx.is_inexact_array))
out["network"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(p1, p4))
out["network_temperature"] = [m1.temperature, m4.temperature]
print("RESULT " + json.dumps(out))
"""


def _four_devices(part: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES, part], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    return json.loads(lines[-1][len("RESULT ") :])


def test_closed_form_on_one_device_and_four_is_the_same():
    out = _four_devices("closed")
    for spec in ("poly:4+fourier:1",):  # coefficients and temperature
        assert out[spec]["coef"] < 1e-10, (spec, out[spec])
        one, four = out[spec]["temperature"]
        assert abs(one - four) < 1e-10 * one
        assert 0.2 < one < 0.4  # and the fit is a fit (true T = 0.3)
    assert out["gram"] < 1e-12 and out["rhs"] < 1e-12  # (full-Jacobian sums)


def test_network_fit_on_one_device_and_four_is_the_same():
    out = _four_devices("network")
    assert out["split_over"] == 4  # the batch really was laid out on four devices
    one, four = out["loss"]
    assert abs(one - four) < 1e-10 * abs(one)
    assert out["grad"] < 1e-10
    assert out["network"] < 1e-10  # 20 Adam steps: the same network
    one, four = out["network_temperature"]
    assert abs(one - four) < 1e-10 * one


def test_device_choice_and_its_errors():
    available = jax.local_devices()
    assert parse_devices("all") == tuple(available) == fit_devices()
    assert parse_devices(1) == parse_devices("1") == (available[0],)
    with pytest.raises(ValueError, match=f"asked for {len(available) + 1}, this process has"):
        parse_devices(len(available) + 1)
    with pytest.raises(ValueError, match="expected 'all' or a whole number, got 'many'"):
        parse_devices("many")
    with use_devices(1) as chosen:
        assert fit_devices() == chosen == (available[0],)
        batch = (np.ones((8, 2)), 3)
        assert shard_batch(batch) is batch  # one device: nothing moves


def test_cli_refuses_more_devices_than_there_are(tmp_path):
    from typer.testing import CliRunner

    from iel.cli import app

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(5, 10, 1)), dt=0.1)
    n = len(jax.local_devices()) + 1
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "d.npz"), "-e", "poly:2",
                                      "--devices", str(n)])  # fmt: skip
    assert result.exit_code == 2
    assert f"asked for {n}" in result.output and "or 'all'" in result.output
