"""The labels a learner knows: its number of outputs, the classes seen so far, the classes of
each task (a mask over the outputs) and outputs grown for classes it has not seen.

These are methods of :class:`retain.Learner`, kept here by their job: the class names them
(``set_task_classes = label_space.set_task_classes``), so ``learner.set_task_classes(...)``
calls the function below with the learner as its first argument. They keep the private
``_task_mask`` that the step reads (:class:`Labelled` lists all they touch).

>>> import torch
>>> from retain import Learner
>>> model = torch.nn.Linear(3, 4)
>>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1))
>>> learner.set_task_classes([(0, 1), (2, 3)])
>>> (learner.mask(torch.zeros(2, 4), torch.tensor([0, 1])) == 0).tolist()  # task 0, task 1
[[True, True, False, False], [False, False, True, True]]
>>> learner.grow_classes(6), tuple(learner.mask(torch.zeros(1, 6), torch.tensor([1])).shape)
('', (1, 6))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn

from retain import growth
from retain.checks import probe


class Labelled(Protocol):
    """What these functions read and write on a learner (:class:`retain.Learner` has it)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    strategies: list[Any]
    device: torch.device
    task_type: str
    n_outputs: int | None
    seen_classes: torch.Tensor | None
    task_classes: list[tuple[int, ...]] | None
    _task_mask: torch.Tensor | None


def note_outputs(learner: Labelled, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs on a few rows ``x`` (a clear error when it cannot run them); the
    first such call notes the learner's number of outputs."""
    out = probe(learner.model, x)
    if learner.n_outputs is None and out.dim() >= 2:
        learner.n_outputs = out.shape[1]
    return out


def note_classes(learner: Labelled, y: torch.Tensor) -> None:
    """Mark the labels ``y`` as seen (classification only)."""
    if learner.task_type != "classification":
        return
    if learner.seen_classes is None:
        learner.seen_classes = torch.zeros(learner.n_outputs or int(y.max()) + 1,
                                           dtype=torch.bool, device=learner.device)
    learner.seen_classes[y.unique()] = True


def set_task_classes(learner: Labelled, task_classes: Sequence[Sequence[int]]) -> None:
    """Declare the classes of each task: outputs are then masked to the sample's task."""
    learner.task_classes = [tuple(int(c) for c in cs) for cs in task_classes]
    n_out = max(max(cs) for cs in learner.task_classes) + 1
    n_out = max(n_out, learner.n_outputs or 0)
    mask = torch.zeros(len(learner.task_classes), n_out, dtype=torch.bool)
    for i, cs in enumerate(learner.task_classes):
        mask[i, list(cs)] = True
    learner._task_mask = mask.to(learner.device)


def grow_classes(learner: Labelled, n_classes: int) -> str | None:
    """Give the model's output layer ``n_classes`` units for labels it has not seen, with the
    optimizer, strategy and class-mask state grown to match (:mod:`retain.growth`); returns
    the grown layer's name (``None`` if it had enough units already)."""
    name = growth.grow_output(learner.model, learner.optimizer, learner.strategies, n_classes)
    if name is not None:
        learner.n_outputs = n_classes if learner.n_outputs is not None else None
        learner.seen_classes = growth.widen(learner.seen_classes, n_classes, dim=0)
        learner._task_mask = growth.widen(learner._task_mask, n_classes, dim=1)
    return name
