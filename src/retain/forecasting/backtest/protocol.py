"""The daily protocol: pre-train once, then forecast a day, score it, and only then learn it.

For each day ``d`` after the initial training period, every approach forecasts day ``d`` at
its first step (the origin) from data before the origin, the errors are recorded, and only
then are day ``d``'s windows handed to the approaches' updates. The protocol is the only
code that slices the series, and it records which rows it has handed out before each
forecast, so the "no value is trained on before it is forecast" rule can be checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from retain.drift import DriftMonitor
from retain.errors import RetainError
from retain.forecasting.approaches import NO_WORK, Approach, Recipe, train_from_scratch
from retain.forecasting.data import Series
from retain.forecasting.features import Inputs
from retain.forecasting.intervals import conformal_intervals
from retain.forecasting.windows import Windows, WindowSet, WindowSpec
from retain.prequential import PrequentialError


@dataclass(frozen=True)
class Schedule:
    """Where the stream starts and how it advances, in rows of the series."""

    windows: WindowSpec
    pretrain: int  # rows of the initial training period
    period: int  # rows between forecast origins (one day)
    days: int | None = None  # forecast at most this many periods
    #: resume the stream at this day (the days before it are someone else's: see
    #: :attr:`Approach.resumable`)
    first_day: int = 0
    #: forecast only the days before this one (``None``: to the end); unlike ``days`` it
    #: does not shorten the stream: the last day of the run is still learnt
    stop_day: int | None = None

    def origins(self, n_rows: int) -> range:
        """Forecast origins of this run: ``all_origins[first_day:stop_day]``."""
        origins = self.all_origins(n_rows)
        if not 0 <= self.first_day < len(origins):
            raise RetainError(f"first_day {self.first_day} is outside the stream's "
                              f"{len(origins)} forecast days")
        return origins[self.first_day:self.stop_day]

    def all_origins(self, n_rows: int) -> range:
        """Forecast origins: from the end of pre-training while a full horizon remains."""
        L, H = self.windows.lookback, self.windows.horizon
        if self.pretrain < L + H:
            raise RetainError(
                f"the initial training period ({self.pretrain} steps) must be longer than "
                f"lookback + horizon ({L + H} steps)")
        origins = range(self.pretrain, n_rows - H + 1, self.period)
        if len(origins) == 0:
            raise RetainError(
                f"the series ({n_rows} steps) ends before the first forecast: it needs more "
                f"than the initial training period plus one horizon ({self.pretrain + H})")
        return origins if self.days is None else origins[: self.days]


@dataclass
class ApproachRun:
    """One approach over the whole stream: forecasts in target units and update costs."""

    name: str
    forecasts: np.ndarray  # [days, H]
    seconds: np.ndarray  # [days] wall seconds of the update after each day
    samples: np.ndarray  # [days] rows through training steps in that update
    kind: str = "baseline"
    alarms: list[tuple[int, str]] = field(default_factory=list)
    note: str = ""
    #: for retrain every k > 1 days: per-day (seconds, samples) of retraining daily
    daily_retrain: tuple[np.ndarray, np.ndarray] | None = None
    model: torch.nn.Module | None = None  # the final model, for approaches that have one
    family: str = "cnn"
    #: settings the approach chose on the pre-training period, and its validation scores
    chosen: dict | None = None
    validation: list[dict] | None = None
    #: what the approach needs, beside ``model``, to forecast again later (the hybrid's
    #: settings and weight: see :func:`retain.forecasting.bundle.save_hybrid`)
    export: dict | None = None
    #: [days] mean absolute error of each day in scaled units, as the drift monitor saw it
    daily_errors: np.ndarray | None = None
    #: the approach itself after the last day, where it can be deployed (it has a state:
    #: see :meth:`retain.forecasting.forecaster.Forecaster.from_run`)
    approach: Approach | None = field(default=None, repr=False, compare=False)
    #: why the approach stopped and which fallback forecast in its place ("" if it did not)
    failure: str = ""


@dataclass
class DailyRun:
    """Everything the protocol measured."""

    origins: pd.DatetimeIndex  # forecast issue times
    origin_rows: np.ndarray  # the same, as row numbers
    actual: np.ndarray  # [days, H]
    step: pd.Timedelta | None
    runs: dict[str, ApproachRun]
    pretrain_seconds: float
    pretrain_samples: int
    trained_until: np.ndarray  # [days] rows whose values any update had seen, per forecast
    _intervals: dict = field(default_factory=dict, repr=False)

    def intervals(self, name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``name``'s conformal interval bounds per level (computed once, see
        :mod:`retain.forecasting.intervals`)."""
        if name not in self._intervals:
            self._intervals[name] = conformal_intervals(
                self.actual, self.runs[name].forecasts, self.origin_rows, self.actual.shape[1])
        return self._intervals[name]

    def target_times(self) -> pd.DatetimeIndex:
        """The time of every forecast value, day by day ([days * H])."""
        h = self.actual.shape[1]
        offsets = np.tile(np.arange(h), len(self.origins)) * self.step
        return pd.DatetimeIndex(np.repeat(self.origins.to_numpy(), h) + offsets)


