"""The Learner: a model, its optimizer and a list of strategies, updated batch by batch.

This module holds the hooks, the step, ``update``/``learn``, ``predict`` and the state; the
rest lives next door: :mod:`retain.batching` (data to the device, mini-batches),
:mod:`retain.checks` (arguments, data, states to load, ranks), :mod:`retain.run_loop` (the
loop of :meth:`Learner.run`), :mod:`retain.evaluation` (scoring). What reads a learner from
outside sees only :mod:`retain.strategies.contract`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from retain import batching, checks, evaluation, label_space, run_loop
from retain.capture import CapturedStep, check_capturable, compile_mode
from retain.data import Tensors
from retain.distributed import World, current, rank_batches
from retain.errors import RetainError
from retain.evaluation import batched_outputs
from retain.label_space import criterion
from retain.metrics import LearnStats
from retain.scenarios.experience import Experience
from retain.sgd_step import lean_sgd_step
from retain.strategies.base import HOOKS, Batch, Strategy

if TYPE_CHECKING:
    from pathlib import Path

class Learner:
    """Keeps a trained model learning from new data without forgetting what it knew.

    Args:
        model: any ``nn.Module``.
        optimizer: a ``torch.optim`` optimizer over the model's parameters.
        loss: the training criterion (default ``nn.CrossEntropyLoss()``); a loss other than
            cross-entropy/NLL makes the learner a regressor (scores are MSE, not accuracy).
        strategies: strategies against forgetting, applied in order (they compose).
        scheduler: an optional ``torch.optim.lr_scheduler`` scheduler.
        scheduler_interval: step the scheduler every ``"step"``, ``"epoch"`` or ``"experience"``.
        device: where the model and data live (default: where the model already is).
        seed: seed of the learner's own generator (shuffling, sampled Fisher).
        eval_batch_size: batch size for evaluation and prediction.
        world: the processes training together (default: the initialised
            ``torch.distributed`` group, if any, else this process alone); with several
            ranks the model trains in ``DistributedDataParallel`` (docs/distributed.md).
        compile: ``True`` or a ``torch.compile`` mode (``"reduce-overhead"``: CUDA graphs)
            compiles the update step: forward, loss and strategies' terms, backward and
            optimizer step (:mod:`retain.capture`; refused, with the reason, for a strategy
            that cannot be captured). Default eager.

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(4, 3)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1))
    >>> loss = learner.update(torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> learner.predict(torch.randn(2, 4)).shape
    torch.Size([2])
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 loss: nn.Module | None = None, strategies: Sequence[Strategy] = (),
                 scheduler: Any | None = None, scheduler_interval: str = "epoch",
                 device: torch.device | str | None = None, seed: int = 0,
                 eval_batch_size: int = 1024, task_type: str | None = None,
                 world: World | None = None, compile: bool | str | None = None):
        checks.check_arguments(model, optimizer, scheduler_interval)
        first = next(model.parameters(), None)
        self.device = torch.device(device) if device is not None else (
            first.device if first is not None else torch.device("cpu"))
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss()
        self.task_type = task_type or (
            "classification" if isinstance(self.loss_fn, nn.CrossEntropyLoss | nn.NLLLoss)
            else "regression")
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.eval_batch_size = eval_batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.experiences_seen = 0
        self.samples_seen = 0
        self.n_outputs: int | None = None
        self._probed = None  # the last probe of the model (label_space.note_outputs)
        self._sgd_step = None  # within an experience: plain SGD's update, lean (sgd_step.py)
        self.seen_classes: torch.Tensor | None = None
        self.task_classes: list[tuple[int, ...]] | None = None
        self._task_mask: torch.Tensor | None = None
        self.world = world if world is not None else current()
        self._distributed = self.world.size > 1
        # (K, callback(steps)) while inside every_steps(): learn() calls back every K steps
        self._periodic: tuple[int, Callable[[int], None]] | None = None
        self._compile = compile_mode(compile)
        self.strategies = strategies  # builds the hook table and binds them
        self._captured = None if self._compile is None else CapturedStep(self._loss,
                                                                         self._compile)
        if self._distributed:  # refuse disagreeing ranks before DDP's first collective
            self.world.agree(checks.agreed_settings(self))
        self._forward = self.world.wrap(self.model)  # the model itself in one process

    @property
    def strategies(self) -> list[Strategy]:
        """The strategies, in order. Assign a new list to change them: the hook table is
        rebuilt and the new strategies are bound."""
        return self._strategies

    @strategies.setter
    def strategies(self, strategies: Sequence[Strategy]) -> None:
        checks.check_strategies(strategies, self.world.size > 1)
        self._strategies = list(strategies)
        self._build_hooks()
        if self._compile is not None:
            check_capturable(self._strategies, self.world.size)
        for s in self._strategies:
            s.bind(self)

    def _build_hooks(self) -> None:
        """The hot path calls only the hooks some strategy overrides; which ones may depend on
        a strategy's settings, so this runs whenever the strategies or their state change."""
        self._hooks = {h: [getattr(s, h) for s in self._strategies if s.overrides(h)]
                       for h in HOOKS}
        checks.check_single_owners(self._strategies)
        self._criterion = next(iter(self._hooks["criterion"]), None)
        self._classifier = next(iter(self._hooks["classify"]), None)

    # -- the update step -------------------------------------------------------------------
    def _step(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | None,
              rows: torch.Tensor | slice | None = None,
              source: Tensors | None = None) -> torch.Tensor:
        # the last step's gradients are freed before the forward, as a plain loop frees them:
        # its activations reuse those blocks while they are warm (docs/performance.md)
        self.optimizer.zero_grad(set_to_none=True)
        hooks = self._hooks
        if (self._captured is None and not self._distributed and self._task_mask is None
                and not (hooks["extend_batch"] or hooks["criterion"] or hooks["loss_terms"]
                         or hooks["after_backward"] or hooks["after_step"])):
            # no strategy takes part in the step (naive): the plain loop's lines, no Batch
            out = self._forward(x)
            if self.task_type == "regression":
                y = self._target(y, out)
            loss = criterion(self.loss_fn, out, y)
            loss.backward()
            (self._sgd_step or self.optimizer.step)()
        else:
            batch = Batch(x, y, task, rows, source)
            for hook in hooks["extend_batch"]:
                hook(self, batch)
            loss = self._loss(batch) if self._captured is None else self._captured.loss(batch)
            if self._distributed:
                scale = self.world.loss_scale()  # uneven rows: weigh this rank by its share
                if scale is not None:
                    loss = loss * scale
            loss.backward()
            for hook in hooks["after_backward"]:
                hook(self, batch)
            if self._captured is None:
                (self._sgd_step or self.optimizer.step)()
            else:
                self._captured.optimizer_step(self.optimizer, self.scheduler is not None)
            for hook in hooks["after_step"]:
                hook(self, batch)
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        return loss  # callers detach the one they report: no op per step

    def _loss(self, batch: Batch) -> torch.Tensor:
        """The step's loss: one forward pass of all rows, the criterion on the labelled rows,
        the strategies' terms (the part ``compile`` captures as one graph)."""
        out = self._forward(batch.x)  # the model itself in one process, DDP in several
        batch.out = out
        # the criterion sees the labelled rows only: a view while they come first
        rows = out
        task = None if self._task_mask is None else batch.task
        if batch.labelled is not None:
            rows = out.index_select(0, batch.labelled)
            if task is not None:
                task = task.index_select(0, batch.labelled)
        elif batch.n_labelled != batch.n_rows:
            rows = out[: batch.n_labelled]
            if task is not None:
                task = task[: batch.n_labelled]
        if task is not None:
            rows = self._mask(rows, task)
        y = batch.y
        if self.task_type == "regression":
            y = self._target(y, rows)
        if self._criterion is None:
            loss = criterion(self.loss_fn, rows, y)
        else:
            loss = self._criterion(self, batch, rows, y)
        for hook in self._hooks["loss_terms"]:
            loss = hook(self, batch, loss)
        return loss

    # -- outputs read against the labels it knows (retain.label_space) ---------------------
    mask, target, loss_on = label_space.mask, label_space.target, label_space.loss_on
    _mask, _target = mask, target  # the step's names for them (one function each)
    output_map = property(label_space.output_map)

    @property
    def classifier(self):
        """The strategy hook that classifies instead of the model's argmax, or ``None``."""
        return self._classifier

    # methods kept by their job next door: ``learner.batches(data)`` calls
    # ``batching.dataset_batches(learner, data)``
    experience_tensors = batching.dataset_tensors
    batches = batching.dataset_batches

    def update(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | int | None = None,
               validate: bool = True) -> float:
        """One incremental step on one batch; returns the training loss of the step."""
        self._sgd_step = None  # outside an experience: optimizer.step(), as its settings are now
        self.model.train()
        x, y = x.to(self.device), y.to(self.device)
        t = self._task_tensor(task, x.shape[0])
        if validate:
            self._validate(x, y, t)
        self._note_classes(y)
        n = x.shape[0]
        if self._distributed:  # the global batch, the same on every rank: train on a share
            self._check_size(n)  # ranks agreed on settings when the learner was built
            x, y, *rest = next(rank_batches((x, y) if t is None else (x, y, t), n,
                                            self.generator, False, self.world))
            t = rest[0] if rest else None
        loss = self._step(x, y, t)
        self.samples_seen += n
        return self._reported(loss)

    # -- experiences -----------------------------------------------------------------------
    def learn(self, data: Dataset | Experience, epochs: int = 1, batch_size: int = 32,
              task: int | None = None, shuffle: bool = True) -> LearnStats:
        """Train on one experience, then let every strategy consolidate (Fisher, teacher,...)."""
        experience = data if isinstance(data, Experience) else Experience(data, task_label=task)
        if epochs < 1 or batch_size < 1:
            raise RetainError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        start = time.perf_counter()
        if self._distributed:  # every rank reaches this collective, whatever its data
            self._check_world(len(experience.train), {
                "experience": len(experience.train), "epochs": epochs,
                "batch_size": batch_size, "shuffle": shuffle})
        tensors = self.begin_experience(experience)
        loss, steps, n = torch.zeros(()), 0, len(experience.train)
        periodic = self._periodic
        try:
            for _ in range(epochs):
                for x, y, *t, rows in self._batches(experience.train, tensors, batch_size,
                                                    shuffle):
                    loss = self._step(x, y, t[0] if t else None, rows, tensors)
                    steps += 1
                    if periodic is not None and steps % periodic[0] == 0:
                        periodic[1](steps)
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
        finally:  # chosen for this experience only, even if a step or a callback raised
            self._sgd_step = None
        if self.scheduler is not None and self.scheduler_interval == "experience":
            self.scheduler.step()
        for hook in self._hooks["after_experience"]:  # inline: a warning a hook raises
            hook(self, experience)                    # points at the caller of learn()
        self.experiences_seen += 1
        self.samples_seen += n * epochs
        return LearnStats(n * epochs, steps, time.perf_counter() - start, self._reported(loss))

    def _reported(self, loss: torch.Tensor) -> float:
        """The step's loss as one process on the global batch reports it (the ranks' losses
        are weighted to the global mean already: their plain average)."""
        if self._distributed:
            loss = self.world.mean([loss.detach()], 1)[0]
        return float(loss.detach())

    @contextmanager
    def every_steps(self, steps: int, callback: Callable[[int], None]) -> Iterator[None]:
        """Within this context :meth:`learn` calls ``callback(step)`` every ``steps`` steps
        (``step`` counted from the start of its experience); :meth:`run` scores the test sets
        so for its stability-gap curve. Nothing is called, and nothing costs, elsewhere."""
        if not isinstance(steps, int) or steps < 1:
            raise RetainError(f"every_steps needs a positive number of steps, got {steps!r}")
        self._periodic = (steps, callback)
        try:
            yield
        finally:
            self._periodic = None

    run = run_loop.run  # train on each experience in turn, test on all after each one

    # -- for a training loop of your own (retain.lightning uses these) ----------------------
    def begin_experience(self, experience: Experience) -> Tensors:
        """What :meth:`learn` does before its first step: check the data, note its classes,
        let the strategies prepare. Returns the experience's tensors on the device."""
        tensors = batching.experience_tensors(experience, self.device)
        self._validate(*tensors)
        self._note_classes(tensors[1])
        for hook in self._hooks["before_experience"]:
            hook(self, experience)
        self.model.train()
        self._sgd_step = None if self._distributed else lean_sgd_step(self.optimizer)
        return tensors

    def step(self, x: torch.Tensor, y: torch.Tensor,
             task: torch.Tensor | None = None) -> torch.Tensor:
        """One update step of a batch of an experience opened with :meth:`begin_experience`
        (checked there, not here): the loss tensor, with no host sync."""
        loss = self._step(x, y, task)
        self.samples_seen += x.shape[0]
        return loss

    def end_experience(self, experience: Experience) -> None:
        """What :meth:`learn` does after its last step: the strategies consolidate (the
        same lines as in :meth:`learn`, kept there so that warnings point at its caller)."""
        self._sgd_step = None
        for hook in self._hooks["after_experience"]:
            hook(self, experience)
        self.experiences_seen += 1

    def _batches(self, dataset: Dataset, tensors: Tensors, batch_size: int,
                 shuffle: bool) -> Iterable[tuple]:
        return batching.training_batches(dataset, tensors, batch_size, shuffle, self.generator,
                                         self.device, self.world if self._distributed else None)

    def _task_tensor(self, task, n: int) -> torch.Tensor | None:
        return batching.task_tensor(task, n, self.device)

    # -- checks -----------------------------------------------------------------------------
    def _check_size(self, n: int) -> None:
        checks.check_world_size(n, self.world.size)

    _check_world = checks.agree_on_experience  # once per experience, on every rank

    _validate = label_space.check_data  # once per experience (not per step)

    # -- the labels it knows (retain.label_space) ------------------------------------------
    _probe, _note_classes = label_space.note_outputs, label_space.note_classes
    set_task_classes = label_space.set_task_classes
    grow_classes = label_space.grow_classes

    # -- inference -------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """Predicted classes (classification) or outputs (regression) for a batch of inputs."""
        if self._classifier is not None and self.task_type == "classification":
            x = x.to(self.device)
            checks.check_finite(x)
            classes = self._classifier(self, x)
            if classes is not None:
                return classes
        out = self.outputs(x, task)
        return out.argmax(dim=1) if self.task_type == "classification" else out

    def outputs(self, x: torch.Tensor, task: torch.Tensor | int | None = None) -> torch.Tensor:
        """Raw model outputs (logits), task-masked when the learner knows task classes."""
        x = x.to(self.device)
        checks.check_finite(x)
        self._probe(x[:1])
        return batched_outputs(self.model, x, self._task_tensor(task, x.shape[0]), self.mask,
                               self.eval_batch_size)

    evaluate = evaluation.evaluate  # accuracy (classification) or MSE (regression)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training exactly (model, optimizer, scheduler,
        strategies with their buffers/Fisher/teachers, counters and the shuffling RNG)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "strategies": [{"name": s.name, "state": s.state_dict()} for s in self.strategies],
            "learner": {"experiences_seen": self.experiences_seen,
                        "samples_seen": self.samples_seen, "n_outputs": self.n_outputs,
                        "seen_classes": self.seen_classes, "task_classes": self.task_classes,
                        "generator": self.generator.get_state(), "task_type": self.task_type},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`. The whole state is checked first (strategies and their
        hyper-parameters, model names and shapes, optimizer groups): a state that does not
        fit raises a :class:`~retain.errors.RetainError` and changes nothing."""
        checks.check_state(state, self.model, self.optimizer, self.strategies)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for strategy, saved in zip(self.strategies, state["strategies"], strict=True):
            strategy.load_state_dict(saved["state"])
        info = state["learner"]
        self.experiences_seen = int(info["experiences_seen"])
        self.samples_seen = int(info["samples_seen"])
        self.n_outputs = info.get("n_outputs")
        seen = info.get("seen_classes")
        self.seen_classes = None if seen is None else seen.to(self.device)
        self.generator.set_state(info["generator"])
        self._task_mask, self.task_classes = None, None
        if info.get("task_classes"):
            self.set_task_classes(info["task_classes"])
        self._build_hooks()
        for s in self.strategies:
            s.bind(self)

    def save(self, path, normalization: dict | None = None, overwrite: bool = False) -> Path:
        """Save everything needed to resume exactly (safetensors + JSON, never pickle)."""
        from retain.checkpoint.format import save_from_main_rank

        return save_from_main_rank(self, path, normalization, overwrite)

    @classmethod
    def load(cls, path, model: nn.Module | None = None, loss: nn.Module | None = None,
             device: torch.device | str | None = None) -> Learner:
        """A saved learner, ready to continue; pass ``model`` for a model that is not built in."""
        from retain.checkpoint.format import read_sections, restore

        return restore(read_sections(path)[1], Learner, model=model, loss=loss, device=device)

    def __repr__(self) -> str:
        return (f"Learner({type(self.model).__name__}, {type(self.optimizer).__name__}, "
                f"strategies={self.strategies!r})")

