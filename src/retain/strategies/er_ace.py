"""Experience Replay with Asymmetric Cross-Entropy, ER-ACE (Caccia et al., ICLR 2022)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from retain.strategies.base import Batch
from retain.strategies.der import append_unlabelled, ignore_index
from retain.strategies.replay import Replay

if TYPE_CHECKING:
    from retain.learner import Learner


def absent_class_correction(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``mean(logsumexp over classes present in labels − logsumexp over all classes)``.

    Added to the cross-entropy of these rows it gives the cross-entropy of the logits masked
    to the present classes (``CE = lse − z_y``), so incoming samples stop pushing down the
    logits of classes they do not contain — the old classes.
    """
    present = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    present[labels] = True
    masked = logits.masked_fill(~present, float("-inf"))
    return (torch.logsumexp(masked, 1) - torch.logsumexp(logits, 1)).mean()


class ERACE(Replay):
    """Replay whose incoming and replayed rows get different cross-entropies.

    Incoming rows: cross-entropy over only the classes present in the incoming batch.
    Memory rows (``batch_size`` drawn from a reservoir memory): the full cross-entropy, added
    as a separate mean. Both share one forward pass. This keeps new classes from overwriting
    old ones at the task boundary (the representation drift ER suffers from).

    Args:
        capacity, batch_size, policy, seed: as in :class:`~retain.strategies.Replay`.
    """

    name = "er-ace"

    def __init__(self, capacity: int = 500, batch_size: int | None = None,
                 policy: str = "reservoir", seed: int = 0):
        super().__init__(capacity=capacity, batch_size=batch_size, policy=policy, seed=seed)
        self._ignored = -100
        self._memory_rows: slice | None = None
        self._memory_labels: torch.Tensor | None = None

    def bind(self, learner: Learner) -> None:
        super().bind(learner)
        self._ignored = ignore_index(learner, "ER-ACE")

    def extend_batch(self, learner: Learner, batch: Batch) -> None:
        self._memory_rows = None
        if self.buffer.size == 0:
            return
        mem = self.buffer.sample(self.batch_size or batch.n_new, self._fields)
        self._memory_labels = mem["y"]
        self._memory_rows = append_unlabelled(batch, mem, self._ignored)

    def loss_terms(self, learner: Learner, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        out = batch.out
        if learner.output_map is not None:
            out = learner.output_map(out, batch.task)
        loss = loss + absent_class_correction(out[: batch.n_new], batch.new_y)
        if self._memory_rows is None:
            return loss
        return loss + learner.loss_fn(out[self._memory_rows], self._memory_labels)
