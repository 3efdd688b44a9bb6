"""Optimizers and learning-rate rules for incremental updates."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from retain.catalog import Catalog
from retain.errors import RetainError

#: optimizers by the name ``make_optimizer``, ``retain run --optimizer`` and bench grids take
OPTIMIZERS: Catalog = Catalog("optimizer", {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
    "adamw": torch.optim.AdamW}, group="retain.optimizers")


def scale_lr(base_lr: float, batch_size: int, base_batch_size: int = 32,
             rule: str = "linear") -> float:
    """Learning rate for ``batch_size`` given one tuned at ``base_batch_size``.

    ``linear`` (Goyal et al. 2017) suits SGD; ``sqrt`` (Krizhevsky 2014; Malladi et al. 2022)
    suits Adam/RMSprop, whose steps are already normalised by the gradient scale.

    >>> scale_lr(0.1, 64, base_batch_size=32)
    0.2
    >>> round(scale_lr(0.001, 128, base_batch_size=32, rule="sqrt"), 6)
    0.002
    """
    if batch_size < 1 or base_batch_size < 1:
        raise RetainError("batch sizes must be >= 1")
    ratio = batch_size / base_batch_size
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    raise RetainError(f"unknown scaling rule {rule!r}; choose 'linear' or 'sqrt'")


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float,
                   **kwargs) -> torch.optim.Optimizer:
    """Build a torch optimizer by name (``sgd``, ``adam``, ``rmsprop``, ``adamw``)."""
    return OPTIMIZERS.require(name.lower())(params, lr=lr, **kwargs)


class HalfLifeLR(torch.optim.lr_scheduler.LRScheduler):
    """Halve the learning rate every ``half_life`` scheduler steps (e.g. days), never below
    ``min_factor`` times the initial rate. A named class with plain arguments (not a
    ``LambdaLR`` closure), so a learner using it can be saved and rebuilt from a checkpoint."""

    def __init__(self, optimizer: torch.optim.Optimizer, half_life: float,
                 min_factor: float = 0.0, last_epoch: int = -1):
        if half_life <= 0:
            raise RetainError(f"half_life must be > 0, got {half_life}")
        if not 0.0 <= min_factor <= 1.0:
            raise RetainError(f"min_factor must be in [0, 1], got {min_factor}")
        self.half_life = float(half_life)
        self.min_factor = float(min_factor)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = max(self.min_factor, 0.5 ** (self.last_epoch / self.half_life))
        return [base * factor for base in self.base_lrs]


#: schedulers of retain's own that checkpoints may name (besides torch.optim.lr_scheduler)
SCHEDULERS: Catalog = Catalog("scheduler", {"HalfLifeLR": HalfLifeLR}, group="retain.schedulers")


def decaying_lr(optimizer: torch.optim.Optimizer, half_life: float,
                min_factor: float = 0.0) -> HalfLifeLR:
    """A scheduler that halves the learning rate every ``half_life`` scheduler steps (e.g.
    days), never below ``min_factor`` times the initial rate: SGD with a decaying learning rate
    for a model updated every day. It is saved with the learner's checkpoint."""
    return HalfLifeLR(optimizer, half_life, min_factor)
