"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from retain.errors import RetainError, warn
from retain.importance import FISHER_KINDS, fisher_diagonal
from retain.strategies.base import Batch, Strategy
from retain.strategies.common import QuadraticPenalty, trainable_parameters

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


def warn_if_unstable(penalty: QuadraticPenalty, lambda_: float, optimizer, name: str) -> None:
    """Warn when plain SGD cannot follow the penalty: along a weight with Fisher ``F`` the
    penalty alone moves ``θ − θ*`` by the factor ``1 − lr·λ·F`` per step, which overshoots
    and grows without bound once ``lr·λ·F > 2(1 + momentum)`` — training then diverges
    (typically to chance accuracy) with no error. Adaptive optimizers rescale the step.
    Called from ``after_experience``: the warning points at the user's line that led there
    (``learn``, ``run``, ``end_experience``)."""
    if not isinstance(optimizer, torch.optim.SGD) or penalty.empty or lambda_ == 0:
        return
    stiffest = float(torch.stack([a.max() for a in penalty.A]).max())
    for group in optimizer.param_groups:
        limit = 2 * (1 + group.get("momentum", 0.0))
        if group["lr"] * lambda_ * stiffest > limit:
            warn(
                f"{name}: lr * lambda_ * max Fisher = {group['lr']} * {lambda_:g} * "
                f"{stiffest:.3g} = {group['lr'] * lambda_ * stiffest:.3g} > {limit:g}: SGD "
                f"overshoots along the stiffest weights and training will diverge; use "
                f"lambda_ < {limit / (group['lr'] * stiffest):.3g} at this learning rate, a "
                f"smaller learning rate, or Adam")
            return


class EWC(Strategy):
    """Penalise moving weights that mattered for earlier experiences.

    After each experience the diagonal Fisher information ``F_t`` is estimated at the learned
    weights ``θ*_t``; later training minimises ``loss + λ/2 · Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²``.
    The sum over tasks is kept as one quadratic (constant cost per step), and its gradient is
    added to ``.grad`` directly.

    Args:
        lambda_: strength of the penalty.
        fisher: ``exact`` (default), ``sampled``, ``empirical``, ``weighted-empirical``
            (mammoth's) or ``batched-empirical`` (see :mod:`retain.importance`).
        fisher_samples: estimate the Fisher on a random subset of at most this many samples
            (the Fisher is an expectation: 1024 samples estimate it well at a fraction of the
            cost; the exact estimator needs one backward pass per class and sample). ``None``
            uses every sample.
        fisher_batch_size: mini-batch size for ``batched-empirical``.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = EWC(lambda_=10.0)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> s.penalty.empty
    False
    """

    name = "ewc"
    # each rank estimates the Fisher on its part of the samples; the parts are averaged
    distributed = True

    def __init__(
        self,
        lambda_: float = 100.0,
        fisher: str = "exact",
        fisher_samples: int | None = 1024,
        fisher_batch_size: int = 32,
    ):
        if fisher not in FISHER_KINDS:
            raise RetainError(f"unknown Fisher estimator {fisher!r}; choose one of {FISHER_KINDS}")
        if lambda_ < 0:
            raise RetainError(f"lambda_ must be >= 0, got {lambda_}")
        super().__init__()
        self.lambda_ = float(lambda_)
        self.fisher = fisher
        self.fisher_samples = fisher_samples
        self.fisher_batch_size = fisher_batch_size
        self.add_state("penalty", QuadraticPenalty())
        self._params: list | None = None

    def estimate_fisher(self, learner: LearnerView, experience: Experience) -> list:
        batch_size = self.fisher_batch_size if self.fisher == "batched-empirical" else 1024
        world = learner.world
        shard = world.shard(learner.batches(experience.train, batch_size=batch_size,
                                            limit=self.fisher_samples))
        fisher = fisher_diagonal(
            learner.model, shard, kind=self.fisher, task_type=learner.task_type,
            loss_fn=learner.loss_fn, output_map=learner.output_map, generator=learner.generator,
        )
        if self.fisher == "sampled":  # drew labels for this rank's rows only
            world.sync_generator(learner.generator)
        return world.mean(fisher, shard.rows)

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        self._cache_params(learner)
        self.consolidate(self.estimate_fisher(learner, experience), self._params)
        warn_if_unstable(self.penalty, self.lambda_, learner.optimizer, type(self).__name__)

    def _cache_params(self, learner: LearnerView) -> None:
        self._params = trainable_parameters(learner.model)
        self._values = [p.detach() for p in self._params]

    def consolidate(self, fisher: list, params: list) -> None:
        self.penalty.accumulate(fisher, params)

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        self._params = None

    def after_backward(self, learner: LearnerView, batch: Batch) -> None:
        if not self.penalty.empty:
            if self._params is None:
                self._cache_params(learner)
            self.penalty.add_gradient(self._params, self.lambda_, self._values)

    def penalty_value(self, learner: LearnerView):
        """The current penalty ``λ/2 Σ F (θ − θ*)²`` (0 before the first consolidation)."""
        if self.penalty.empty:
            return 0.0
        return self.penalty.value(trainable_parameters(learner.model), self.lambda_)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._params = None
