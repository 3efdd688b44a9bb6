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

import functools
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from retain.errors import RetainError

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView

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

    ``rows`` are the incoming rows' positions in ``source``, the tensors ``(x, y[, task])``
    of the experience being learned (a ``slice`` or an index tensor), so a strategy can look
    up work it did once per row of the experience; ``rows`` is ``None`` where the rows were not
    gathered from in-memory tensors (a ``DataLoader``, several ranks, ``Learner.update``).
    """

    __slots__ = ("_x", "_y", "_task", "_xs", "_ys", "_tasks", "n_rows", "n_new", "n_labelled",
                 "labelled", "new_x", "new_y", "new_task", "out", "rows", "source")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | None = None,
                 rows: torch.Tensor | slice | None = None,
                 source: tuple[torch.Tensor, ...] | None = None):
        self._x, self._y, self._task = x, y, task
        self.rows, self.source = rows, source
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
    """Base class: every hook is a no-op that the learner never calls unless overridden.

    Hyper-parameters are the constructor's arguments, recorded when the strategy is built
    (read them as :attr:`hyperparameters`; they are fixed afterwards). Learned state is
    declared once with :meth:`add_state`; :meth:`state_dict`, :meth:`load_state_dict` and the
    move to the learner's device (:meth:`bind`) derive from the declarations.
    """

    #: name used on the command line and in configs (``retain run --strategy ewc``)
    name: str = "strategy"
    #: True once the strategy keeps its state identical on every rank of a distributed run
    #: (through ``learner.world``, docs/distributed.md); a learner with several ranks refuses
    #: a strategy that does not declare it
    distributed: bool = False

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_arguments(cls.__init__)

    def __init__(self, **hyperparameters: Any):
        # a strategy without its own constructor records what it was given
        self.__dict__.setdefault("_init_args", dict(hyperparameters))

    @property
    def hyperparameters(self) -> Mapping[str, Any]:
        """The constructor's arguments (defaults filled in), read-only."""
        return MappingProxyType(self.__dict__.get("_init_args", {}))

    @hyperparameters.setter
    def hyperparameters(self, value: Mapping[str, Any]) -> None:
        # accepted only when it restates the constructor's arguments (older subclasses do)
        if dict(value) != dict(self.hyperparameters):
            raise AttributeError(
                f"{type(self).__name__}: hyper-parameters come from the constructor's "
                f"arguments {dict(self.hyperparameters)} and are fixed; got {dict(value)}")

    def add_state(self, name: str, default: Any) -> None:
        """Declare learned state ``name`` (set to ``default``): a tensor, a list or dict of
        tensors, a plain value, a numpy random generator, or an object with
        ``state_dict``/``load_state_dict`` (and ``to(device)``, or ``attach(model, device)``
        when it is rebuilt on the learner's model, like
        :class:`~retain.strategies.common.Teacher`) such as a replay buffer. It is saved,
        restored and moved to the learner's device without further code. A state declared
        with ``default=None`` (or an object whose ``state_dict()`` is then ``None``) is saved
        only while it is set."""
        self.__dict__.setdefault("_state_names", []).append(name)
        if _saved(default) is None:
            self.__dict__.setdefault("_optional_states", set()).add(name)
        setattr(self, name, default)

    def bind(self, learner: LearnerView) -> None:
        """Called when the learner is built or loaded: moves declared state to
        ``learner.device`` (override and call ``super().bind`` to do more)."""
        for name in self.__dict__.get("_state_names", ()):
            value = getattr(self, name)
            if hasattr(value, "attach"):
                value.attach(learner.model, learner.device)
            else:
                setattr(self, name, _moved(value, learner.device))

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
        """``{"hyperparameters": {...}, <each declared state>: its value}`` (tensors allowed;
        objects with a ``state_dict`` give theirs)."""
        state: dict[str, Any] = {"hyperparameters": dict(self.hyperparameters)}
        optional = self.__dict__.get("_optional_states", ())
        for name in self.__dict__.get("_state_names", ()):
            value = _saved(getattr(self, name))
            if value is not None or name not in optional:
                state[name] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the declared state, after checking that ``state`` was saved by a strategy
        with the same hyper-parameters (nothing is changed when it was not)."""
        self.check_state(state)
        for name in self.__dict__.get("_state_names", ()):
            setattr(self, name, _restored(getattr(self, name), state.get(name)))

    def check_state(self, state: Mapping[str, Any]) -> None:
        """A :class:`RetainError` unless :meth:`load_state_dict` can load ``state``: saved with
        the same hyper-parameters, every declared state present."""
        self.check_hyperparameters(state.get("hyperparameters", {}))
        names = self.__dict__.get("_state_names", ())
        optional = self.__dict__.get("_optional_states", ())
        missing = [n for n in names if n not in state and n not in optional]
        if missing:
            raise RetainError(f"{type(self).__name__}: the saved state lacks {missing}")

    def check_hyperparameters(self, saved: Mapping[str, Any]) -> None:
        """A :class:`RetainError` listing every hyper-parameter whose saved value differs from
        this strategy's (a value not saved counts as the constructor's default)."""
        defaults = _defaults(type(self))
        mine = dict(self.hyperparameters)
        differences = []
        for key in [*mine, *(k for k in saved if k not in mine)]:
            ours = mine.get(key, defaults.get(key, _MISSING))
            theirs = saved.get(key, defaults.get(key, _MISSING))
            if _comparable(ours) != _comparable(theirs):
                differences.append(f"{key}: saved {_show(theirs)}, here {_show(ours)}")
        if differences:
            raise RetainError(
                f"{type(self).__name__}: the state was saved with other hyper-parameters "
                f"({'; '.join(differences)}); build the strategy with the saved ones")

    def overrides(self, hook: str) -> bool:
        """True when this strategy implements ``hook`` (so the learner must call it)."""
        return getattr(type(self), hook) is not getattr(Strategy, hook)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({args})"


_MISSING = object()


def _recording_arguments(init):
    """Wrap a constructor so that the outermost call records its bound arguments."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        if "_init_args" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            recorded: dict[str, Any] = {}
            for name, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    recorded.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    recorded[name] = value
            self.__dict__["_init_args"] = recorded
        init(self, *args, **kwargs)

    return wrapper


def _defaults(cls: type) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters
    return {n: p.default for n, p in parameters.items() if p.default is not p.empty}


def _comparable(value: Any) -> Any:
    # saved values went through JSON: tuples came back as lists, floats may be ints
    if isinstance(value, tuple | list):
        return [_comparable(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return float(value)


def _show(value: Any) -> str:
    return "(absent)" if value is _MISSING else repr(value)


def _saved(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if hasattr(value, "state_dict") and not isinstance(value, torch.Tensor):
        return value.state_dict()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _restored(current: Any, saved: Any) -> Any:
    if isinstance(current, np.random.Generator):
        current.bit_generator.state = saved
        return current
    if hasattr(current, "load_state_dict") and not isinstance(current, torch.Tensor):
        current.load_state_dict(saved)
        return current
    if isinstance(saved, torch.Tensor):
        return saved.clone()
    if isinstance(saved, list | tuple):
        return [v.clone() if isinstance(v, torch.Tensor) else v for v in saved]
    if isinstance(saved, dict):
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in saved.items()}
    return saved


def _moved(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor) or (hasattr(value, "to") and hasattr(value, "state_dict")):
        moved = value.to(device)
        return value if moved is None else moved  # buffers move in place and return None
    if isinstance(value, list | tuple):
        return type(value)(_moved(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value
