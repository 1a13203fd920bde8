"""The devices a fit runs on, and data parallelism over them.

A fit's data have one axis of independent rows (transitions, trajectories, a minibatch).  With
``D`` devices the rows are split into ``D`` equal blocks on a one-axis
:class:`~jax.sharding.Mesh` named ``"batch"``:

* sums over rows (the normal equations' ``A = Σ_k h_k G_kᵀG_k``, ``b = −Σ_k G_kᵀΔx_k``) are
  computed block by block on each device and added across devices (``psum``):
  ``Σ_k = Σ_devices Σ_{k in block}`` (:func:`device_sum`);
* a minibatch loss ``L(θ) = (1/B) Σ_k ℓ_k(θ)`` and its gradient are computed by XLA's SPMD
  partitioner from a batch laid out on the mesh (:func:`shard_batch`): each device takes its
  rows, the parameters are replicated, and the mean is an all-reduce.

Both change only the order of the additions, so one device and ``D`` devices give the same
numbers up to rounding (about ``1e-16`` relative in float64).

Which devices: ``use_devices("all" | N | [devices])`` as a context (``with``), default all
local devices (:func:`jax.local_devices`).  With one device nothing is laid out and every
computation is exactly the single-device one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"

_DEVICES: ContextVar[tuple | None] = ContextVar("iel_devices", default=None)


def parse_devices(spec: str | int | Sequence[Any] | None) -> tuple:
    """The local devices named by ``spec``: ``None`` or ``"all"`` (every local device), a
    count ``N`` (or ``"N"``: the first ``N``), or a sequence of :class:`jax.Device`."""
    available = tuple(jax.local_devices())
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return available
    if isinstance(spec, str):
        try:
            spec = int(spec)
        except ValueError:
            raise ValueError(f"devices: expected 'all' or a whole number, got {spec!r}") from None
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if not 1 <= spec <= len(available):
            raise ValueError(
                f"devices: asked for {spec}, this process has {len(available)} "
                f"({describe_devices(available)}); give a number from 1 to {len(available)} "
                "or 'all'"
            )
        return available[: int(spec)]
    chosen = tuple(spec)
    if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
        raise ValueError(f"devices: expected 'all', a count or jax devices, got {spec!r}")
    return chosen


def fit_devices() -> tuple:
    """The devices fits use now: those of the innermost :func:`use_devices`, else all local
    devices."""
    chosen = _DEVICES.get()
    return parse_devices(None) if chosen is None else chosen


@contextmanager
def use_devices(spec: str | int | Sequence[Any] | None = "all"):
    """Run the fits inside on the devices ``spec`` names (see :func:`parse_devices`)::

        with iel.use_devices(4):
            model = iel.fit(data)

    Yields the devices."""
    token = _DEVICES.set(parse_devices(spec))
    try:
        yield _DEVICES.get()
    finally:
        _DEVICES.reset(token)


def describe_devices(devices: Sequence[Any]) -> str:
    """``"4 × cpu"``, ``"2 × NVIDIA H100 80GB HBM3"``: what a fit runs on, for printing."""
    kinds: dict[str, int] = {}
    for device in devices:
        kinds[device.device_kind] = kinds.get(device.device_kind, 0) + 1
    return ", ".join(f"{n} × {kind}" for kind, n in kinds.items())


@functools.lru_cache(maxsize=16)
def batch_mesh(devices: tuple) -> Mesh:
    """The one-axis mesh ``"batch"`` over ``devices``."""
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


def shard_batch(batch: tuple) -> tuple:
    """``batch`` laid out for data parallelism on :func:`fit_devices`: every array whose
    leading length is a multiple of the device count is split on that axis, the others are
    replicated (so all of a step's arguments live on the same devices).  One device: returned
    unchanged."""
    devices = fit_devices()
    if len(devices) == 1:
        return batch
    mesh = batch_mesh(devices)
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def place(leaf):
        if not isinstance(leaf, (np.ndarray, jax.Array)):
            return leaf
        divisible = np.ndim(leaf) >= 1 and np.shape(leaf)[0] % len(devices) == 0
        return jax.device_put(leaf, split if divisible else whole)

    return jax.tree_util.tree_map(place, batch)


def replicate(tree):
    """``tree``'s arrays copied to every device of :func:`fit_devices` (unchanged with one)."""
    devices = fit_devices()
    if len(devices) == 1:
        return tree
    whole = NamedSharding(batch_mesh(devices), P())
    return jax.tree_util.tree_map(
        lambda leaf: jax.device_put(leaf, whole) if isinstance(leaf, jax.Array) else leaf, tree
    )


def device_sum(fn: Callable, static: Any, arrays: tuple, *, multiple: int) -> Any:
    """``Σ_rows fn(static, *rows)`` with the rows of ``arrays`` split over :func:`fit_devices`.

    ``fn(static, *block)`` returns a pytree of sums over the rows of its block; the blocks'
    sums are added across devices (``psum``).  Each device's block is padded with zero rows
    to a multiple of ``multiple`` (or to its length, when shorter): ``fn`` must give zero
    rows weight zero.  ``static`` (a pytree, e.g. a feature library) is replicated; ``None``
    entries of ``arrays`` stay ``None``.  ``fn`` should be a module-level function, so the
    compiled program is reused."""
    devices = fit_devices()
    n_dev = len(devices)
    n = next(a for a in arrays if a is not None).shape[0]
    per = max(-(-n // n_dev), 1)
    if per > multiple:
        per = -(-per // multiple) * multiple
    split = NamedSharding(batch_mesh(devices), P(AXIS))

    def lay_out(a):
        if a is None:
            return None
        a = np.asarray(a)
        pad = n_dev * per - a.shape[0]
        if pad:
            a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), dtype=a.dtype)])
        return jax.device_put(a, split)

    laid = tuple(lay_out(a) for a in arrays)
    return _device_sum(fn, batch_mesh(devices), replicate(static), laid)


@eqx.filter_jit
def _device_sum(fn, mesh, static, arrays):
    dynamic, fixed = eqx.partition(static, eqx.is_array)

    def block(dynamic, arrays):
        return jax.lax.psum(fn(eqx.combine(dynamic, fixed), *arrays), AXIS)

    return jax.shard_map(block, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(), check_vma=False)(
        dynamic, arrays
    )
