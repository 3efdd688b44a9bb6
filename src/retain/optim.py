"""Optimizers and learning-rate rules for incremental updates."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from retain.errors import RetainError

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
              "adamw": torch.optim.AdamW}


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
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise RetainError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        ) from None
    return cls(params, lr=lr, **kwargs)


def decaying_lr(optimizer: torch.optim.Optimizer, half_life: float,
                min_factor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that halves the learning rate every ``half_life`` scheduler steps (e.g.
    days), never below ``min_factor`` times the initial rate: SGD with a decaying learning rate
    for a model updated every day."""
    if half_life <= 0:
        raise RetainError("half_life must be > 0")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(min_factor, 0.5 ** (step / half_life))
    )
