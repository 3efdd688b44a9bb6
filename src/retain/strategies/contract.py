"""What a strategy may read and call on the learner: the whole contract, written down.

The hooks of :class:`~retain.strategies.base.Strategy` receive the learner; a strategy uses
only the members below (tests check every strategy's source against this list), so the
learner can change anything else without breaking a strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from retain.distributed import World

#: the learner members a strategy may use (kept equal to :class:`LearnerView`'s by a test)
MEMBERS = ("model", "optimizer", "loss_fn", "device", "generator", "task_type", "seen_classes",
           "eval_batch_size", "output_map", "batches", "loss_on", "world")


class LearnerView(Protocol):
    """The part of :class:`~retain.learner.Learner` strategies see."""

    #: the model being trained (strategies may snapshot it, read its parameters and gradients)
    model: nn.Module
    #: its optimizer (read its learning rate; GDumb steps it while retraining)
    optimizer: torch.optim.Optimizer
    #: the learner's training criterion on labelled rows (a strategy may call it)
    loss_fn: nn.Module
    #: where the model and data live: state tensors go here
    device: torch.device
    #: the learner's random generator (shuffling, sampled Fisher): draws from it are resumed
    generator: torch.Generator
    #: ``"classification"`` or ``"regression"``
    task_type: str
    #: boolean mask of the classes seen so far (classification), or ``None``
    seen_classes: torch.Tensor | None
    #: batch size for evaluation-like passes
    eval_batch_size: int
    #: the processes training together (:mod:`retain.distributed`): its collectives keep a
    #: strategy's state identical on every rank and are the identity in one process
    world: World

    @property
    def output_map(self) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None:
        """``f(out, task)`` masking outputs to each row's task, or ``None`` without tasks."""

    def batches(self, dataset: Dataset, batch_size: int = 1024, limit: int | None = None,
                shuffle: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor | None]]:
        """``(x, y, task_or_None)`` batches of ``dataset`` on the learner's device."""

    def loss_on(self, out: torch.Tensor, y: torch.Tensor,
                task: torch.Tensor | None = None) -> torch.Tensor:
        """The learner's criterion on extra rows: task-masked outputs, targets shaped like the
        outputs (regression), then ``loss_fn``, exactly as for the incoming rows."""
