"""Several processes (hosts) on JAX's distributed runtime.

:func:`initialize` joins a run of ``P`` processes through :func:`jax.distributed.initialize`:
the coordinator's ``host:port``, the process count and this process's index come from the
arguments, else from the environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``), else from JAX's cluster detection (Slurm, Open MPI) when ``auto``.  On
CPU the collectives go through Gloo (JAX's default CPU implementation).

Each process then reads its own share of the data.  Statistics that are sums over the data add
across processes (:func:`process_sum`); minima and maxima reduce likewise; a quantity that is
not a sum (a median) is taken from process 0 (:func:`same_on_all_processes`).  All of them are
collectives: every process must call them in the same order, so they act only inside
:func:`process_sharded` (the context saying "the data given to fits here are this process's
share") and are the identity outside it or in a one-process run.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from contextvars import ContextVar

import jax
import numpy as np
from jax.experimental import multihost_utils

_SHARDED: ContextVar[bool] = ContextVar("iel_process_sharded", default=False)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${name}: expected a whole number, got {value!r}") from None


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join the multi-process run; returns whether one was joined (``False``: a lone process,
    nothing given and ``auto`` off).

    Args:
        coordinator: ``host:port`` of process 0's coordinator service (default
            ``$JAX_COORDINATOR_ADDRESS``).
        num_processes: ``P`` (default ``$JAX_NUM_PROCESSES``).
        process_id: this process's index in ``0 … P−1`` (default ``$JAX_PROCESS_ID``).
        auto: with nothing given, let JAX detect the cluster (Slurm's ``srun``, Open MPI).
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    given = (coordinator, num_processes, process_id)
    if all(v is None for v in given) and not auto:
        return False
    if not auto and None in given:
        missing = [n for n, v in zip(("coordinator", "num_processes", "process_id"), given)
                   if v is None]  # fmt: skip
        raise ValueError(
            f"a multi-process run needs the coordinator address, the process count and this "
            f"process's id; missing: {', '.join(missing)} (flags --coordinator host:port "
            "--num-processes P --process-id I, or $JAX_COORDINATOR_ADDRESS, "
            "$JAX_NUM_PROCESSES, $JAX_PROCESS_ID; on Slurm use auto-detection)"
        )
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes: expected at least 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id: expected 0 … {num_processes - 1}, got {process_id}")
    if coordinator is not None and ":" not in coordinator:
        raise ValueError(f"coordinator: expected host:port, got {coordinator!r}")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    return True


@contextmanager
def process_sharded(active: bool = True):
    """Inside, the data a fit is given are this process's share: the reductions of this module
    combine all processes (every process must run the same fits in the same order)."""
    token = _SHARDED.set(bool(active))
    try:
        yield
    finally:
        _SHARDED.reset(token)


def _across() -> bool:
    return _SHARDED.get() and jax.process_count() > 1


def _gathered(value) -> np.ndarray:
    return np.asarray(multihost_utils.process_allgather(np.asarray(value, dtype=float)))


def process_sum(value):
    """``Σ_processes value`` (arrays or floats; the identity outside :func:`process_sharded`)."""
    if not _across():
        return value
    total = _gathered(value).sum(axis=0)
    return float(total) if np.ndim(value) == 0 else total


def process_min(value):
    """Element-wise minimum over processes (see :func:`process_sum`)."""
    if not _across():
        return value
    low = _gathered(value).min(axis=0)
    return float(low) if np.ndim(value) == 0 else low


def process_max(value):
    """Element-wise maximum over processes (see :func:`process_sum`)."""
    if not _across():
        return value
    high = _gathered(value).max(axis=0)
    return float(high) if np.ndim(value) == 0 else high


def same_on_all_processes(value):
    """Process 0's ``value`` on every process (for quantities that are not sums, e.g. the
    median time step); the identity outside :func:`process_sharded`."""
    if not _across() or value is None:
        return value
    out = np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=float)))
    return float(out) if np.ndim(value) == 0 else out


def check_same_on_all_processes(describe, what: str) -> None:
    """Raise ``ValueError`` unless ``describe()`` (e.g. a library's configuration as text) is
    the same on every process: ``what`` names it in the message.  ``describe`` is called only
    when several processes take part (a library of Python callables has no description)."""
    if not _across():
        return
    text = describe()
    digest = np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], np.uint8)
    everyone = _gathered(digest)
    if not np.all(everyone == everyone[0]):
        raise ValueError(
            f"{what} differ between the processes: each chose them from its own share of the "
            "data.  A multi-process fit needs features that do not depend on the data "
            "(poly:K, fourier:K, quadratic), not data-placed ones (rbf:M, expquad:M)"
        )
