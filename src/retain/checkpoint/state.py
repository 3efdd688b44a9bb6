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

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from retain import __version__
from retain.checkpoint.atomic import write_folder
from retain.checkpoint.format import _read_tensors, _storable, content_hash
from retain.checkpoint.serialize import flatten, unflatten
from retain.errors import RetainError

FORMAT = "retain-state"
FORMAT_VERSION = 1
MANIFEST, TENSORS = "manifest.json", "state.safetensors"


def encode_state(kind: str, state: dict[str, Any], version: int = 1) -> dict[str, bytes]:
    """The folder's files as ``{name: bytes}``."""
    tensors: dict[str, torch.Tensor] = {}
    body = flatten(state, tensors)
    data = safetensors.torch.save(_storable(tensors))
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                "version": version, "retain_version": __version__,
                "created": datetime.now(UTC).isoformat(), "state": body,
                "files": {TENSORS: {"bytes": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}}}
    manifest["content_hash"] = content_hash(manifest)
    return {TENSORS: data, MANIFEST: json.dumps(manifest).encode()}


def save_state(path: str | Path, kind: str, state: dict[str, Any], version: int = 1,
               overwrite: bool = False) -> Path:
    """Write ``state`` into the folder ``path`` (it appears whole or not at all)."""
    path = Path(path)
    write_folder(path, encode_state(kind, state, version), overwrite=overwrite)
    return path


def read_state_manifest(path: str | Path, kind: str, version: int = 1) -> dict[str, Any]:
    """The verified manifest of a state folder of ``kind``."""
    path = Path(path)
    file = path / MANIFEST
    if not path.is_dir():
        raise RetainError(f"no saved {kind} at {path}: it "
                          f"{'is not a folder' if path.exists() else 'does not exist'}")
    try:
        manifest = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise RetainError(f"{path} holds no saved {kind}: {MANIFEST} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RetainError(f"{file} is not valid JSON (truncated or corrupt)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RetainError(f"{file} is not a retain state manifest")
    if manifest.get("kind") != kind:
        raise RetainError(f"{path} holds a {manifest.get('kind')!r}, not a {kind!r}")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > version:
        raise RetainError(f"{path} holds a {kind} of version {manifest.get('version')!r}, "
                          f"newer than this retain reads ({version}); upgrade retain")
    if "content_hash" not in manifest or content_hash(manifest) != manifest["content_hash"]:
        raise RetainError(f"{file} does not match its content hash: it was edited or is corrupt")
    return manifest


def load_state(path: str | Path, kind: str, version: int = 1) -> dict[str, Any]:
    """The state saved by :func:`save_state`; every problem names the file at fault."""
    path = Path(path)
    manifest = read_state_manifest(path, kind, version)
    tensors = _read_tensors(path / TENSORS, manifest["files"][TENSORS])
    return unflatten(manifest["state"], tensors)
