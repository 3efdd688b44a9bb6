"""What code outside the learner may read and call on it: the whole contract, written down.

The hooks of :class:`~retain.strategies.base.Strategy` receive the learner; a strategy uses
only the members of :class:`LearnerView`. What drives or scores a learner from outside (the
evaluator, the run loop and its recorder, the checkpoint format, the Lightning module) uses
only those of :class:`DriverView`. Tests check each one's source against these lists, so the
learner can change anything else without breaking them. The modules that read a learner type
against these views, never the class: none of them imports :mod:`retain.learner`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from retain.distributed import World
from retain.scenarios.experience import Experience

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


#: what drives or scores a learner from outside may use besides :data:`MEMBERS` (kept equal to
#: :class:`DriverView`'s own by a test)
DRIVER_MEMBERS = (
    "classifier", "mask", "target", "experience_tensors", "experiences_seen", "strategies",
    "scheduler", "scheduler_interval", "seed", "learn", "every_steps", "set_task_classes",
    "begin_experience", "step", "end_experience", "predict", "state_dict", "load_state_dict")


class DriverView(LearnerView, Protocol):
    """The part of :class:`~retain.learner.Learner` that the evaluator, the run loop and its
    recorder, the checkpoint format and the Lightning module see."""

    #: experiences learned so far
    experiences_seen: int
    #: the strategies, in order
    strategies: list[Any]
    #: the learning-rate scheduler, or ``None``, and when it steps
    scheduler: Any
    scheduler_interval: str
    #: the seed of :attr:`generator`
    seed: int

    @property
    def classifier(self) -> Callable[[Any, torch.Tensor], torch.Tensor | None] | None:
        """The strategy hook that classifies instead of the model's argmax, or ``None``."""

    def mask(self, out: torch.Tensor, task: torch.Tensor | None) -> torch.Tensor:
        """Outputs with the classes outside each row's task masked out."""

    def target(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Regression targets viewed in the outputs' shape (labels unchanged)."""

    def experience_tensors(self, dataset: Dataset, task: int | None = None
                           ) -> tuple[torch.Tensor, ...]:
        """``(x, y[, task])`` of a dataset on the learner's device."""

    def learn(self, data: Any, epochs: int = 1, batch_size: int = 32, task: int | None = None,
              shuffle: bool = True) -> Any:
        """Train on one experience, then let the strategies consolidate."""

    def every_steps(self, steps: int, callback: Callable[[int], None]) -> Any:
        """A context in which :meth:`learn` calls ``callback(step)`` every ``steps`` steps."""

    def set_task_classes(self, task_classes: Sequence[Sequence[int]]) -> None:
        """Declare the classes of each task."""

    def begin_experience(self, experience: Experience) -> tuple[torch.Tensor, ...]:
        """What :meth:`learn` does before its first step."""

    def step(self, x: torch.Tensor, y: torch.Tensor,
             task: torch.Tensor | None = None) -> torch.Tensor:
        """One update step of a batch of an experience opened with :meth:`begin_experience`."""

    def end_experience(self, experience: Experience) -> None:
        """What :meth:`learn` does after its last step."""

    def predict(self, x: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """Predicted classes (classification) or outputs (regression)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training exactly."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`, checked whole before anything changes."""
