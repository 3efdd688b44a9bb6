"""Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from retain.errors import RetainError
from retain.strategies.base import Batch, Strategy
from retain.strategies.common import QuadraticPenalty, trainable_parameters

if TYPE_CHECKING:
    from retain.scenarios import Experience
    from retain.strategies.contract import LearnerView


class SI(Strategy):
    """Penalise moving weights in proportion to how much they reduced the loss so far.

    During an experience each weight accumulates the path integral ``ω_i = −Σ_steps g_i Δθ_i``
    (``g`` the gradient of the unregularised loss, ``Δθ`` the step the optimizer took, so it
    works with any optimizer). At the end of the experience the importance
    ``Ω_i += ω_i / ((θ_i − θ_i^start)² + ξ)`` is folded into a penalty
    ``c · Σ_i Ω_i (θ_i − θ*_i)²`` anchored at the current weights.

    Args:
        c: strength of the penalty (the paper's ``c``).
        xi: damping ``ξ`` that keeps the importance finite for weights that barely moved.

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = SI(c=0.1)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> s.penalty.empty
    False
    """

    name = "si"
    # the path integral reads gradients after DDP averaged them: identical on every rank
    distributed = True

    def __init__(self, c: float = 1.0, xi: float = 0.1):
        if c < 0 or xi <= 0:
            raise RetainError(f"SI needs c >= 0 and xi > 0, got c={c}, xi={xi}")
        super().__init__()
        self.c = float(c)
        self.xi = float(xi)
        self.add_state("penalty", QuadraticPenalty())
        self.add_state("omega", [])  # path integral of the current experience
        self.add_state("start", [])  # weights when the experience began
        self.add_state("previous", [])  # weights before the current step
        self._grads: list[torch.Tensor] = []
        self._params: list[torch.Tensor] = []

    def bind(self, learner: LearnerView) -> None:
        super().bind(learner)
        self._params = trainable_parameters(learner.model)
        if not self.omega:
            self._reset(self._params)

    def _reset(self, params: list[torch.Tensor]) -> None:
        self.omega = [torch.zeros_like(p) for p in params]
        self.start = [p.detach().clone() for p in params]
        self.previous = [p.detach().clone() for p in params]

    def after_backward(self, learner: LearnerView, batch: Batch) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        if self.penalty.empty:
            self._grads = grads  # nothing is added to .grad: no copy needed
            return
        self._grads = [g.clone() for g in grads]  # the unregularised gradient, before the penalty
        with torch.no_grad():  # else .grad records autograd history through the params
            self.penalty.add_gradient(self._params, 2.0 * self.c)

    def after_step(self, learner: LearnerView, batch: Batch) -> None:
        current = [p.detach() for p in self._params]
        delta = torch._foreach_sub(current, self.previous)
        torch._foreach_addcmul_(self.omega, self._grads, delta, value=-1.0)
        torch._foreach_copy_(self.previous, current)
        self._grads = []

    def after_experience(self, learner: LearnerView, experience: Experience) -> None:
        current = [p.detach() for p in self._params]
        moved = torch._foreach_sub(current, self.start)
        torch._foreach_mul_(moved, moved)
        torch._foreach_add_(moved, self.xi)
        importance = torch._foreach_div(self.omega, moved)
        self.penalty.reanchor(importance, current, decay=1.0)
        self._reset(self._params)

    def penalty_value(self, learner: LearnerView) -> float | torch.Tensor:
        """The current penalty ``c Σ Ω (θ − θ*)²`` (0 before the first consolidation)."""
        if self.penalty.empty:
            return 0.0
        return self.penalty.value(trainable_parameters(learner.model), 2.0 * self.c)
