"""Any object's state on disk in the checkpoint format: one safetensors file of tensors and a
hashed JSON manifest, written atomically, never pickle.

For what is not a :class:`~retain.Learner` (a deployed forecaster holds several learners, a
base model's fits and its history): the state is a nested dict as ``state_dict()`` returns
it, ``kind`` names what it is, and loading checks the kind, the version and every hash
before anything is decoded.

>>> import tempfile, torch
>>> folder = tempfile.mkdtemp() + "/thing"
>>> _ = save_state(folder, "example", {"w": torch.ones(2), "steps": 3})
>>> load_state(folder, "example")["steps"]
3
>>> load_state(folder, "forecaster")
Traceback (most recent call last):
...
retain.errors.RetainError: .../thing holds a 'example', not a 'forecaster'
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from retain import __version__
from retain.checkpoint import sealed
from retain.checkpoint.atomic import write_folder
from retain.checkpoint.sealed import MANIFEST, read_tensors, require_folder, seal, storable
from retain.checkpoint.serialize import flatten, unflatten
from retain.errors import RetainError

FORMAT = "retain-state"
FORMAT_VERSION = 1
TENSORS = "state.safetensors"


def encode_state(kind: str, state: dict[str, Any], version: int = 1) -> dict[str, bytes]:
    """The folder's files as ``{name: bytes}``."""
    tensors: dict[str, torch.Tensor] = {}
    body = flatten(state, tensors)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "version": version, "retain_version": __version__,
                "created": datetime.now(UTC).isoformat(), "state": body}
    return seal(manifest, {TENSORS: safetensors.torch.save(storable(tensors))}, indent=None)


def save_state(path: str | Path, kind: str, state: dict[str, Any], version: int = 1,
               overwrite: bool = False) -> Path:
    """Write ``state`` into the folder ``path`` (it appears whole or not at all)."""
    path = Path(path)
    write_folder(path, encode_state(kind, state, version), overwrite=overwrite)
    return path


def read_state_manifest(path: str | Path, kind: str, version: int = 1) -> dict[str, Any]:
    """The verified manifest of a state folder of ``kind``."""
    path = Path(path)
    require_folder(path, f"saved {kind}")

    def check(manifest: dict[str, Any]) -> None:
        if manifest.get("kind") != kind:
            raise RetainError(f"{path} holds a {manifest.get('kind')!r}, not a {kind!r}")
        if not isinstance(manifest.get("version"), int) or manifest["version"] > version:
            raise RetainError(f"{path} holds a {kind} of version {manifest.get('version')!r}, "
                              f"newer than this retain reads ({version}); upgrade retain")

    return sealed.read_manifest(path, FORMAT, checks=check, foreign="a retain state manifest",
                                missing=f"{path} holds no saved {kind}: {MANIFEST} is missing")


def load_state(path: str | Path, kind: str, version: int = 1) -> dict[str, Any]:
    """The state saved by :func:`save_state`; every problem names the file at fault."""
    path = Path(path)
    manifest = read_state_manifest(path, kind, version)
    tensors = read_tensors(path / TENSORS, manifest["files"][TENSORS])
    return unflatten(manifest["state"], tensors)
