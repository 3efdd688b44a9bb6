"""Drift detection on an error stream, and one way to react to it.

The detectors are River's (``river.drift.ADWIN`` and ``river.drift.PageHinkley``): they are
well tested, and an error stream is exactly the univariate input they are built for. A rise
of the error is what matters for a model that learns online, so that is what we feed them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from retain.errors import RetainError
from retain.extras import require


def _detectors() -> dict[str, type]:
    drift = require("river.drift", "forecast")

    return {"adwin": drift.ADWIN, "page-hinkley": drift.PageHinkley}


#: defaults for one value per update period (a day): ADWIN checks every value (its default
#: clock of 32 would look once a month); Page-Hinkley only flags rises, on errors in units of
#: the target's spread (so a threshold of ~1 is "one standard deviation, accumulated")
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "adwin": {"delta": 0.002, "clock": 1, "grace_period": 14},
    "page-hinkley": {"min_instances": 14, "delta": 0.05, "threshold": 1.0, "mode": "up"},
}


class DriftMonitor:
    """Feed one error value per step; :meth:`update` returns the detectors that fired.

    Only rises of the error count: ADWIN also flags falls (a model that is still learning
    gets better, which is a change too), and those need no reaction.

    >>> monitor = DriftMonitor(["page-hinkley"])
    >>> fired = [monitor.update(0.1 if t < 40 else 1.0) for t in range(60)]
    >>> next(t for t, names in enumerate(fired) if names)
    41
    """

    def __init__(self, detectors: Sequence[str] = ("adwin", "page-hinkley"),
                 params: Mapping[str, Mapping[str, Any]] | None = None):
        known = _detectors()
        unknown = [d for d in detectors if d not in known]
        if unknown:
            raise RetainError(f"unknown drift detector(s) {unknown}; choose from {list(known)}")
        params = params or {}
        self.detectors = {
            name: known[name](**{**DEFAULT_PARAMS[name], **params.get(name, {})})
            for name in detectors
        }
        self.steps = 0
        self.alarms: list[tuple[int, str]] = []

    def update(self, error: float) -> list[str]:
        fired = []
        for name, detector in self.detectors.items():
            before = getattr(detector, "estimation", None)
            detector.update(float(error))
            after = getattr(detector, "estimation", None)
            fell = before is not None and after is not None and after < before
            if detector.drift_detected and not fell:
                fired.append(name)
                self.alarms.append((self.steps, name))
        self.steps += 1
        return fired


class LRBoost:
    """After a drift alarm, multiply the learning rate by ``factor`` for ``duration`` updates:
    a model that has fallen behind a changed process catches up faster, and the boost ends
    before the larger steps start to cost accuracy on a stable process."""

    def __init__(self, factor: float = 3.0, duration: int = 7):
        if factor <= 0 or duration < 1:
            raise RetainError(f"need factor > 0 and duration >= 1, got {factor}, {duration}")
        self.factor = float(factor)
        self.duration = int(duration)
        self.remaining = 0

    def trigger(self) -> None:
        self.remaining = self.duration

    @contextmanager
    def applied(self, optimizer: torch.optim.Optimizer) -> Iterator[None]:
        """Scale the learning rates for one update. Scaling back by division (not by restoring
        saved values) keeps chainable schedulers such as ``ExponentialLR`` stepping right."""
        if self.remaining == 0:
            yield
            return
        for group in optimizer.param_groups:
            group["lr"] *= self.factor
        try:
            yield
        finally:
            for group in optimizer.param_groups:
                group["lr"] /= self.factor
            self.remaining -= 1