Progress = Callable[[int, int, pd.Timestamp, dict[str, float]], None]


class _Track:
    """What the protocol records for one approach while the days go by."""

    def __init__(self, approach: Approach, n_days: int, horizon: int,
                 detectors: Sequence[str], fallback: Callable[[], Approach] | None = None):
        self.approach = self.contender = approach
        self.fallback, self.failure = fallback, ""
        self.forecasts = torch.empty(n_days, horizon)
        self.seconds = np.zeros(n_days)
        self.samples = np.zeros(n_days, dtype=np.int64)
        self.meter = PrequentialError(window=7 * horizon)
        self.monitor = DriftMonitor(detectors) if detectors else None
        self.errors = np.zeros(n_days)

    def forecast(self, day: int, x: torch.Tensor, past: torch.Tensor) -> None:
        """The approach's forecast for ``day``; one that fails (or is not finite) hands the
        rest of the run to the fallback, and the reason goes into the results."""
        try:
            out = self.approach.forecast(x, past)
            if not torch.isfinite(out).all():
                raise RetainError("its forecast is not finite")
        except Exception as exc:  # noqa: BLE001 - recorded, and the run goes on
            self._fail(day, "forecast", exc)
            out = self.approach.forecast(x, past)
        self.forecasts[day] = out

    def update(self, day: int, new: WindowSet, history: WindowSet) -> None:
        try:
            done = self.approach.update(new, history)
        except Exception as exc:  # noqa: BLE001 - recorded, and the run goes on
            self._fail(day, "update", exc)
            done = NO_WORK
        self.seconds[day], self.samples[day] = done.seconds, done.samples

    def _fail(self, day: int, step: str, exc: Exception) -> None:
        """Hand over to the approach's own fallback (the hybrid's: its base alone), and
        should that fail too, to the run's (seasonal-naive)."""
        if self.fallback is None or self.approach.name == "seasonal-naive":
            raise exc
        own = getattr(self.approach, "fallback", None)
        self.approach = own() if own is not None else self.fallback()
        self.failure += ("; " if self.failure else "") + (
            f"failed in its {step} of day {day + 1} ({type(exc).__name__}: {exc}); "
            f"{self.approach.name} forecast the rest of the run in its place")

    def score(self, day: int, actual: torch.Tensor, spread: float) -> None:
        """Record the day's errors (in target units) and let drift alarms reach the
        approach."""
        error = (self.forecasts[day] - actual).abs()
        self.meter.update(error.numpy() * spread)
        self.errors[day] = float(error.mean())
        if self.monitor is not None and self.monitor.update(self.errors[day]):
            self.approach.on_drift()

    def result(self, scaler) -> ApproachRun:
        a, ok = self.contender, not self.failure
        return ApproachRun(
            a.name, scaler.inverse_target(self.forecasts).numpy().astype(np.float64),
            self.seconds, self.samples, a.kind, self.monitor.alarms if self.monitor else [],
            "; ".join(n for n in (self.failure, a.note) if n),
            _extrapolated(a, self.seconds, self.samples) if ok else None,
            getattr(a, "model", None) if ok else None,
            a.family, getattr(a, "chosen", None), getattr(a, "validation", None),
            a.export() if hasattr(a, "export") and ok else None, self.errors,
            a if ok and hasattr(a, "state_dict") and a.kind == "incremental" else None,
            self.failure)


