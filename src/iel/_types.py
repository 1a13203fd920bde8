"""Array aliases and shape conventions used across the package.

States: a single state is an array of shape ``state_shape`` (``(d,)`` for most energies,
``(n_particles, d)`` for particle systems).  Batches carry any number of leading axes:
``(..., *state_shape)``.  Trajectories are ``(N, T, *state_shape)``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

Array = jax.Array
ArrayLike = Any  # anything ``jnp.asarray`` accepts
PRNGKey = jax.Array

FLOAT = np.float64
