"""Prequential (test-then-train) evaluation over any stream.

Each batch is first predicted by the current model and scored, *then* learned. Every score is
therefore on data the model had not seen, and no separate test set is needed: the stream is
the test set (Dawid 1984; Gama et al. 2013, "On evaluating stream learning algorithms").
Errors are kept as a running mean over everything so far and a windowed mean over the last
``window`` samples (the running mean of a long stream hardly moves after a drift; the
windowed one shows it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from retain.drift import DriftMonitor, LRBoost
from retain.errors import RetainError


class PrequentialError:
    """Running and windowed mean of a stream of per-sample errors.

    >>> meter = PrequentialError(window=2)
    >>> meter.update([1.0, 2.0]); meter.update([4.0])
    >>> meter.running, meter.windowed
    (2.3333333333333335, 3.0)
    """

    def __init__(self, window: int = 1000):
        if window < 1:
            raise RetainError(f"window must be >= 1, got {window}")
        self.window = window
        self.count = 0
        self.total = 0.0
        self._ring = np.zeros(window)  # the last `window` errors, oldest overwritten first
        self._filled = 0

    def update(self, errors: Iterable[float] | np.ndarray | float) -> None:
        values = np.atleast_1d(np.asarray(errors, dtype=np.float64)).ravel()
        slots = (self.count + np.arange(len(values))) % self.window
        self.count += len(values)
        self.total += float(values.sum())
        self._ring[slots[-self.window:]] = values[-self.window:]
        self._filled = min(self.window, self._filled + len(values))

    @property
    def running(self) -> float:
        return self.total / self.count if self.count else float("nan")

    @property
    def windowed(self) -> float:
        return float(self._ring[: self._filled].mean()) if self._filled else float("nan")


@dataclass
class PrequentialResult:
    """Per batch: the mean error before learning it, and the running/windowed error after."""

    batch_error: list[float] = field(default_factory=list)
    running: list[float] = field(default_factory=list)
    windowed: list[float] = field(default_factory=list)
    alarms: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"batch_error": self.batch_error, "running": self.running,
                "windowed": self.windowed, "alarms": [list(a) for a in self.alarms]}


def sample_errors(outputs: torch.Tensor, y: torch.Tensor, task_type: str) -> torch.Tensor:
    """0/1 errors for classification (``outputs`` are predicted classes), mean absolute
    error per sample for regression."""
    if task_type == "classification":
        return (outputs != y).double()
    diff = (outputs - y.view(outputs.shape)).abs()
    return diff.reshape(diff.shape[0], -1).double().mean(1)


def prequential(
    learner,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    window: int = 1000,
    monitor: DriftMonitor | None = None,
    boost: LRBoost | None = None,
    on_drift: Callable[[int, list[str]], None] | None = None,
) -> PrequentialResult:
    """Test-then-train a :class:`~retain.Learner` over ``(x, y)`` batches.

    ``monitor`` watches the mean error of each batch. When a detector fires, ``boost`` (if
    given) raises the learning rate for its duration, and ``on_drift(batch_index,
    detector_names)`` may react in any other way (replay more, reset), before the batch is
    learned.
    """
    meter, result = PrequentialError(window), PrequentialResult()
    for i, (x, y) in enumerate(batches):
        errors = sample_errors(learner.predict(x), y.to(learner.device), learner.task_type)
        errors = errors.cpu().numpy()
        meter.update(errors)
        result.batch_error.append(float(errors.mean()))
        result.running.append(meter.running)
        result.windowed.append(meter.windowed)
        fired = monitor.update(result.batch_error[-1]) if monitor is not None else []
        if fired:
            result.alarms.extend((i, name) for name in fired)
            if boost is not None:
                boost.trigger()
            if on_drift is not None:
                on_drift(i, fired)
        with boost.applied(learner.optimizer) if boost is not None else nullcontext():
            learner.update(x, y)
    if not result.batch_error:
        raise RetainError("the stream is empty: nothing to evaluate")
    return result
