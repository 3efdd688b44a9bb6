"""A folder sealed by its manifest: every file's size and sha256 listed in ``manifest.json``,
and a hash over the manifest itself, so that a truncated, missing, edited or foreign file is
refused by name before anything is decoded.

The three folder formats (a learner, :mod:`~retain.checkpoint.format`; any object's state,
:mod:`~retain.checkpoint.state`; adapters over a frozen base,
:mod:`retain.pretrained.checkpoint`) write through :func:`seal` and read through
:func:`read_manifest` and :func:`read_tensors`; each adds only its own checks.

>>> import tempfile, safetensors.torch, torch
>>> from pathlib import Path
>>> from retain.checkpoint.atomic import write_folder
>>> folder = Path(tempfile.mkdtemp()) / "sealed"
>>> files = {"w.safetensors": safetensors.torch.save({"w": torch.ones(2)})}
>>> write_folder(folder, seal({"format": "example"}, files))
>>> manifest = read_manifest(folder, "example", missing="nothing here", foreign="an example")
>>> read_tensors(folder / "w.safetensors", manifest["files"]["w.safetensors"])["w"]
tensor([1., 1.])
>>> read_manifest(folder, "other", missing="nothing here", foreign="an other")
Traceback (most recent call last):
...
retain.errors.RetainError: .../sealed/manifest.json is not an other
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from retain.errors import RetainError

MANIFEST = "manifest.json"


def seal(manifest: dict[str, Any], files: dict[str, bytes],
         indent: int | None = 1) -> dict[str, bytes]:
    """``files`` and, last, the manifest that seals them: ``manifest`` with each file's size
    and sha256 (``"files"``) and its :func:`content_hash` added."""
    manifest["files"] = {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                         for name, data in files.items()}
    manifest["content_hash"] = content_hash(manifest)
    return {**files, MANIFEST: json.dumps(manifest, indent=indent).encode()}


def content_hash(manifest: dict[str, Any]) -> str:
    """sha256 over the manifest (which lists every file's sha256), without this hash itself."""
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def storable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, and no two tensors sharing memory (tied weights), as safetensors needs."""
    out, seen = {}, set()
    for key, t in tensors.items():
        t = t.cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            t = t.clone()
        seen.add(ptr)
        out[key] = t
    return out


def require_folder(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is a folder: ``no {what} at {path}: it does not exist``."""
    if not path.is_dir():
        raise RetainError(f"no {what} at {path}: it "
                          f"{'is not a folder' if path.exists() else 'does not exist'}")


def read_manifest(path: Path, form: str, *, missing: str, foreign: str,
                  checks: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The manifest of the folder ``path``, of format ``form``, its content hash verified.

    ``missing`` is the error when there is no manifest; ``foreign`` completes
    ``{file} is not ...`` when it is not JSON of ``form``; ``checks`` raises for what else the
    format requires (its version, its entries), before the hash is checked."""
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise RetainError(missing) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RetainError(f"{file} is not valid JSON (truncated or corrupt)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != form:
        raise RetainError(f"{file} is not {foreign}")
    if checks is not None:
        checks(manifest)
    if manifest.get("content_hash") != content_hash(manifest):
        raise RetainError(f"{file} does not match its content hash: it was edited or is corrupt")
    return manifest


def read_tensors(file: Path, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``file`` once its size and sha256 match the manifest's ``entry``."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise RetainError(f"checkpoint file {file} is missing") from None
    if len(data) != entry["bytes"]:
        state = "truncated" if len(data) < entry["bytes"] else "too long"
        raise RetainError(
            f"checkpoint file {file} is {state}: {len(data)} bytes, expected {entry['bytes']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise RetainError(f"checkpoint file {file} is corrupt: its sha256 does not match the "
                          "manifest's")
    try:
        return safetensors.torch.load(data)
    except SafetensorError as exc:
        raise RetainError(f"checkpoint file {file} is not a safetensors file: {exc}") from None