def run_daily(
    series: Series,
    inputs: Inputs,
    approaches: Sequence[Approach],
    schedule: Schedule,
    build: Callable[[], torch.nn.Module],
    recipe: Recipe,
    seed: int = 0,
    detectors: Sequence[str] = ("adwin", "page-hinkley"),
    progress: Progress | None = None,
    fallback: Callable[[], Approach] | None = None,
) -> DailyRun:
    """Run every approach through the same days, test-then-train.

    ``fallback`` builds what forecasts in place of an approach that fails on some day (its
    error is recorded in :attr:`ApproachRun.failure` and the other approaches go on);
    without one, a failure stops the run.

    ``progress(day, days, origin_time, windowed_mae)`` is called after each day.

    With ``schedule.first_day > 0`` the run resumes the stream at that day: every approach
    must be :attr:`~Approach.resumable` (it starts knowing the rows before that day's
    origin); the results are those days of the whole run (see
    :func:`retain.forecasting.backtest.run.run_experiment`, which splits mstl's days so).
    """
    windows = Windows(inputs.features, inputs.target, schedule.windows)
    origins = schedule.origins(len(inputs.target))
    last = schedule.all_origins(len(inputs.target))[-1]
    if schedule.first_day:
        fixed = [a.name for a in approaches if not a.resumable]
        if fixed:
            raise RetainError(f"{fixed} cannot resume a stream at day {schedule.first_day}: "
                              f"they learn from every day before it")
    H, n_days = schedule.windows.horizon, len(origins)
    scaled_actual = inputs.target[origins[0]:].unfold(0, H, schedule.period)[:n_days]
    model, stats = None, NO_WORK
    if any(a.uses_pretrained for a in approaches):
        model, stats = train_from_scratch(build, windows.completed(0, schedule.pretrain),
                                          recipe, seed)
    tracks = [_Track(a, n_days, H, detectors, fallback) for a in approaches]
    handed_out = origins[0] if schedule.first_day else schedule.pretrain
    for track in tracks:
        track.approach.prepare(inputs, schedule.pretrain, schedule.period)
        if schedule.first_day:
            track.approach.observe(handed_out)
        track.approach.start(model)
    trained_until = np.zeros(n_days, dtype=np.int64)
    for day, origin in enumerate(origins):
        trained_until[day] = handed_out
        x, past = windows.input_at(origin), inputs.target[:origin]
        for track in tracks:
            track.forecast(day, x, past)
        for track in tracks:  # the day is revealed: score it, then learn it
            track.score(day, scaled_actual[day], inputs.scaler.std[0])
        revealed = origin + schedule.period
        # the last day is learnt too where the series holds it: what the run hands on
        # (a deployed forecaster, bundles) has learnt every revealed day
        if origin < last or revealed <= len(inputs.target):
            new, history = windows.completed(origin, revealed), windows.completed(0, revealed)
            handed_out = max(handed_out, new.target_end, history.target_end)
            for track in tracks:
                track.approach.observe(revealed)
                track.update(day, new, history)
        if progress is not None:
            progress(day, n_days, series.frame.index[origin],
                     {t.contender.name: t.meter.windowed for t in tracks})
    rows = np.asarray(origins)
    actual = series.frame[series.target].to_numpy()[rows[:, None] + np.arange(H)]
    return DailyRun(series.frame.index[rows], rows, actual, _step(series.frame.index),
                    {t.contender.name: t.result(inputs.scaler) for t in tracks},
                    stats.seconds, stats.samples, trained_until)


def _extrapolated(approach: Approach, seconds: np.ndarray, samples: np.ndarray):
    """Daily-retrain cost from the retrains that ran: exact samples, measured s/sample.

    Only the seconds spent training count toward the rate: an approach whose every update
    also does work a daily retrain would do once a day too (the hybrid's base refresh)
    lists its training seconds per update in ``fit_seconds``, and that daily work is
    added as measured instead of being spread over the retrains' samples (which put daily
    retraining at twice its real cost on a short series)."""
    if approach.kind != "retrain" or getattr(approach, "every", 1) == 1:
        return None
    would = np.zeros(len(samples), dtype=np.int64)
    would[: len(approach.daily_samples)] = approach.daily_samples
    listed = getattr(approach, "fit_seconds", None)
    fit = seconds if listed is None else np.pad(np.asarray(listed, dtype=float),
                                                 (0, len(seconds) - len(listed)))
    measured = samples.sum()
    rate = fit.sum() / measured if measured else float("nan")
    return seconds - fit + would * rate, would


def _step(times: pd.DatetimeIndex) -> pd.Timedelta | None:
    return times[1] - times[0] if len(times) > 1 else None
