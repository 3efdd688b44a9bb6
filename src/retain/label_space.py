"""The labels a learner knows: its number of outputs, the classes seen so far, the classes of
each task (a mask over the outputs) and outputs grown for classes it has not seen; and the
model's outputs read against them: masked to each row's task, regression targets shaped like
the outputs, the learner's loss on extra rows.

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

from retain import checks, growth

_MASK_VALUE = -1e9  # masked logits: exp() is 0, yet finite so KL/CE terms stay finite


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
    loss_fn: nn.Module
    _task_mask: torch.Tensor | None
    _probed: tuple[tuple, torch.Tensor] | None

    def mask(self, out: torch.Tensor, task: torch.Tensor | None) -> torch.Tensor: ...
    def target(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor: ...


def note_outputs(learner: Labelled, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs on a few rows ``x`` (a clear error when it cannot run them); the
    first such call notes the learner's number of outputs. The model runs once per input
    shape and set of parameters: a later call with the same gets the outputs noted then
    (a forward and two mode switches less per experience and per prediction; a grown or
    replaced layer has other parameters, so it is probed again)."""
    key = (tuple(x.shape), x.dtype, x.device, id(learner.model),
           tuple((id(p), p.shape) for p in learner.model.parameters()))
    if learner._probed is not None and learner._probed[0] == key:
        return learner._probed[1]
    out = checks.probe(learner.model, x)
    if learner.n_outputs is None and out.dim() >= 2:
        learner.n_outputs = out.shape[1]
    learner._probed = (key, out)
    return out


def check_data(learner: Labelled, x: torch.Tensor, y: torch.Tensor,
               t: torch.Tensor | None = None) -> None:
    """Clear errors for user mistakes: inputs, and labels (or targets) and task labels that
    fit the model's outputs and the tasks' classes."""
    checks.check_inputs(x, y)
    checks.check_targets(y, note_outputs(learner, x[:2]), learner.task_type, t,
                         learner._task_mask)


def note_classes(learner: Labelled, y: torch.Tensor) -> None:
    """Mark the labels ``y`` as seen (classification only)."""
    if learner.task_type != "classification":
        return
    if learner.seen_classes is None:
        learner.seen_classes = torch.zeros(learner.n_outputs or int(y.max()) + 1,
                                           dtype=torch.bool, device=learner.device)
    learner.seen_classes[y] = True  # every write is True: duplicates are harmless


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


def mask(learner: Labelled, out: torch.Tensor, task: torch.Tensor | None) -> torch.Tensor:
    """Outputs with the classes outside each row's task masked out (as-is without tasks)."""
    if learner._task_mask is None or task is None:
        return out
    return out.masked_fill(~learner._task_mask.index_select(0, task), _MASK_VALUE)


def target(learner: Labelled, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Regression targets viewed in the outputs' shape (labels unchanged)."""
    if learner.task_type == "regression" and y.shape != out.shape:
        return y.view(out.shape)
    return y


def output_map(learner: Labelled):
    """Post-processing of model outputs (task masking) for strategies, or ``None``."""
    return learner.mask if learner._task_mask is not None else None


def loss_on(learner: Labelled, out: torch.Tensor, y: torch.Tensor,
            task: torch.Tensor | None = None) -> torch.Tensor:
    """The learner's loss function on extra rows (a strategy's memory rows): outputs
    masked to each row's task, regression targets shaped like the outputs, as in a step."""
    out = learner.mask(out, task)
    return criterion(learner.loss_fn, out, learner.target(y, out))


_cross_entropy = nn.functional.cross_entropy


def criterion(loss_fn: nn.Module, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``loss_fn(out, y)``; a plain ``nn.CrossEntropyLoss`` without hooks is called as the
    function its ``forward`` calls, with its settings: the same op, without the module call's
    three Python frames a step (docs/performance.md).

    >>> out, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    >>> loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1)
    >>> bool(criterion(loss, out, y) == loss(out, y))
    True
    """
    if (type(loss_fn) is nn.CrossEntropyLoss and not loss_fn._forward_hooks
            and not loss_fn._forward_pre_hooks):
        return _cross_entropy(out, y, loss_fn._buffers["weight"],
                              ignore_index=loss_fn.ignore_index, reduction=loss_fn.reduction,
                              label_smoothing=loss_fn.label_smoothing)
    return loss_fn(out, y)
