"""Dark Experience Replay, DER and DER++ (Buzzega et al., NeurIPS 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from retain.strategies.base import Batch
from retain.strategies.replay import Replay

if TYPE_CHECKING:
    from retain.strategies.contract import LearnerView


class DER(Replay):
    """Replay the logits the model produced when a sample was stored, not just its label.

    A reservoir memory keeps ``(x, y, logits)``; each step adds
    ``alpha · MSE(f(x'), stored logits)`` on ``batch_size`` memory rows. The memory rows go
    through the same forward pass as the incoming rows, appended unlabelled: only this term
    trains on them, the learner's criterion does not. Logits (any model output: DER works for
    regression too) are stored as they were computed in the step that inserted the sample
    (the dark knowledge of the model at that time).

    Args:
        capacity: number of samples the memory holds.
        alpha: weight of the logit-matching term.
        batch_size: memory rows per step (default: the incoming batch size).
        policy, seed: as in :class:`~retain.strategies.Replay`.
        update: ``step`` (default, the paper): rows and their logits enter the memory at the
            step that sees them. ``experience``: once an experience is learned, its rows are
            offered with the logits of the model as it ends the experience (evaluation mode),
            as Avalanche's ``DER`` does; only past experiences are then replayed.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = DER(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.buffer)
    20
    """

    name = "der"
    capturable = True  # its terms are tensor math: Learner(compile=...) captures them

    def __init__(self, capacity: int = 500, alpha: float = 0.3, batch_size: int | None = None,
                 policy: str = "reservoir", seed: int = 0, update: str = "step"):
        super().__init__(capacity=capacity, batch_size=batch_size, policy=policy, seed=seed,
                         update=update)
        self.alpha = float(alpha)
        self._logit_rows: slice | None = None
        self._logit_targets: torch.Tensor | None = None
        self._memory_labels: torch.Tensor | None = None

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        self._logit_rows = None
        if self.buffer.size == 0:
            return
        k = self.batch_size or batch.n_new
        mem = self.buffer.sample(k, share=None if learner.world.size == 1
                                 else self.share(learner, k))
        self._logit_targets = mem["logits"]
        self._memory_labels = mem["y"]
        start = batch.append(mem["x"], task=mem.get("task"), labelled=False)
        self._logit_rows = slice(start, start + mem["x"].shape[0])

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        if self._logit_rows is None:
            return loss
        return loss + self.alpha * F.mse_loss(batch.out[self._logit_rows], self._logit_targets)

    def after_step(self, learner: LearnerView, batch: Batch) -> None:
        rows = {"x": batch.new_x, "y": batch.new_y, "logits": batch.out[: batch.n_new]}
        if batch.new_task is not None:
            rows["task"] = batch.new_task
        if learner.world.size == 1:
            self.buffer.add(**rows)
        else:  # every rank's rows and logits, in rank order: only those kept travel
            self.buffer.add_from_ranks(rows, learner.world)

    def experience_rows(self, learner: LearnerView, rows: dict[str, torch.Tensor]
                        ) -> dict[str, torch.Tensor]:
        """With ``update="experience"``: the rows and the logits of the model as it ends the
        experience (evaluation mode)."""
        model = learner.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():  # not inference_mode: the logits become loss targets
                return {**rows, "logits": model(rows["x"])}
        finally:
            model.train(was_training)


class DERPlusPlus(DER):
    """DER++: DER plus ``beta ·`` the learner's criterion (cross-entropy for a classifier) on
    a second, independent memory sample, as a separate mean.

    Args:
        capacity, alpha, batch_size, policy, seed, update: as in :class:`DER`.
        beta: weight of the criterion term on replayed labels.
        independent: draw the labels' memory rows independently of the logits' (default,
            the paper's Algorithm 2). ``False`` uses the same rows for both terms, as
            Avalanche's ``DER`` does: ``batch_size`` fewer rows in every forward pass.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = DERPlusPlus(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.buffer)
    20
    """

    name = "derpp"  # not "der++": "+" composes strategies on the command line

    def __init__(self, capacity: int = 500, alpha: float = 0.1, beta: float = 0.5,
                 batch_size: int | None = None, policy: str = "reservoir", seed: int = 0,
                 update: str = "step", independent: bool = True):
        super().__init__(capacity=capacity, alpha=alpha, batch_size=batch_size, policy=policy,
                         seed=seed, update=update)
        self.independent = bool(independent)
        self.beta = float(beta)
        self._label_rows: slice | None = None
        self._labels: torch.Tensor | None = None

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        super().extend_batch(learner, batch)
        if self._logit_rows is None:
            return
        if not self.independent:  # both terms on the logits' rows
            self._labels, self._label_rows = self._memory_labels, self._logit_rows
            return
        k = self.batch_size or batch.n_new
        mem = self.buffer.sample(k, share=None if learner.world.size == 1
                                 else self.share(learner, k))
        self._labels = mem["y"]
        start = batch.append(mem["x"], task=mem.get("task"), labelled=False)
        self._label_rows = slice(start, start + mem["x"].shape[0])

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        loss = super().loss_terms(learner, batch, loss)
        if self._logit_rows is None:
            return loss
        task = None if learner.output_map is None else batch.task[self._label_rows]
        return loss + self.beta * learner.loss_on(batch.out[self._label_rows], self._labels, task)
