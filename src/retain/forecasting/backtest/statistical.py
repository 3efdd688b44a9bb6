"""The statistical contenders a practitioner reaches for first, run under the same protocol.

``mstl`` is statsforecast's MSTL (LOESS decomposition over the day and the week, AutoETS on
what is left), refit every day on a trailing window; ``gbm`` is scikit-learn's histogram
gradient boosting on seasonal lags and the calendar, refit every week. Neither is written
here: this module only feeds them the data the protocol has revealed and times their refits,
which count as their update cost exactly as a network's training steps do.

Both work in the scaled units of :class:`~retain.forecasting.features.Inputs` (a linear map
of the target, which neither model's forecast depends on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from retain.errors import RetainError
from retain.forecasting.approaches import NO_WORK, Approach, Settings
from retain.forecasting.features import Inputs
from retain.forecasting.seasonal import check_history, require_statsforecast, seasonal_periods
from retain.forecasting.windows import WindowSet
from retain.learner import LearnStats


def _work(seconds: float, rows: int) -> LearnStats:
    return LearnStats(samples=rows, steps=1, seconds=seconds, last_loss=float("nan"))


class StatisticalApproach(Approach):
    """Shared plumbing: the revealed target, and a refit every ``every`` days."""

    kind = "statistical"
    uses_pretrained = False

    def __init__(self, every: int = 1):
        if every < 1:
            raise RetainError(f"refit interval must be >= 1 day, got {every}")
        self.every = every
        self._days = 0
        self.inputs: Inputs | None = None
        self.revealed = 0

    def prepare(self, inputs: Inputs, pretrain: int, period: int) -> None:
        self.inputs, self.revealed, self.period = inputs, pretrain, period
        self.pretrain = pretrain

    def start(self, model: torch.nn.Module) -> None:
        self.refit()

    def observe(self, revealed: int) -> None:
        self.revealed = revealed

    def update(self, new: WindowSet, history: WindowSet) -> LearnStats:
        self._days += 1
        if self._days % self.every:
            return NO_WORK
        start = time.perf_counter()
        rows = self.refit()
        return _work(time.perf_counter() - start, rows)

    def refit(self) -> int:
        """Fit on the revealed rows; returns the rows used."""
        raise NotImplementedError


class MSTLApproach(StatisticalApproach):
    """statsforecast ``MSTL(season_length=seasons)`` with an AutoETS trend, refit daily on
    a trailing window; the window is chosen among ``windows`` (steps) by forecasting the
    last ``validate_days`` of the pre-training period, as a practitioner would (``window``:
    that one, no validation). Refit daily, each day's forecast depends on the revealed rows
    alone, so a run may resume it on any day (:attr:`resumable`).

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> run, _ = run_experiment(synthetic(days=29), Experiment.quick(approaches=("mstl",),
    ...                                                              days=1))
    >>> run.runs["mstl"].chosen  # quick's one candidate: 21 days of hours
    {'window_steps': 504}
    """

    name = "mstl"

    def __init__(self, seasons: Sequence[int], horizon: int, windows: Sequence[int],
                 validate_days: int = 14, period: int = 1, every: int = 1,
                 window: int | None = None):
        super().__init__(every)
        if not seasons:
            raise RetainError("mstl needs a seasonal period longer than one step")
        self.seasons, self.horizon, self.windows = tuple(seasons), horizon, tuple(windows)
        self.validate_days, self.period, self.given = validate_days, period, window
        self.validation: list[dict] = []
        self.resumable = every == 1

    def _fit(self, end: int, window: int):
        models = require_statsforecast()
        y = self.inputs.target[max(0, end - window):end]
        check_history(len(y), self.seasons, "mstl's trailing window")
        return models.MSTL(season_length=list(self.seasons),
                           trend_forecaster=models.AutoETS(model="ZZN")).fit(
                               y.double().numpy())

    def start(self, model: torch.nn.Module) -> None:
        self.window = self.given or self._validate()
        self.chosen = {"window_steps": self.window}
        self.note = (f"trailing window {self.window} steps (chosen on the pre-training "
                     f"period), refit every {self.every} day(s)")
        self.refit()

    def _validate(self) -> int:
        """The window with the lowest MAE over the pre-training period's last days."""
        end = self.pretrain
        fits = [w for w in self.windows if w <= end] or [self.windows[0]]
        self.window = fits[-1]
        first = end - self.validate_days * self.period
        if len(fits) > 1 and self.validate_days > 0:
            target = self.inputs.target.double().numpy()
            for w in fits:
                errors = [np.abs(np.asarray(self._fit(o, w).predict(h=self.horizon)["mean"])
                                 - target[o:o + self.horizon]).mean()
                          for o in range(first, end - self.horizon + 1, self.period)]
                self.validation.append({"window_steps": w, "validation_mae": float(
                    np.mean(errors))})
            self.window = min(self.validation, key=lambda v: v["validation_mae"])[
                "window_steps"]
        return self.window

    def refit(self) -> int:
        self.fitted = self._fit(self.revealed, self.window)
        return min(self.window, self.revealed)

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        mean = self.fitted.predict(h=self.horizon)["mean"]
        return torch.as_tensor(np.asarray(mean), dtype=torch.float32)


