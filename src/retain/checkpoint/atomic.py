"""Writes that appear whole or not at all, so a crash mid-save never damages what was saved.

Files are written into a temporary folder (or file) next to the target, on the same file
system, fsynced, then renamed into place and the parent folder is fsynced: after a crash the
target is either absent or complete. Leftover temporaries start with :data:`TEMP_PREFIX`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from retain.errors import RetainError

TEMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_folder(target: Path, files: Mapping[str, bytes], overwrite: bool = False) -> None:
    """Create folder ``target`` holding ``files`` (name -> bytes) atomically.

    An existing ``target`` is an error unless ``overwrite``; then the old folder is renamed
    aside before the new one moves in, and deleted after (a crash in between leaves it as
    ``.tmp-old-<name>-*`` next to the target, never half-written).
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise RetainError(f"{target} already exists; choose a new path or pass overwrite=True")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        for name, data in files.items():
            _write_synced(temp / name, data)
        fsync_dir(temp)
        old = _move_aside(target) if target.exists() else None
        os.rename(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)


def _move_aside(target: Path) -> Path:
    if not target.is_dir():
        raise RetainError(f"{target} exists and is not a checkpoint folder; not replacing it")
    old = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}old-{target.name}-", dir=target.parent))
    os.rename(target, old / target.name)
    return old


def write_file(target: Path, data: bytes) -> None:
    """Write (or replace) one file atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}-", dir=target.parent)
    os.close(fd)
    try:
        _write_synced(Path(name), data)
        os.replace(name, target)
        fsync_dir(target.parent)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
