"""Time-stratified replay: a memory spread evenly over the stream's history.

A reservoir keeps every sample with equal probability, so its contents are uniform over time
only in expectation: each period's share fluctuates by chance, and when the memory is small
next to the number of periods some periods are missing altogether. Cutting the stream into
consecutive strata of ``stratum_size`` rows and balancing the memory over strata gives every
period of the past its share exactly. The balancing rule is exactly class-balanced reservoir
sampling (CBRS) with the stratum as the class, so it is reused rather than rewritten.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retain.buffers import ClassBalancedBuffer, ReplayBuffer
from retain.errors import RetainError
from retain.strategies.replay import Replay


class TimeStratifiedBuffer(ClassBalancedBuffer):
    """A replay memory balanced over consecutive strata of ``stratum_size`` offered rows."""

    policy = "time-stratified"

    def __init__(self, capacity: int, stratum_size: int,
                 device: torch.device | str | None = None, seed: int = 0):
        if not isinstance(stratum_size, int) or stratum_size < 1:
            raise RetainError(f"stratum_size must be a positive integer, got {stratum_size!r}")
        super().__init__(capacity, device, seed)
        self.stratum_size = stratum_size

    def _choose_slots(self, rows: dict[str, torch.Tensor], n: int):
        strata = (self.seen + np.arange(n)) // self.stratum_size
        return super()._choose_slots({"y": torch.from_numpy(strata)}, n)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["slot_strata"] = {str(s): list(slots) for s, slots in self.class_slots.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ReplayBuffer.load_state_dict(self, state)  # the strata are not the stored targets
        self.class_seen = {int(s): int(n) for s, n in state["class_seen"].items()}
        self.class_slots = {int(s): list(v) for s, v in state["slot_strata"].items()}


class StratifiedReplay(Replay):
    """:class:`~retain.strategies.Replay` over a :class:`TimeStratifiedBuffer`.

    Args:
        capacity: number of samples the memory holds.
        stratum_size: rows per stratum (e.g. a week of windows times the update epochs).
        batch_size: replayed rows per step (default: the incoming batch size).
        seed: seed of the memory's sampling.

    Example (a stream of 64 regression windows in strata of 16: each keeps 4 of 16 slots):

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> from retain import Learner
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Linear(4, 2)
    >>> s = StratifiedReplay(capacity=16, stratum_size=16)
    >>> learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01),
    ...                   loss=nn.MSELoss(), strategies=[s])
    >>> _ = learner.learn(TensorDataset(torch.randn(64, 4), torch.randn(64, 2)), batch_size=8)
    >>> sorted(len(slots) for slots in s.buffer.class_slots.values())
    [4, 4, 4, 4]
    """

    name = "replay-stratified"

    def __init__(self, capacity: int = 500, stratum_size: int = 336,
                 batch_size: int | None = None, seed: int = 0):
        super().__init__(capacity=capacity, batch_size=batch_size, seed=seed)
        self.buffer = TimeStratifiedBuffer(capacity, stratum_size, seed=seed)