class GradientBoostedLags(StatisticalApproach):
    """scikit-learn ``HistGradientBoostingRegressor`` on the target one season back (for
    each season, as far back as the horizon requires) and the known-future channels
    (calendar, declared covariates) at the target time; one model for every horizon step,
    refit weekly on every revealed row.

    >>> from retain.forecasting import Experiment, run_experiment, synthetic
    >>> run, _ = run_experiment(synthetic(days=29), Experiment.quick(approaches=("gbm",),
    ...                                                              days=1))
    >>> run.runs["gbm"].note  # hourly data: a day and a week back
    'lags [24, 168] + calendar, refit every 7 day(s)'
    """

    name = "gbm"

    def __init__(self, seasons: Sequence[int], horizon: int, every: int = 7, seed: int = 0):
        super().__init__(every)
        self.horizon, self.seed = horizon, seed
        # lags reaching past the origin for every step of the horizon
        self.lags = tuple(s * math.ceil(horizon / s) for s in seasons) or (horizon,)
        self.note = f"lags {list(self.lags)} + calendar, refit every {every} day(s)"

    def _rows(self, times: np.ndarray) -> np.ndarray:
        target = self.inputs.target.numpy()
        lead = self.inputs.features[:, list(np.flatnonzero(self.inputs.lead))].numpy()
        columns = [target[times - lag] for lag in self.lags]
        return np.column_stack([*columns, lead[times - self.horizon]])

    def refit(self) -> int:
        try:
            from sklearn.ensemble import HistGradientBoostingRegressor
        except ImportError:
            raise RetainError("the gbm approach needs scikit-learn: "
                              "pip install 'retain[forecast]'") from None
        times = np.arange(max(max(self.lags), self.horizon), self.revealed)
        self.fitted = HistGradientBoostingRegressor(max_iter=200, random_state=self.seed)
        self.fitted.fit(self._rows(times), self.inputs.target.numpy()[times])
        return len(times)

    def forecast(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        origin = len(past)
        times = np.arange(origin, origin + self.horizon)
        return torch.as_tensor(self.fitted.predict(self._rows(times)), dtype=torch.float32)


def mstl(s: Settings) -> MSTLApproach:
    return MSTLApproach(seasonal_periods(s.period, s.season), s.horizon,
                        [d * s.period for d in s.windows_days], validate_days=s.validate_days,
                        period=s.period, window=s.mstl_window)


def gbm(s: Settings) -> GradientBoostedLags:
    return GradientBoostedLags(seasonal_periods(s.period, s.season), s.horizon, s.gbm_every,
                               s.seed)
