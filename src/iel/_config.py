"""Numerical configuration applied when :mod:`iel` is imported.

The closed-form estimators solve normal equations whose condition number is the square of the
feature matrix's, so the library works in float64.  Importing :mod:`iel` switches JAX's
``jax_enable_x64`` flag on (it is a process-wide JAX setting; set it yourself before importing
JAX if you want it on for your own code too).

``IEL_PRECISION=float32`` (set before importing :mod:`iel`) leaves the flag as it is: JAX then
computes in float32, which GPUs run many times faster; the normal equations are still
accumulated and solved in float64 on the host where they are computed with NumPy (see
docs/guide/devices.md for what is and is not checked in float32).
"""

from __future__ import annotations

import os

import jax

PRECISION = os.environ.get("IEL_PRECISION", "float64").strip().lower() or "float64"
if PRECISION not in ("float64", "float32"):
    raise ValueError(f"$IEL_PRECISION: expected float64 or float32, got {PRECISION!r}")
if PRECISION == "float64":
    jax.config.update("jax_enable_x64", True)
