"""The one hook protocol every strategy implements.

A strategy is a small object with hyper-parameters, state and math, like a ``torch.optim``
optimizer. It overrides only the hooks it needs; the :class:`~retain.Learner` looks up which
hooks each strategy overrides once, at construction, and calls only those on the hot path.

Hook order for one update step::

    extend_batch(learner, batch)      # append rows to the batch (replay, memory samples)
    out = model(batch.x)              # one forward pass for all rows
    rows = mask(out[labelled rows])   # a view while the labelled rows come first
    loss = criterion(learner, batch, rows, batch.y)   # default: the learner's loss function
    loss = loss_terms(learner, batch, loss)   # add penalty/distillation/memory terms
    loss.backward()
    after_backward(learner, batch)    # edit gradients (EWC quadratic, A-GEM projection)
    optimizer.step()
    after_step(learner, batch)        # bookkeeping (buffer insertion, path integrals)

and around each experience: ``before_experience`` / ``after_experience`` (consolidation:
Fisher information, teacher snapshot, ...).

Hooks receive the learner, of which a strategy uses only what
:class:`~retain.strategies.contract.LearnerView` lists (model, optimizer, loss function,
device, generator, task type, seen classes, ``output_map``, ``batches``, ``loss_on``).

The learner's criterion trains on the *labelled* rows of the batch only: the incoming rows
and the rows a strategy appends with ``labelled=True`` (Replay's memory samples). Rows
appended with ``labelled=False`` share the forward pass but only the appending strategy's own
``loss_terms`` train on them (DER's logit rows, ER-ACE's memory rows). At most one strategy of
a learner may override ``criterion``, which replaces the learner's loss function on the
labelled rows (ER-ACE's cross-entropy masked to the classes present in the incoming batch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from retain.strategies.contract import LearnerView
    from retain.scenarios import Experience

HOOKS = (
    "before_experience",
    "extend_batch",
    "criterion",
    "loss_terms",
    "after_backward",
    "after_step",
    "after_experience",
    "classify",
)


class Batch:
    """The rows of one update step.

    ``x`` and ``task`` hold every row: the incoming batch first (``n_new`` rows, also kept as
    given in ``new_x``, ``new_y``, ``new_task``), then the rows strategies appended
    (``n_rows`` in all). ``out`` holds the model's output for all rows after the forward pass.

    Rows are *labelled* (the learner's criterion trains on them: the incoming rows, replayed
    samples) or *unlabelled* (only the strategy that appended them uses them, in its own
    ``loss_terms``: DER's logit rows, ER-ACE's memory rows). ``y`` holds the labels (targets)
    of the labelled rows, in row order; ``n_labelled`` counts them. While the labelled rows
    are the first rows of the batch (always, unless labelled rows are appended after
    unlabelled ones) ``labelled`` is ``None`` and the learner's criterion sees the view
    ``out[:n_labelled]``; otherwise ``labelled`` is the index tensor of the labelled rows.

    Appended rows are concatenated once, when ``x``, ``y`` or ``task`` is next read (the
    forward pass), however many strategies append.
    """

    __slots__ = ("_x", "_y", "_task", "_xs", "_ys", "_tasks", "n_rows", "n_new", "n_labelled",
                 "labelled", "new_x", "new_y", "new_task", "out")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | None = None):
        self._x, self._y, self._task = x, y, task
        # parts not yet concatenated (tuples: no method calls on the hot path)
        self._xs: tuple[torch.Tensor, ...] | None = None
        self._ys: tuple[torch.Tensor, ...] | None = None
        self._tasks: tuple[torch.Tensor, ...] | None = None
        self.n_rows = self.n_new = self.n_labelled = x.shape[0]
        self.labelled: torch.Tensor | None = None
        # the incoming rows, kept as given: no slicing of the grown batch on the hot path
        self.new_x, self.new_y, self.new_task = x, y, task
        self.out: torch.Tensor | None = None

    @property
    def x(self) -> torch.Tensor:
        if self._xs is not None:
            self._x, self._xs = torch.cat(self._xs), None
        return self._x

    @property
    def y(self) -> torch.Tensor:
        if self._ys is not None:
            self._y, self._ys = torch.cat(self._ys), None
        return self._y

    @property
    def task(self) -> torch.Tensor | None:
        if self._tasks is not None:
            self._task, self._tasks = torch.cat(self._tasks), None
        return self._task

    def append(self, x: torch.Tensor, y: torch.Tensor | None = None,
               task: torch.Tensor | None = None, *, labelled: bool = True) -> int:
        """Append rows and return the index of the first appended row.

        ``labelled=True`` rows get the learner's criterion with labels ``y``; with
        ``labelled=False`` the rows only go through the forward pass, ``y`` is not used (the
        appending strategy keeps what its own terms need) and may be ``None``.
        """
        start, n = self.n_rows, x.shape[0]
        if self.new_task is not None:
            if task is None:
                raise ValueError("a task-labelled batch needs task labels for appended rows")
            self._tasks = (self._task, task) if self._tasks is None else (*self._tasks, task)
        if labelled:
            if y is None:
                raise ValueError("labelled rows need labels")
            if self.labelled is not None or start != self.n_labelled:
                # after unlabelled rows (rare: e.g. DER, then Replay): index the labelled rows
                device = self.new_x.device
                before = (self.labelled if self.labelled is not None
                          else torch.arange(self.n_labelled, device=device))
                self.labelled = torch.cat((before, torch.arange(start, start + n,
                                                                device=device)))
            self._ys = (self._y, y) if self._ys is None else (*self._ys, y)
            self.n_labelled += n
        self._xs = (self._x, x) if self._xs is None else (*self._xs, x)
        self.n_rows += n
        return start


class Strategy:
    """Base class: every hook is a no-op that the learner never calls unless overridden."""

    #: name used on the command line and in configs (``retain run --strategy ewc``)
    name: str = "strategy"

    def __init__(self, **hyperparameters: Any):
        self.hyperparameters = hyperparameters

    def bind(self, learner: LearnerView) -> None:
        """Called when the learner is built or loaded: move state to ``learner.device``."""

    def before_experience(self, learner: LearnerView, experience: Experience) -> None:
        """Called before training on an experience."""

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        """Add rows to ``batch`` before the forward pass."""

    def criterion(self, learner: LearnerView, batch: Batch, out: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
        """The loss of the labelled rows, instead of the learner's loss function.

        ``out`` is the model's output for the labelled rows (task-masked; the incoming rows
        first), ``y`` their targets. At most one strategy of a learner may override this.
        """
        return learner.loss_fn(out, y)

    def classify(self, learner: LearnerView, x: torch.Tensor) -> torch.Tensor | None:
        """Class predictions from this strategy's own classifier (iCaRL's nearest mean of
        exemplars) instead of the model's argmax, or ``None`` to leave them to the model.
        ``Learner.predict``, ``evaluate`` and ``run`` use it; at most one strategy of a learner
        may override it."""
        return None

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        """Return ``loss`` plus this strategy's terms."""
        return loss

    def after_backward(self, learner: LearnerView, batch: Batch) -> None:
        """Edit parameter gradients before the optimizer step."""

    def after_step(self, learner: LearnerView, batch: Batch) -> None:
        """Bookkeeping after the optimizer step."""

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
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
