"""Test configuration: float64 and strict promotion, so silent broadcasting bugs fail loudly;
the ``iel`` commands the tests run keep no compilation cache (the tests' data differ in shape,
so nothing would be reused; ``test_cli`` checks the cache itself)."""

import os

import jax
import numpy as np
import pytest

import iel  # noqa: F401  (switches on float64)

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(scope="session", autouse=True)
def no_compilation_cache_for_commands():
    """``iel`` subprocesses write no compiled programs (to the user's cache folder or any)."""
    os.environ.setdefault("IEL_COMPILATION_CACHE", "0")
    yield


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
