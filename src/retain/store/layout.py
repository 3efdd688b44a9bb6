"""Where a store keeps things in its folder, and the housekeeping of that folder.

Layout::

    DIR/registry.sqlite     the history (see :mod:`retain.store.registry`)
    DIR/versions/000001/    one checkpoint folder per version (see :mod:`retain.checkpoint`)
    DIR/rows/000001.npz     rows a version kept for later updates (see :mod:`retain.store.pool`)
    DIR/.lock               taken by every writer (see :mod:`retain.store.lock`)

Files are written before the registry names them and never modified after; whatever the
registry does not name is a crash's leftover, removed by the next writer (:func:`clean`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from retain.checkpoint import Checkpoint, open_checkpoint
from retain.checkpoint.atomic import TEMP_PREFIX
from retain.errors import RetainError
from retain.store.lock import LOCK_FILE
from retain.store.registry import REGISTRY_FILE, Version

VERSIONS = "versions"
ROWS = "rows"


def version_folder(store: Path, version: int) -> Path:
    """The checkpoint folder of a version.

    >>> version_folder(Path("s"), 7).as_posix()
    's/versions/000007'
    """
    return store / VERSIONS / f"{version:06d}"


def rows_file(store: Path, version: int) -> Path:
    """The file of rows a version kept for later updates."""
    return store / ROWS / f"{version:06d}.npz"


def open_version(store: Path, version: Version) -> Checkpoint:
    folder = version_folder(store, version.id)
    if not folder.exists():
        raise RetainError(f"version {version.id} has no checkpoint: it was "
                          f"{version.status} before it was saved ({version.reason})")
    return open_checkpoint(folder)


def clean(store: Path, known: set[int]) -> None:
    """Remove temporaries, and checkpoint folders and row files the registry never recorded
    (a crash between writing them and recording the version). Runs under the lock only."""
    for leftover in store.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink()
    for sub in (VERSIONS, ROWS):
        folder = store / sub
        for entry in folder.iterdir() if folder.is_dir() else ():
            stem = entry.name.split(".")[0]
            if entry.name.startswith(TEMP_PREFIX) or (stem.isdigit() and int(stem) not in known):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def check_new_folder(store: Path) -> None:
    """Refuse to create a store over another store, a file or a folder holding other files."""
    if (store / REGISTRY_FILE).exists():
        raise RetainError(f"{store} is already a retain store; use `retain update`")
    if store.exists() and not store.is_dir():
        raise RetainError(f"{store} is a file; choose a folder for the store")
    other = sorted(e.name for e in store.iterdir() if e.name not in (LOCK_FILE, VERSIONS, ROWS)
                   and not e.name.startswith(TEMP_PREFIX)) if store.exists() else []
    if other:
        raise RetainError(f"{store} is not empty ({', '.join(other[:5])}); choose a new "
                          "or empty folder for the store")
