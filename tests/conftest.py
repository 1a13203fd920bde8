"""Test configuration: float64 and strict promotion, so silent broadcasting bugs fail loudly."""

import jax
import numpy as np
import pytest

import iel  # noqa: F401  (switches on float64)

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def finite_difference_gradient(fn, x, eps=1e-6):
    """Central differences of a scalar function of one state."""
    x = np.asarray(x, dtype=float)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        grad[idx] = (float(fn(x + step)) - float(fn(x - step))) / (2 * eps)
    return grad
