"""Experience Replay with Asymmetric Cross-Entropy, ER-ACE (Caccia et al., ICLR 2022)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from retain.errors import RetainError
from retain.strategies.base import Batch
from retain.strategies.replay import Replay

if TYPE_CHECKING:
    from retain.strategies.contract import LearnerView


def mask_absent_classes(logits: torch.Tensor, labels: torch.Tensor,
                        present: torch.Tensor | None = None) -> torch.Tensor:
    """``logits`` with every class that does not occur in ``labels`` (or is not marked in
    the boolean mask ``present``) set to ``-inf``.

    The cross-entropy of the result is the cross-entropy over the present classes only, so
    incoming samples stop pushing down the logits of classes they do not contain — the old
    classes (their gradient is exactly zero).
    """
    if present is None:
        present = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
        present[labels] = True
    return logits.masked_fill(~present, float("-inf"))


class ERACE(Replay):
    """Replay whose incoming and replayed rows get different cross-entropies.

    Incoming rows: cross-entropy over only the classes present in the incoming batch (this
    strategy replaces the learner's criterion). Memory rows (``batch_size`` drawn from a
    reservoir memory, appended unlabelled): the full cross-entropy, added as a separate mean.
    Both share one forward pass. This keeps new classes from overwriting old ones at the task
    boundary (the representation drift ER suffers from). Labelled rows another strategy
    appends (e.g. :class:`~retain.strategies.Replay`'s) keep the full cross-entropy inside the
    criterion's mean.

    Needs a classification learner with ``nn.CrossEntropyLoss`` or ``nn.NLLLoss`` (without
    label smoothing: absent classes have logit ``-inf``).

    Args:
        capacity, batch_size, policy, seed: as in :class:`~retain.strategies.Replay`.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = ERACE(capacity=20)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> len(s.buffer)
    20
    """

    name = "er-ace"
    capturable = True  # its terms are tensor math: Learner(compile=...) captures them
    # replicated memory as Replay's; the classes present are those of the global batch
    distributed = True

    def __init__(self, capacity: int = 500, batch_size: int | None = None,
                 policy: str = "reservoir", seed: int = 0):
        super().__init__(capacity=capacity, batch_size=batch_size, policy=policy, seed=seed)
        self._log_probs = False
        self._memory_rows: slice | None = None
        self._memory_labels: torch.Tensor | None = None
        self._present: torch.Tensor | None = None

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        loss = learner.loss_fn
        if learner.task_type != "classification" or not isinstance(
                loss, nn.CrossEntropyLoss | nn.NLLLoss):
            raise RetainError("ER-ACE needs a classification learner with nn.CrossEntropyLoss "
                              f"or nn.NLLLoss, got {type(loss).__name__}")
        if getattr(loss, "label_smoothing", 0.0) > 0:
            raise RetainError("ER-ACE's masked cross-entropy does not support label smoothing")
        self._log_probs = isinstance(loss, nn.NLLLoss)  # outputs are log-probabilities

    def extend_batch(self, learner: LearnerView, batch: Batch) -> None:
        self._memory_rows = None
        if learner.world.size > 1:  # every rank, also one without rows: a collective
            present = torch.zeros(learner.seen_classes.shape[0], dtype=torch.bool,
                                  device=batch.new_y.device)
            present[batch.new_y] = True
            self._present = learner.world.any(present)
        if self.buffer.size == 0:
            return
        k = self.batch_size or batch.n_new
        mem = self.buffer.sample(k, self._fields, share=None if learner.world.size == 1
                                 else self.share(learner, k))
        self._memory_labels = mem["y"]
        start = batch.append(mem["x"], task=mem.get("task"), labelled=False)
        self._memory_rows = slice(start, start + mem["x"].shape[0])

    def criterion(self, learner: LearnerView, batch: Batch, out: torch.Tensor,
                  y: torch.Tensor) -> torch.Tensor:
        n = batch.n_new
        present = self._present
        if out.shape[0] == n:
            out = mask_absent_classes(out, batch.new_y, present)
        else:  # labelled rows of another strategy follow the incoming rows: left unmasked
            out = torch.cat((mask_absent_classes(out[:n], batch.new_y, present), out[n:]))
        if self._log_probs:
            out = F.log_softmax(out, dim=1)
        return learner.loss_fn(out, y)

    def loss_terms(self, learner: LearnerView, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        if self._memory_rows is None:
            return loss
        out = batch.out[self._memory_rows]
        if learner.output_map is not None:
            out = learner.output_map(out, batch.task[self._memory_rows])
        return loss + learner.loss_fn(out, self._memory_labels)
