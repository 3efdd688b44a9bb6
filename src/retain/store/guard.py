"""A strategy that stops training when the loss diverges, without a device sync per step.

Each step's loss is copied into a small on-device window; every ``check_every`` steps (and at
the end of an experience) one comparison over the window runs on the host. So a diverged update
is caught within ``check_every`` steps and reported with the exact step, at the cost of one
sync per window instead of one per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from retain.distributed import World
from retain.errors import RetainError
from retain.strategies import Strategy
from retain.strategies.base import Batch

if TYPE_CHECKING:
    from retain.learner import Learner
    from retain.scenarios import Experience


class DivergenceError(RetainError):
    """Training diverged; ``step`` counts from 1 within the experience."""

    def __init__(self, step: int, loss: float, limit: float):
        self.step, self.loss, self.limit = step, loss, limit
        what = f"loss is {loss}" if not torch.isfinite(torch.tensor(loss)) else (
            f"loss {loss:.4g} exceeds the limit {limit:.4g}")
        super().__init__(f"training diverged at step {step}: {what}")


class DivergenceGuard(Strategy):
    """Raise :class:`DivergenceError` when a step's loss is NaN/inf or explodes.

    A loss above ``max_ratio · max(1, first loss the guard saw)`` counts as exploded; the first
    loss is usually the untrained model's, which sets the scale of the task's loss. Put the
    guard last in the strategy list so it sees the loss with every strategy's terms.

    Args:
        max_ratio: how many times the reference loss a step may reach.
        check_every: steps between two checks (one host sync each).

    Example (one experience of random data; ``s`` is the strategy):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> s = DivergenceGuard(max_ratio=100.0)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), strategies=[s])
    >>> data = TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    >>> _ = learner.learn(data, batch_size=8)
    >>> learner.update(data.tensors[0][:8], data.tensors[1][:8]) > 0
    True
    """

    name = "divergence-guard"
    distributed = True  # check() agrees across ranks: a divergence anywhere stops every rank

    def __init__(self, max_ratio: float = 100.0, check_every: int = 25):
        if max_ratio <= 1 or check_every < 1:
            raise RetainError(f"need max_ratio > 1 and check_every >= 1, got {max_ratio}, "
                              f"{check_every}")
        super().__init__(max_ratio=max_ratio, check_every=check_every)
        self.max_ratio = float(max_ratio)
        self.check_every = int(check_every)
        # the first loss seen, kept on the device (no sync); older checkpoints saved a float
        self.add_state("reference", None)
        self._window: torch.Tensor | None = None
        self._steps = self._checked = 0
        self._world = World()

    def before_experience(self, learner: Learner, experience: Experience) -> None:
        self._steps = self._checked = 0
        self._world = learner.world

    def loss_terms(self, learner: Learner, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        value = loss.detach()
        if self._window is None:
            self._window = torch.empty(self.check_every, device=value.device)
        if self.reference is None:
            self.reference = value
        self._window[self._steps - self._checked] = value
        self._steps += 1
        if self._steps - self._checked == self.check_every:
            self.check()
        return loss

    def after_experience(self, learner: Learner, experience: Experience) -> None:
        self.check()

    def check(self) -> None:
        """Raise if any loss since the last check diverged (one host sync)."""
        if self._steps == self._checked:
            return
        window = self._window[: self._steps - self._checked]
        limit = self.max_ratio * torch.clamp(torch.as_tensor(self.reference), min=1.0)
        bad = ~(window <= limit.to(window.device))  # NaN compares False, so it is bad too
        bad = self._world.any(bad)  # the same steps on every rank (identity in one process)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise DivergenceError(self._checked + i + 1, float(window[i]), float(limit))
        self._checked = self._steps
