"""Continual fine-tuning of a causal language model, and its forgetting as the loss
(perplexity) on earlier tasks: the accuracy matrix's analogue for language models.

A retain learner trains a model whose outputs its criterion scores; :class:`CausalLM` makes a
HuggingFace causal LM such a model: token ids ``[N, T]`` in, each next token's negative
log-likelihood ``[N, T - 1]`` out, and :class:`TokenLoss` averages them. Each sequence stays
one row, so Replay, DER++ and the penalty strategies work unchanged (on the LoRA parameters
when the model is wrapped by :func:`~retain.pretrained.lora.add_lora`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.learner import Learner


class CausalLM(nn.Module):
    """``input_ids [N, T] -> per-token negative log-likelihood [N, T - 1]``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids).logits[:, :-1]
        return F.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:], reduction="none")


class TokenLoss(nn.Module):
    """The mean of the per-token losses :class:`CausalLM` outputs (the targets are zeros)."""

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return out.mean()


def byte_sequences(texts: Sequence[str], length: int) -> TensorDataset:
    """Texts as byte tokens (ids 0-255, no tokenizer needed) cut into ``length``-token rows,
    with the zero targets :class:`TokenLoss` ignores."""
    data = b"\n".join(t.encode() for t in texts)
    n = len(data) // length
    if n == 0:
        raise RetainError(f"the texts hold {len(data)} bytes, fewer than one row of {length}")
    ids = torch.tensor(list(data[: n * length]), dtype=torch.long).view(n, length)
    return TensorDataset(ids, torch.zeros(n, length - 1))


def lm_learner(model: nn.Module, optimizer: torch.optim.Optimizer, strategies=(),
               seed: int = 0) -> Learner:
    """A learner over a HuggingFace causal LM (wrapped in :class:`CausalLM`)."""
    return Learner(CausalLM(model), optimizer, loss=TokenLoss(), strategies=strategies,
                   task_type="regression", seed=seed)


@dataclass
class LMRun:
    """``loss[i][j]``: mean token loss on task ``j``'s test rows after learning task ``i``
    (row ``-1`` of ``before``: before any); perplexity is ``exp(loss)``."""

    loss: list[list[float]]
    before: list[float]

    @property
    def perplexity(self) -> list[list[float]]:
        return [[math.exp(v) for v in row] for row in self.loss]

    @property
    def forgetting(self) -> float:
        """Mean over earlier tasks of how much their loss rose from just after they were
        learned to the end (positive: forgotten)."""
        last = len(self.loss) - 1
        rises = [self.loss[last][j] - self.loss[j][j] for j in range(last)]
        return sum(rises) / len(rises) if rises else 0.0


def token_loss(learner: Learner, data: TensorDataset) -> float:
    """Mean per-token loss of the learner's model on ``data``."""
    return float(learner.outputs(data.tensors[0]).mean())


def run_lm(learner: Learner, tasks: Sequence[tuple[TensorDataset, TensorDataset]],
           epochs: int = 1, batch_size: int = 8, loggers: Sequence = ()) -> LMRun:
    """Learn each ``(train, test)`` task in turn; score every task's test rows after each.
    ``loggers`` (:mod:`retain.loggers`) get each row as scalars ``loss/<task>`` and
    ``perplexity/<task>``, and the loss matrix as a table at the end; the caller closes them."""
    before = [token_loss(learner, test) for _, test in tasks]
    matrix = []
    for i, (train, _) in enumerate(tasks):
        learner.learn(train, epochs=epochs, batch_size=batch_size)
        matrix.append([token_loss(learner, test) for _, test in tasks])
        for log in loggers:
            log.log_scalars({**{f"loss/{j}": v for j, v in enumerate(matrix[-1])},
                             **{f"perplexity/{j}": math.exp(v)
                                for j, v in enumerate(matrix[-1])}}, step=i)
            log.flush()
    for log in loggers:
        log.log_table("loss", ["after task", *map(str, range(len(tasks)))],
                      [[i, *row] for i, row in enumerate(matrix)])
        log.flush()
    return LMRun(matrix, before)
