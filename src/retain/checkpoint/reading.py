"""A checkpoint opened: its verified sections, and the :class:`retain.Learner` they rebuild.

This module imports the learner; :mod:`retain.checkpoint.format`, which the learner's own
``save``/``load`` use, does not (the learner class is passed to it), so neither imports the
other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retain.checkpoint.format import read_sections, restore
from retain.learner import Learner


@dataclass
class Checkpoint:
    """A verified checkpoint: its manifest and decoded sections."""

    path: Path
    manifest: dict[str, Any]
    sections: dict[str, Any]

    @property
    def normalization(self) -> Any:
        return self.sections["normalization"]

    def learner(self, model: nn.Module | None = None, loss: nn.Module | None = None,
                device: torch.device | str | None = None, restore_rng: bool = True) -> Learner:
        """The saved learner, ready to continue training where it stopped. ``restore_rng``
        also resets the global torch/numpy/python RNGs to their state at save time (needed
        for an exact resume with dropout)."""
        return restore(self.sections, Learner, model=model, loss=loss, device=device,
                       restore_rng=restore_rng)


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint folder; every problem is a :class:`RetainError` naming the
    file at fault."""
    return Checkpoint(Path(path), *read_sections(path))


def load_learner(path: str | Path, model: nn.Module | None = None, loss: nn.Module | None = None,
                 device: torch.device | str | None = None) -> Learner:
    """Rebuild a saved learner. Pass ``model`` when it was saved with a model that is not built
    in (its names and shapes are checked), ``loss`` when it used a custom loss."""
    return open_checkpoint(path).learner(model=model, loss=loss, device=device)
