"""Numerical configuration applied when :mod:`iel` is imported.

The closed-form estimators solve normal equations whose condition number is the square of the
feature matrix's, so the library works in float64.  Importing :mod:`iel` switches JAX's
``jax_enable_x64`` flag on (it is a process-wide JAX setting; set it yourself before importing
JAX if you want it on for your own code too).
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)
