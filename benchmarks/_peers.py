"""Adapters for the peer methods of BENCHMARKS §B (optional extra ``iel[benchmarks]``):
PySINDy (sparse regression of a vector field) and SFI (stochastic force inference)."""

from __future__ import annotations

import time

import numpy as np


def require(module: str, package: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise SystemExit(
            f"this benchmark compares against {package}; install it with "
            f"pip install '.[benchmarks]' (missing module {module!r})"
        ) from err


def pysindy_fit(x: np.ndarray, dt: float, degree: int):
    """PySINDy with forward differences (its centred default cancels reversible drifts)."""
    ps = require("pysindy", "pysindy")
    start = time.perf_counter()
    model = ps.SINDy(
        feature_library=ps.PolynomialLibrary(degree=degree),
        differentiation_method=ps.FiniteDifference(order=1),
    )
    model.fit(list(x), t=dt)
    seconds = time.perf_counter() - start
    return (lambda s: np.asarray(model.predict(np.asarray(s)))), seconds


def sfi_fit(x: np.ndarray, dt: float, degree: int):
    """SFI: constant diffusion, then linear force regression on monomials (preset 'auto').

    Returns ``(force, temperature, cold seconds, warm seconds)``; warm = a second identical
    fit in the same process (its JAX programs compiled)."""
    sfi = require("SFI", "stochasticforceinference")
    from SFI.bases.monomials import monomials_up_to

    def run():
        start = time.perf_counter()
        coll = sfi.trajectory.TrajectoryCollection.from_arrays(X=np.transpose(x, (1, 0, 2)), dt=dt)
        inf = sfi.OverdampedLangevinInference(coll)
        inf.compute_diffusion_constant()
        inf.infer_force_linear(monomials_up_to(degree, dim=x.shape[-1], rank="vector"))
        return inf, time.perf_counter() - start

    _, cold = run()
    inf, warm = run()
    temperature = float(np.trace(np.asarray(inf.diffusion_average)) / x.shape[-1])
    return (lambda s: np.asarray(inf.force_inferred(np.asarray(s)))), temperature, cold, warm
