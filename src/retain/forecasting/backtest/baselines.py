"""The reference points of the comparison: repeat last week, and retrain from scratch.

Neither is deployed: seasonal-naive is the bar any forecaster must clear, and retraining every
day is what incremental updates are measured against (its cost, and its accuracy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from retain.errors import RetainError
from retain.forecasting.approaches import (
    NO_WORK,
    Approach,
    Frozen,
    Recipe,
    Settings,
    train_from_scratch,
)
from retain.forecasting.windows import WindowSet
from retain.learner import LearnStats


class SeasonalNaive(Approach):
    """Repeat the last observed season: the value one ``season`` (e.g. a week) earlier.

    >>> SeasonalNaive(season=3, horizon=4).forecast(None, torch.tensor([1., 2, 3, 4, 5, 6]))
    tensor([4., 5., 6., 4.])
    """

    name = "seasonal-naive"
    uses_pretrained = False
    resumable = True

    def __init__(self, season: int, horizon: int):
        if season < 1:
            raise RetainError(f"season must be >= 1 step, got {season}")
        self.season = season
        step = torch.arange(horizon)
        self._back = self.season * (step // self.season + 1) - step  # steps back per h

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        if len(past) < self.season:
            raise RetainError(f"seasonal-naive needs {self.season} steps of history")
        return past[len(past) - self._back]


def seasonal_naive(s: Settings) -> SeasonalNaive:
    return SeasonalNaive(s.season, s.horizon)


class Retrain(Frozen):
    """Train a fresh model from scratch on all windows known so far, every ``every`` days.

    Retraining every day costs more than the rest of the comparison together, so with
    ``every > 1`` the daily cost is extrapolated: the samples a daily retrain would process
    are counted exactly, and its seconds are those samples at the measured seconds per sample.

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> quick = Experiment.quick(approaches=("retrain",), days=4)  # retrains every 2 days
    >>> run, _ = run_experiment(synthetic(days=32), quick)
    >>> [bool(rows) for rows in run.runs["retrain"].samples]
    [False, True, False, True]
    """

    name = "retrain"
    kind = "retrain"

    def __init__(self, build: Callable[[], nn.Module], recipe: Recipe, every: int = 1,
                 seed: int = 0):
        if every < 1:
            raise RetainError(f"retrain interval must be >= 1 day, got {every}")
        self.build, self.recipe, self.every, self.seed = build, recipe, every, seed
        self.daily_samples: list[int] = []  # what retraining every day would process
        self.note = "" if every == 1 else (
            f"retrained every {every} days; daily-retrain cost extrapolated from "
            f"measured seconds per sample")

    def update(self, new: WindowSet, history: WindowSet) -> LearnStats:
        self.daily_samples.append(len(history) * self.recipe.epochs)
        if len(self.daily_samples) % self.every:
            return NO_WORK
        start = time.perf_counter()
        self.model, stats = train_from_scratch(self.build, history, self.recipe, self.seed)
        return replace(stats, seconds=time.perf_counter() - start)


def retrain(s: Settings) -> Retrain:
    return Retrain(s.build, s.recipe, s.retrain_every, s.seed)
