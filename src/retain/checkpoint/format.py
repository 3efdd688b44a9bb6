"""A learner on disk: safetensors files for tensors plus a JSON manifest, never pickle.

Folder layout::

    manifest.json          format version, recipes (model, loss, optimizer, scheduler,
                           strategies), normalisation statistics, the JSON part of every
                           state section, size + sha256 of each file, and a content hash
    model.safetensors      the model's state dict under its usual names (plain weights)
    optimizer.safetensors  optimizer state          strategies.safetensors  Fisher, buffers,
    learner.safetensors    counters, generator      rng.safetensors         torch global RNG
                                                                            teachers, ...

Loading verifies every file's size and hash before reading it, so a truncated, missing or edited
file is reported by name, and no file can make the loader run code. RNG states (torch, numpy,
python, the learner's generator, replay buffers') are saved too: training N steps, saving,
loading in a new process and training M more gives the same weights as N + M steps.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import safetensors.torch
import torch
from torch import nn

from retain.checkpoint import sealed
from retain.checkpoint.atomic import write_folder
from retain.checkpoint.recipes import learner_spec, rebuild_learner
from retain.checkpoint.sealed import MANIFEST, read_tensors, require_folder, seal, storable
from retain.checkpoint.sealed import content_hash as content_hash  # a public name here too
from retain.checkpoint.serialize import flatten, unflatten
from retain.checks import check_model
from retain.errors import RetainError
from retain.version import __version__

if TYPE_CHECKING:
    from retain.strategies.contract import DriverView

FORMAT = "retain-checkpoint"
FORMAT_VERSION = 2  # 2: the model recipe may name an output layer grown for new classes
STATE = ("model", "optimizer", "scheduler", "strategies", "learner")
SECTIONS = ("spec", "normalization", *STATE, "rng")
_FILE = re.compile(r"^([a-z]+)\.safetensors$")
L = TypeVar("L")


def save_learner(learner: DriverView, path: str | Path, normalization: Any = None,
                 overwrite: bool = False) -> Path:
    """Save everything needed to resume ``learner`` exactly into the folder ``path``.

    ``normalization`` is any JSON-able value (dicts, lists, numbers, arrays) kept with the
    weights, e.g. the feature means the model's inputs were scaled with.
    """
    path = Path(path)
    write_folder(path, encode(learner, normalization), overwrite=overwrite)
    return path


def save_from_main_rank(learner: DriverView, path: str | Path, normalization: Any = None,
                        overwrite: bool = False) -> Path:
    """:func:`save_learner` on rank 0 only (every rank holds the same state); the others
    wait, so that no rank reads a partial folder (:meth:`retain.Learner.save`)."""
    if learner.world.main:
        try:
            save_learner(learner, path, normalization=normalization, overwrite=overwrite)
        finally:
            learner.world.barrier()
    else:
        learner.world.barrier()
    return Path(path)


def encode(learner: DriverView, normalization: Any = None) -> dict[str, bytes]:
    """The checkpoint's files as ``{name: bytes}`` (the manifest last)."""
    values = {"spec": learner_spec(learner), "normalization": normalization,
              **{k: v for k, v in learner.state_dict().items() if k in STATE},
              "rng": rng_state()}
    manifest: dict[str, Any] = {
        "format": FORMAT, "format_version": 2 if values["spec"]["model"].get("grown") else 1,
        "retain_version": __version__,
        "torch_version": torch.__version__, "created": datetime.now(UTC).isoformat(),
    }
    files: dict[str, bytes] = {}
    for section in SECTIONS:
        tensors: dict[str, torch.Tensor] = {}
        manifest[section] = flatten(values[section], tensors)
        if tensors:
            files[f"{section}.safetensors"] = safetensors.torch.save(storable(tensors))
    return seal(manifest, files)


def read_sections(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(manifest, sections)`` of checkpoint folder ``path``, every file verified first; every
    problem is a :class:`RetainError` naming the file at fault."""
    path = Path(path)
    require_folder(path, "checkpoint")
    manifest = read_manifest(path)
    tensors = {}
    for name, entry in manifest["files"].items():
        match = _FILE.match(name)
        if match is None or match.group(1) not in SECTIONS:
            raise RetainError(f"{path / MANIFEST} lists an unexpected file {name!r}")
        tensors[match.group(1)] = read_tensors(path / name, entry)
    return manifest, {s: unflatten(manifest[s], tensors.get(s, {})) for s in SECTIONS}


def restore(sections: dict[str, Any], learner_class: type[L], model: nn.Module | None = None,
            loss: nn.Module | None = None, device: torch.device | str | None = None,
            restore_rng: bool = True) -> L:
    """The saved learner, built as ``learner_class`` (:class:`retain.Learner` or a subclass)
    and ready to continue where it stopped; see :meth:`Checkpoint.learner`."""
    if model is not None:
        check_model(model, sections["model"])
    learner = rebuild_learner(sections["spec"], learner_class, model=model, loss=loss,
                              device=device)
    learner.load_state_dict({k: sections[k] for k in STATE})
    if restore_rng:
        set_rng_state(sections["rng"])
    return learner


def read_manifest(path: Path) -> dict[str, Any]:
    """The verified manifest of checkpoint folder ``path``."""
    return sealed.read_manifest(
        path, FORMAT, missing=f"{path} is not a complete checkpoint: {MANIFEST} is missing",
        foreign="a retain checkpoint manifest", checks=lambda m: _check(path, m))


def _check(path: Path, manifest: dict[str, Any]) -> None:
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RetainError(
            f"{path} was written in checkpoint format {version!r}, newer than this retain reads "
            f"({FORMAT_VERSION}); upgrade retain to load it")
    missing = [k for k in (*SECTIONS, "files", "content_hash") if k not in manifest]
    if missing:
        raise RetainError(f"{path / MANIFEST} lacks the entries {', '.join(missing)} (corrupt)")


def rng_state() -> dict[str, Any]:
    """The global RNG states that training draws from (dropout uses torch's)."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(legacy=False),
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
