"""Writing output so that nothing is ever half-written.

A file is written under a temporary name beside its target and renamed into place
(:func:`atomic_file`); a folder of outputs is built in a temporary folder beside its target and
swapped in when complete (:func:`staged_directory`).  A failure while writing leaves the target
as it was: no partial folder, and a previous folder intact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _as_if_created(path: Path, mode: int) -> None:
    """Give a temporary file or folder (created private) the permissions an ordinary
    ``open``/``mkdir`` would have given it."""
    os.chmod(path, mode & ~_umask())


def _followed(path: str | Path) -> Path:
    """``path``, or where it points when it is a link (the link itself stays)."""
    path = Path(path)
    return path.resolve() if path.is_symlink() else path


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) to write; on success it replaces
    ``path`` in one rename, on failure it is removed and ``path`` is untouched."""
    path = _followed(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}",
                                dir=path.parent)  # fmt: skip
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _as_if_created(tmp, 0o666)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_directory(
    target: str | Path, *, replaces: tuple[str, ...] = (), overwrite: bool = False
) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target`` to fill; when the block ends without
    an error it becomes ``target``.

    ``replaces`` names the files this output owns.  If ``target`` already holds one of them
    the swap needs ``overwrite=True`` (:class:`FileExistsError` otherwise, raised before the
    block runs); other files already in ``target`` (a ``select.json`` beside a model) are
    carried into the new folder.  On an error the temporary folder is removed and ``target``
    is left exactly as it was.
    """
    target = _followed(target)  # a link to a folder: the folder it points to is replaced
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder; choose another output folder")
    if target.is_dir() and not overwrite:
        held = sorted(name for name in replaces if (target / name).exists())
        if held:
            raise FileExistsError(
                f"{target} already holds {', '.join(held)}; pass overwrite=True (CLI: --force) "
                "or choose another folder"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield stage
        _as_if_created(stage, 0o777)
        _swap_in(stage, target, replaces)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(stage: Path, target: Path, replaces: tuple[str, ...]) -> None:
    """Move the finished ``stage`` to ``target``, keeping ``target``'s files the stage does not
    replace.  The old folder is moved aside first and deleted only after the swap."""
    if not target.exists():
        os.replace(stage, target)
        return
    owned = set(replaces) | {p.name for p in stage.iterdir()}
    for item in target.iterdir():
        if item.name in owned:
            continue
        if item.is_dir() and not item.is_symlink():  # carried over as a copy: the old
            shutil.copytree(item, stage / item.name, symlinks=True)  # folder stays whole
        else:
            shutil.copy2(item, stage / item.name, follow_symlinks=False)
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(stage, target)
    except OSError:
        os.replace(aside / target.name, target)  # put the old folder back
        raise
    shutil.rmtree(aside, ignore_errors=True)
