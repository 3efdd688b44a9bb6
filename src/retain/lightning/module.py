"""A LightningModule around a retain Learner: Lightning runs the loop, retain the update.

Each ``trainer.fit(module, datamodule)`` is one experience: when training starts the learner
opens it (checks the data, notes its classes, lets the strategies prepare), every batch is one
:meth:`retain.Learner.step` (the strategies' extra rows, loss terms and gradient edits, the
optimizer step through Lightning's optimizer, so ``global_step`` counts), and when training
ends the strategies consolidate (Fisher, teacher, memory). ``on_save_checkpoint`` adds the
strategies' state and the learner's counters and generator to the checkpoint; loading it
(``trainer.fit(..., ckpt_path=...)`` or :meth:`RetainModule.restore`) brings them back.

Use a new ``Trainer`` per experience (a trainer that has finished its ``max_epochs`` does not
train again). The learner steps the optimizer itself: 32-bit precision on one device, no
gradient accumulation or clipping by the trainer (strategies such as A-GEM edit gradients
themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from retain.errors import RetainError
from retain.learner import Learner
from retain.scenarios.experience import Experience
from retain.strategies import Strategy, make_strategy


class RetainModule(pl.LightningModule):
    """``model`` trained by a retain :class:`~retain.Learner` with ``strategies``.

    Args:
        model: the network (its weights are the module's ``model.*`` parameters).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters.
        strategies: retain strategies or catalog specs (``"ewc"``, ``"replay"``).
        loss: the criterion (default cross-entropy; another makes it a regressor).
        seed: the learner's generator (replay sampling, sampled Fisher).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 strategies: Sequence[Strategy | str] = (), loss: nn.Module | None = None,
                 seed: int = 0):
        super().__init__()
        self.automatic_optimization = False  # the learner steps (strategies need it)
        self.model = model
        built = [s if isinstance(s, Strategy) else make_strategy(s) for s in strategies]
        self.learner = Learner(model, optimizer, loss=loss, strategies=built, seed=seed)
        self._experience: Experience | None = None
        self._raw_optimizer = optimizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self._raw_optimizer

    # -- one experience per fit -------------------------------------------------------------
    def on_train_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is None:
            raise RetainError("RetainModule needs one training DataLoader per fit (one "
                              "experience); got " + type(loader).__name__)
        task = getattr(self.trainer.datamodule, "task_label", None)
        self._experience = Experience(dataset, task_label=task,
                                      index=self.learner.experiences_seen)
        self.learner.optimizer = self.optimizers()  # Lightning's wrapper: global_step counts
        self.learner.begin_experience(self._experience)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y, *rest = batch
        task = rest[0] if rest else self._task(x.shape[0])
        loss = self.learner.step(x, y, task)
        self.log("train_loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_end(self) -> None:
        self.learner.optimizer = self._raw_optimizer
        if self._experience is not None:
            self.learner.end_experience(self._experience)
            self._experience = None

    def _task(self, n: int) -> torch.Tensor | None:
        label = None if self._experience is None else self._experience.task_label
        return None if label is None else torch.full((n,), label, dtype=torch.long,
                                                     device=self.learner.device)

    # -- evaluation ---------------------------------------------------------------------------
    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("val_" + self._score_name(), self._score(batch), prog_bar=True)

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("test_" + self._score_name(), self._score(batch))

    def _score_name(self) -> str:
        return "accuracy" if self.learner.task_type == "classification" else "mse"

    def _score(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        x, y, *rest = batch
        out = self.learner.predict(x, rest[0] if rest else None)
        if self.learner.task_type == "classification":
            return (out == y).double().mean()
        return (out - y.view(out.shape)).pow(2).mean()

    # -- checkpoints --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = self.learner.state_dict()
        checkpoint["retain"] = {"strategies": state["strategies"], "learner": state["learner"]}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("retain")
        if saved is None:
            raise RetainError("this checkpoint has no retain state: it was not saved from a "
                              "RetainModule")
        weights = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()
                   if k.startswith("model.")}
        optimizers = checkpoint.get("optimizer_states") or [self._raw_optimizer.state_dict()]
        self.learner.load_state_dict({"model": weights, "optimizer": optimizers[0],
                                      "scheduler": None, **saved})

    def restore(self, path: str | Path) -> None:
        """Load a checkpoint saved by ``trainer.save_checkpoint`` (weights, optimizer and
        strategies) into this module, to go on with a new trainer. Lightning checkpoints
        are pickles: load only your own."""
        checkpoint = torch.load(path, map_location=self.learner.device, weights_only=False)
        self.on_load_checkpoint(checkpoint)
        self.load_state_dict(checkpoint["state_dict"])
