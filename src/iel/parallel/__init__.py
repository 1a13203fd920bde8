"""Several devices and several processes on JAX's own runtime.

:mod:`~iel.parallel.devices` chooses the devices a fit runs on and splits its data over them
(a one-axis :class:`jax.sharding.Mesh`); :mod:`~iel.parallel.processes` joins the processes of
a multi-host run (:func:`jax.distributed.initialize`) and reduces statistics across them.
"""

from .devices import describe_devices as describe_devices
from .devices import device_sum as device_sum
from .devices import fit_devices as fit_devices
from .devices import parse_devices as parse_devices
from .devices import shard_batch as shard_batch
from .devices import use_devices as use_devices
from .processes import initialize as initialize
from .processes import process_max as process_max
from .processes import process_min as process_min
from .processes import process_sharded as process_sharded
from .processes import process_sum as process_sum
from .processes import same_on_all_processes as same_on_all_processes

__all__ = [
    "describe_devices",
    "device_sum",
    "fit_devices",
    "initialize",
    "parse_devices",
    "process_max",
    "process_min",
    "process_sharded",
    "process_sum",
    "same_on_all_processes",
    "shard_batch",
    "use_devices",
]
