"""What a run logs: after each experience its scores, flips and curve points; at the end the
summary, the accuracy matrix and the flips as tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from retain.loggers.base import Logger
    from retain.metrics import RunResult


def experience_scalars(i: int, row: np.ndarray, flips: dict, metric: str) -> dict:
    """Scalars after experience ``i``: the score on each test set, the mean over those seen
    so far and the update's flip rates."""
    scalars = {f"{metric}/experience_{j}": float(v) for j, v in enumerate(row)}
    scalars[f"{metric}/seen_mean"] = float(np.mean(row[: i + 1]))
    scalars.update({f"flips/{k}": v for k, v in flips.items() if k != "rows"})
    return scalars


def curve_scalars(row: np.ndarray, metric: str) -> dict:
    """Scalars of one curve point: the seen experiences only."""
    return {f"curve/{metric}/experience_{j}": float(v) for j, v in enumerate(row)
            if not np.isnan(v)}


def log_result(loggers: Sequence[Logger], result: RunResult) -> None:
    """The summary (at step T), the accuracy matrix and the per-experience flips."""
    T = len(result.accuracy_matrix)
    names = result.experience_names or [str(j) for j in range(T)]
    for log in loggers:
        log.log_scalars({f"summary/{k}": v for k, v in result.summary().items()}, step=T)
        log.log_table("accuracy_matrix", ["after", *names],
                      [[names[i], *(round(float(v), 6) for v in r)]
                       for i, r in enumerate(result.accuracy_matrix)])
        if result.flips:
            keys = ("negative_flip_rate", "positive_flip_rate", "negative_flip_impact", "rows")
            log.log_table("flips", ["experience", *keys],
                          [[names[i], *(f.get(k) for k in keys)]
                           for i, f in enumerate(result.flips)])
        log.flush()
