"""Memory Aware Synapses (Aljundi et al., ECCV 2018)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from retain.errors import RetainError
from retain.strategies.base import Batch, Strategy
from retain.strategies.common import QuadraticPenalty, trainable_parameters

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


def output_sensitivity(model: nn.Module, inputs: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """MAS importance: ``Ω = mean_x |∂‖f(x)‖²/∂θ|`` over the given input batches.

    Per-sample gradients with ``torch.func`` (``vmap`` over ``grad``): the absolute value is
    taken per sample, so it cannot be computed from a mini-batch gradient. Needs no labels.
    """
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def squared_norm(p: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, ({**p, **frozen}, buffers), (x.unsqueeze(0),)).pow(2).sum()

    per_sample = vmap(grad(squared_norm), in_dims=(None, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    was_training = model.training
    model.eval()
    try:
        for x in inputs:
            for n, g in per_sample(params, x).items():
                total[n] += g.abs().sum(0)
            count += x.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise RetainError("cannot estimate MAS importance from an empty experience")
    return [total[n] / count for n in names]


class MAS(Strategy):
    """Penalise moving weights the model's output is sensitive to.

    After each experience, importance is the mean absolute gradient of the squared L2 norm of
    the output, ``Ω = mean_x |∂‖f(x)‖²/∂θ|`` (unsupervised: no labels used), accumulated over
    experiences; training then adds ``λ · Σ_i Ω_i (θ_i − θ*_i)²`` with ``θ*`` the weights after
    the latest experience.

    Args:
        lambda_: strength of the penalty (the paper's λ).
        samples: estimate the importance on at most this many samples of the experience.
        batch_size: samples per vectorised per-sample-gradient batch.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = MAS(lambda_=1.0)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> s.penalty.empty
    False
    """

    name = "mas"
    distributed = True  # importance estimated on each rank's part of the samples, averaged

    def __init__(self, lambda_: float = 1.0, samples: int | None = None, batch_size: int = 256):
        if lambda_ < 0:
            raise RetainError(f"lambda_ must be >= 0, got {lambda_}")
        super().__init__()
        self.lambda_ = float(lambda_)
        self.samples = samples
        self.batch_size = batch_size
        self.add_state("penalty", QuadraticPenalty())
        self._params: list[torch.Tensor] = []

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        self._params = trainable_parameters(learner.model)

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        shard = learner.world.shard(learner.batches(experience.train, self.batch_size,
                                                    limit=self.samples))
        importance = output_sensitivity(learner.model, (x for x, _, _ in shard))
        importance = learner.world.mean(importance, shard.rows)
        self.penalty.reanchor(importance, self._params, decay=1.0)

    def after_backward(self, learner: LearnerView, batch: Batch) -> None:
        if not self.penalty.empty:
            with torch.no_grad():  # else .grad records autograd history through the params
                self.penalty.add_gradient(self._params, 2.0 * self.lambda_)
