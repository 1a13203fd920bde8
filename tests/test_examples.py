"""Examples are executed by the tests, so they cannot rot."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (Equinox modules) look their module up here
    spec.loader.exec_module(module)
    return module


def test_distribution_vs_energy():
    out = _load("distribution_vs_energy").main()
    assert out["score_matching"]["x0^4"] == pytest.approx(2.0, rel=0.05)  # E/T
    assert out["langevin"] == "E(x) = −2.000·x0^2 + 1.000·x0^4"  # E and T apart
    assert out["T"] == pytest.approx(0.5, rel=0.02)
    assert out["std_grad_log_p"] == pytest.approx(out["std_boltzmann"], rel=0.1)
    assert out["std_grad_p"] > 3 * out["std_boltzmann"]  # ∇p: the wrong stationary law
    minima = out["end_state_minima"]  # end states: minima and basin shares, not E's values
    assert [m["location"][0] for m in minima] == pytest.approx([-1.0, 1.0], abs=0.05)
    assert [m["prior_share"] for m in minima] == pytest.approx(out["end_state_true_shares"],
                                                               abs=0.05)  # fmt: skip
