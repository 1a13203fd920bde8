"""A persistent cache of compiled XLA programs, so that a second ``iel`` run skips compiling.

Each ``iel`` command is a fresh process, and JAX compiles every jitted function on its first
call: a snapshot fit that also tried a 32×32 energy network spent about half of its time
compiling on two cores (``python benchmarks/jkonet_suite.py --potentials relu``, cold against
warm, at 8a34fb3; snapshot ``auto`` now tries a smaller network below d = 10).  JAX can keep
the compiled programs on disk, keyed by the program, the JAX version and the backend, and load
them in later processes; this module switches that on.

The command line enables it on start (:func:`enable_compilation_cache`); in Python it is off
unless you call the function, since it sets process-wide JAX options.  Where it lives:
``$IEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/iel/jax``, else ``~/.cache/iel/jax``; capped at
:data:`CACHE_MAX_BYTES` (least recently used programs are evicted).  ``IEL_COMPILATION_CACHE=0``
turns it off; a cache directory the user set in JAX's own options is left as it is.
``iel cache`` says where it is and how much it holds; ``iel cache --clear`` empties it
(:func:`clear_compilation_cache`: JAX's entry files only, nothing else in the folder).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

CACHE_MAX_BYTES = 512 * 2**20
OFF_VALUES = ("0", "off", "false", "no")
ENTRY_SUFFIXES = ("-cache", "-atime")  # JAX's file per program and its last-use time


def default_cache_dir() -> Path:
    """``$IEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/iel/jax``, else ``~/.cache/iel/jax``."""
    if os.environ.get("IEL_CACHE_DIR"):
        return Path(os.environ["IEL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "iel" / "jax"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Keep compiled programs in ``path`` (default :func:`default_cache_dir`) for later runs.

    Returns the directory in use, or ``None`` when the cache is off: ``IEL_COMPILATION_CACHE``
    set to ``0``/``off`` (without an explicit ``path``), or the directory cannot be created or
    written to (a warning says why).  A directory already set in JAX's options is kept and returned.
    Every program is cached, however short its compilation: the many small ones of a fit add
    up to seconds.
    """
    if path is None and not cache_is_on():
        return None
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return Path(configured)
    path = Path(path) if path is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):  # else JAX would warn at every program
            raise PermissionError("not writable")
    except OSError as error:
        warnings.warn(
            f"compilation cache off: cannot use {path} ({error}); set IEL_CACHE_DIR to a "
            "writable directory, or IEL_COMPILATION_CACHE=0 to silence this",
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    return path


def cache_is_on() -> bool:
    """False when ``IEL_COMPILATION_CACHE`` switches the cache off."""
    return os.environ.get("IEL_COMPILATION_CACHE", "1").lower() not in OFF_VALUES


def _entries(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return [f for f in path.iterdir() if f.is_file() and f.name.endswith(ENTRY_SUFFIXES)]


def compilation_cache_contents(path: str | Path | None = None) -> tuple[int, int]:
    """``(programs, bytes)`` held in the cache folder (default :func:`default_cache_dir`)."""
    entries = _entries(Path(path) if path is not None else default_cache_dir())
    programs = sum(f.name.endswith("-cache") for f in entries)
    return programs, sum(f.stat().st_size for f in entries)


def clear_compilation_cache(path: str | Path | None = None) -> int:
    """Delete the cached programs (JAX's ``*-cache`` / ``*-atime`` files, nothing else) from
    the folder; returns how many programs were removed."""
    entries = _entries(Path(path) if path is not None else default_cache_dir())
    for f in entries:
        f.unlink()
    return sum(f.name.endswith("-cache") for f in entries)
