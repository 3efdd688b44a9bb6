"""Update regressions in the store: the candidate's flips against the current version.

An update can keep the holdout error level while trading rows the current version got right
for others; the users of the model see the broken ones. Before and after learning, the same
holdout and replay memory are scored row by row; the flip rates (:mod:`retain.flips`) go
into the candidate's history, and ``max_negative_flips`` turns the negative flip rate into
a gate condition.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from retain.errors import RetainError
from retain.evaluation import StreamEvaluator
from retain.flips import flip_rates
from retain.learner import Learner

SETS = (("holdout", "holdout"), ("memory", "replay memory"))


def row_scores(learner: Learner, holdout: TensorDataset,
               memory: TensorDataset | None) -> dict[str, torch.Tensor | None]:
    """Per-row scores (correct, or squared error) of the learner on both sets."""
    return {"holdout": StreamEvaluator(learner, [holdout]).scores(),
            "memory": None if memory is None else StreamEvaluator(learner, [memory]).scores()}


def update_flips(before: dict[str, torch.Tensor | None], after: dict[str, torch.Tensor | None],
                 tolerance: float) -> dict[str, float | None]:
    """``holdout_negative_flip_rate``, ``memory_positive_flip_rate``, ... for the history
    (``None`` for a set the store does not have)."""
    flips: dict[str, float | None] = {}
    for key, _ in SETS:
        old, new = before[key], after[key]
        rates = None if old is None or new is None else flip_rates(old, new, tolerance)
        for name in ("negative_flip_rate", "positive_flip_rate", "negative_flip_impact"):
            flips[f"{key}_{name}"] = None if rates is None else getattr(rates, name)
    return flips


def check_limit(limit: float | None) -> None:
    """Refuse a limit that is not a share of rows, before anything is learned."""
    if limit is not None and not 0.0 <= limit <= 1.0:
        raise RetainError(f"max_negative_flips is a share of rows in [0, 1], got {limit}")


def flip_failures(flips: dict[str, float | None], limit: float | None) -> list[str]:
    """Why the candidate fails the flip limit (empty when it passes or there is no limit).

    >>> flip_failures({"holdout_negative_flip_rate": 0.08, "memory_negative_flip_rate": None},
    ...               0.05)
    ['holdout negative flip rate 0.0800 exceeds the limit 0.05']
    """
    if limit is None:
        return []
    failed = []
    for key, what in SETS:
        rate = flips.get(f"{key}_negative_flip_rate")
        if rate is not None and not rate <= limit:
            failed.append(f"{what} negative flip rate {rate:.4f} exceeds the limit {limit:g}")
    return failed
