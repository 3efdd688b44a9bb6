"""Adapter checkpoints: the trainable parameters, optimizer, strategies and counters of a
learner over a frozen base, plus a reference to that base (its name or path and the hash of
its frozen weights), never a copy of the frozen weights.

Folder layout::

    manifest.json              format "retain-adapters", the base reference, the JSON part of
                               every section, size + sha256 of each file, a content hash
    <section>.safetensors      model (trainable parameters and buffers), optimizer,
                               strategies, learner

A teacher a strategy keeps (LwF, DER's logits come from the model) is a copy of the whole
model: its frozen entries are dropped on save and taken from the base on load. Loading onto a
model whose frozen weights hash differently is refused, naming both hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from retain.checkpoint.atomic import write_folder
from retain.checkpoint.sealed import MANIFEST, read_manifest, read_tensors, seal
from retain.checkpoint.serialize import flatten, unflatten
from retain.errors import RetainError
from retain.learner import Learner
from retain.pretrained.lora import base_hash

FORMAT, VERSION = "retain-adapters", 1
SECTIONS = ("model", "optimizer", "scheduler", "strategies", "learner")


def save_adapters(learner: Learner, path: str | Path, base: str,
                  overwrite: bool = False) -> Path:
    """Write ``learner``'s trainable state to the folder ``path``; ``base`` names the base
    model (a hub name or a path on disk) for whoever loads it."""
    frozen = _frozen_names(learner)
    state = learner.state_dict()
    state["model"] = {k: v for k, v in state["model"].items() if k not in frozen}
    state["strategies"] = _without(state["strategies"], frozen, set(learner.model.state_dict()))
    manifest: dict[str, Any] = {"format": FORMAT, "format_version": VERSION,
                                "base": {"name": str(base), "sha256": base_hash(learner.model)}}
    files: dict[str, bytes] = {}
    for section in SECTIONS:
        tensors: dict[str, torch.Tensor] = {}
        manifest[section] = flatten(state[section], tensors)
        if tensors:
            tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
            files[f"{section}.safetensors"] = safetensors.torch.save(tensors)
    write_folder(Path(path), seal(manifest, files), overwrite=overwrite)
    return Path(path)


def read_base(path: str | Path) -> dict[str, str]:
    """The base reference of an adapter checkpoint: ``{"name": ..., "sha256": ...}``."""
    return _manifest(Path(path))["base"]


def load_adapters(path: str | Path, learner: Learner) -> Learner:
    """Restore an adapter checkpoint into ``learner`` (built on the same base, with the same
    adapters and strategies); refused, with nothing changed, when its base differs."""
    path = Path(path)
    manifest = _manifest(path)
    saved, here = manifest["base"]["sha256"], base_hash(learner.model)
    if saved != here:
        raise RetainError(
            f"{path} holds adapters for the base {manifest['base']['name']!r} whose frozen "
            f"weights hash to {saved}; this model's frozen weights hash to {here}: load the "
            "same base model (and freeze the same parameters) first")
    tensors = {}
    for name, entry in manifest["files"].items():
        tensors[name.split(".")[0]] = read_tensors(path / name, entry)
    state = {s: unflatten(manifest[s], tensors.get(s, {})) for s in SECTIONS}
    full = learner.model.state_dict()
    unknown = sorted(set(state["model"]) - set(full))
    if unknown:
        raise RetainError(f"{path} has weights this model lacks: {unknown[:5]}")
    state["model"] = {**full, **state["model"]}
    state["strategies"] = _filled(state["strategies"], full)
    learner.load_state_dict(state)
    return learner


def _frozen_names(learner: Learner) -> set[str]:
    return {n for n, p in learner.model.named_parameters() if not p.requires_grad}


def _without(obj: Any, frozen: set[str], model_keys: set[str]) -> Any:
    """Strategy state with each copy of the model's state (a teacher) stripped of its frozen
    weights."""
    if isinstance(obj, dict):
        if obj and set(obj) == model_keys:
            return {"__frozen_dropped__": True, **{k: v for k, v in obj.items()
                                                   if k not in frozen}}
        return {k: _without(v, frozen, model_keys) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without(v, frozen, model_keys) for v in obj]
    return obj


def _filled(obj: Any, full: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if obj.get("__frozen_dropped__"):
            return {**full, **{k: v for k, v in obj.items() if k != "__frozen_dropped__"}}
        return {k: _filled(v, full) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_filled(v, full) for v in obj]
    return obj


def _manifest(path: Path) -> dict[str, Any]:
    return read_manifest(path, FORMAT, foreign="a retain adapter checkpoint",
                         missing=f"no adapter checkpoint at {path}: {MANIFEST} is missing")
