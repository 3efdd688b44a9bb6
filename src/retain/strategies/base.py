"""The one hook protocol every strategy implements.

A strategy is a small object with hyper-parameters, state and math, like a ``torch.optim``
optimizer. It overrides only the hooks it needs; the :class:`~retain.Learner` looks up which
hooks each strategy overrides once, at construction, and calls only those on the hot path.

Hook order for one update step::

    extend_batch(learner, batch)      # add rows to the batch (replay)
    out = model(batch.x)              # one forward pass for all rows
    loss = criterion(out, batch.y)
    loss = loss_terms(learner, batch, loss)   # add penalty/distillation terms
    loss.backward()
    after_backward(learner, batch)    # edit gradients (EWC quadratic, A-GEM projection)
    optimizer.step()
    after_step(learner, batch)        # bookkeeping (buffer insertion, path integrals)

and around each experience: ``before_experience`` / ``after_experience`` (consolidation:
Fisher information, teacher snapshot, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from retain.learner import Learner
    from retain.scenarios import Experience

HOOKS = (
    "before_experience",
    "extend_batch",
    "loss_terms",
    "after_backward",
    "after_step",
    "after_experience",
)


class Batch:
    """The rows of one update step.

    ``x``, ``y`` and ``task`` start as the incoming batch; strategies may append rows (replay).
    ``n_new`` is the number of incoming rows, which are always first. ``out`` holds the model's
    output for all rows after the forward pass.
    """

    __slots__ = ("x", "y", "task", "n_new", "new_x", "new_y", "new_task", "out")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | None = None):
        self.x = x
        self.y = y
        self.task = task
        self.n_new = x.shape[0]
        # the incoming rows, kept as given: no slicing of the grown batch on the hot path
        self.new_x, self.new_y, self.new_task = x, y, task
        self.out: torch.Tensor | None = None

    def append(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | None = None) -> int:
        """Append rows and return the index of the first appended row."""
        start = self.x.shape[0]
        self.x = torch.cat((self.x, x))
        self.y = torch.cat((self.y, y))
        if self.task is not None:
            if task is None:
                raise ValueError("a task-labelled batch needs task labels for appended rows")
            self.task = torch.cat((self.task, task))
        return start


class Strategy:
    """Base class: every hook is a no-op that the learner never calls unless overridden."""

    #: name used on the command line and in configs (``retain run --strategy ewc``)
    name: str = "strategy"

    def __init__(self, **hyperparameters: Any):
        self.hyperparameters = hyperparameters

    def bind(self, learner: Learner) -> None:
        """Called when the learner is built or loaded: move state to ``learner.device``."""

    def before_experience(self, learner: Learner, experience: Experience) -> None:
        """Called before training on an experience."""

    def extend_batch(self, learner: Learner, batch: Batch) -> None:
        """Add rows to ``batch`` before the forward pass."""

    def loss_terms(self, learner: Learner, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        """Return ``loss`` plus this strategy's terms."""
        return loss

    def after_backward(self, learner: Learner, batch: Batch) -> None:
        """Edit parameter gradients before the optimizer step."""

    def after_step(self, learner: Learner, batch: Batch) -> None:
        """Bookkeeping after the optimizer step."""

    def after_experience(self, learner: Learner, experience: Experience) -> None:
        """Consolidate what was learned from the experience."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: hyper-parameters and learned state (tensors allowed)."""
        return {"hyperparameters": dict(self.hyperparameters)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.get("hyperparameters", {}).items():
            self.hyperparameters[key] = value
            if hasattr(self, key):
                setattr(self, key, value)

    def overrides(self, hook: str) -> bool:
        """True when this strategy implements ``hook`` (so the learner must call it)."""
        return getattr(type(self), hook) is not getattr(Strategy, hook)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({args})"
