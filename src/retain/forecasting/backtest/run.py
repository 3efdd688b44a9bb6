"""One call from a series to the daily comparison: an :class:`~retain.forecasting.experiment.
Experiment`'s days turned into rows, then every approach run through them.

The CLI (``retain forecast``) is a thin layer over :func:`run_experiment`.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from retain.drift import DriftMonitor
from retain.errors import RetainError
from retain.forecasting.approaches import make_approaches
from retain.forecasting.backtest.baselines import SeasonalNaive
from retain.forecasting.backtest.log import logging_progress
from retain.forecasting.backtest.protocol import (
    ApproachRun,
    DailyRun,
    Progress,
    Schedule,
    run_daily,
)
from retain.forecasting.data import Series
from retain.forecasting.experiment import Experiment, _check_history, _settings
from retain.forecasting.features import Inputs, make_inputs, useful_cycles
from retain.forecasting.windows import WindowSpec
from retain.models.forecasting import FORECASTERS


@dataclass(frozen=True)
class Plan:
    """An experiment laid onto a series: the rows it uses and when it forecasts."""

    series: Series  # cut to the pre-training period when validating
    spec: WindowSpec
    schedule: Schedule
    season: int

    @property
    def forecast_times(self) -> pd.DatetimeIndex:
        return self.series.frame.index[list(self.schedule.origins(len(self.series)))]


def plan(series: Series, experiment: Experiment) -> Plan:
    """Check that ``experiment`` fits ``series`` and turn its days into rows."""
    if experiment.model not in FORECASTERS:
        raise RetainError(f"unknown model {experiment.model!r}; choose from "
                          f"{', '.join(FORECASTERS)}")
    period = series.steps_in(experiment.period)
    pretrain = experiment.pretrain_days * period
    if experiment.validate_days is not None:  # forecast the last days of the pre-training
        series = replace(series, frame=series.frame.iloc[:pretrain])  # period, nothing later
        pretrain -= experiment.validate_days * period
    spec = WindowSpec(experiment.lookback or series.steps_in("7D"),
                      experiment.horizon or period, experiment.stride)
    schedule = Schedule(spec, pretrain, period, experiment.days)
    schedule.origins(len(series))  # fails on a too-short series before any work
    season = series.steps_in(experiment.season)
    _check_history(experiment, pretrain, period, season, spec.horizon)
    return Plan(series, spec, schedule, season)


#: run beside the other approaches by ``workers=2``: MSTL's exact daily refits cost about as
#: much CPU as every other default approach together (gbm, far cheaper, stays with the
#: networks)
STATISTICAL = ("mstl",)

#: ``workers=2`` splits mstl's forecast days into runs of a quarter of the days left, at
#: least this many (each run refits once more at its start): the second process takes them
#: from the first day on, this one from the last day back once its own approaches are done,
#: so neither waits for the other
CHUNK_DAYS = 16


def run_experiment(series: Series, experiment: Experiment, progress: Progress | None = None,
                   workers: int = 1, loggers: Sequence[Any] = (),
                   chunk_days: int = CHUNK_DAYS) -> tuple[DailyRun, Inputs]:
    """Pre-train, then run every approach of ``experiment`` through the same days.

    ``loggers`` (:mod:`retain.loggers`) get each approach's 7-day MAE day by day (written
    once a week); :func:`retain.forecasting.backtest.log.log_forecast` logs the summary.

    ``workers=2`` runs mstl in a second process while this one runs the rest, and this one
    takes over the mstl days the second has not started once it is done: mstl refits
    every day from the revealed rows alone, so any day can start a run of it
    (:attr:`~retain.forecasting.approaches.Approach.resumable`), and its window is chosen
    once, by the first run of ``chunk_days`` days. The approaches never exchange anything,
    so the results are those of one process, in about half the wall time on two cores
    (``progress`` then follows this process's approaches)."""
    progress = logging_progress(loggers, progress)
    split = [a for a in experiment.approaches if a in STATISTICAL]
    rest = [a for a in experiment.approaches if a not in STATISTICAL]
    if workers < 1:
        raise RetainError(f"workers must be >= 1, got {workers}")
    if chunk_days < 1:
        raise RetainError(f"chunk_days must be >= 1, got {chunk_days}")
    if workers == 1 or not split or not rest:
        return _run(series, experiment, progress)
    p = plan(series, experiment)  # every check before any work
    days = len(p.schedule.origins(len(p.series)))
    context = multiprocessing.get_context("spawn")  # no fork of a process running torch
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        chunks = _Chunks(pool, series, replace(experiment, approaches=tuple(split)), days,
                         chunk_days)
        try:
            run, inputs = _run(series, replace(experiment, approaches=tuple(rest)), progress)
        except BaseException:
            chunks.cancel()
            raise
        other = chunks.finish()
    run.runs = {n: run.runs[n] if n in run.runs else other[n] for n in experiment.approaches}
    return run, inputs


class _Chunks:
    """The split approaches' days in runs of at least ``size`` days: the pool's process
    takes them in order; :meth:`finish` runs here, from the last one back, those it has not
    started."""

    def __init__(self, pool: ProcessPoolExecutor, series: Series, experiment: Experiment,
                 days: int, size: int):
        self.pool, self.series, self.experiment = pool, series, experiment
        bounds = [0]
        while bounds[-1] < days:  # long runs first, short ones last (where the two meet)
            bounds.append(min(days, bounds[-1] + max(size, (days - bounds[-1]) // 4)))
        self.spans = list(zip(bounds[:-1], bounds[1:], strict=True))
        self.threads = torch.get_num_threads()
        # the first run chooses mstl's window; the others are queued once it is known
        self.futures = [pool.submit(_run_in_worker, series, experiment, self.threads,
                                    self.spans[0])]
        self.rest: Experiment | None = None
        self.stopped = threading.Event()
        self.queued = threading.Thread(target=self._queue_the_rest, daemon=True)
        self.queued.start()

    def _queue_the_rest(self) -> None:
        try:
            first = self.futures[0].result()
        except BaseException:  # noqa: BLE001 - finish() raises it
            return
        window = first.runs["mstl"].chosen["window_steps"] if "mstl" in first.runs else None
        self.rest = replace(self.experiment, hyper={**self.experiment.hyper,
                                                    "mstl_window": window})
        for span in self.spans[1:]:
            if self.stopped.is_set():
                return
            self.futures.append(self.pool.submit(_run_in_worker, self.series, self.rest,
                                                 self.threads, span))

    def cancel(self) -> None:
        self.stopped.set()
        self.queued.join()
        for future in self.futures:
            future.cancel()

    def finish(self) -> dict[str, ApproachRun]:
        """Every chunk's runs, those not yet started run here, joined day by day."""
        self.queued.join()
        runs: list[DailyRun | None] = [None] * len(self.spans)
        runs[0] = self.futures[0].result()
        for i in range(len(self.futures) - 1, 0, -1):
            if self.futures[i].cancel():
                runs[i] = _run(self.series, self.rest, days=self.spans[i])[0]
        runs = [r if r is not None else f.result() for r, f in zip(runs, self.futures,
                                                                    strict=True)]
        return {name: _joined([r.runs[name] for r in runs], self.experiment.detectors)
                for name in runs[0].runs}


def _joined(parts: list[ApproachRun], detectors: Sequence[str]) -> ApproachRun:
    """One approach's consecutive runs as one: the first run's choices, the days joined,
    and the drift alarms of one monitor over every day's error."""
    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(p, field) for p in parts])

    errors = cat("daily_errors")
    alarms: list[tuple[int, str]] = []
    if detectors:
        monitor = DriftMonitor(detectors)
        for error in errors:
            monitor.update(error)
        alarms = monitor.alarms
    return replace(parts[0], forecasts=cat("forecasts"), seconds=cat("seconds"),
                   samples=cat("samples"), daily_errors=errors, alarms=alarms)


def _run_in_worker(series: Series, experiment: Experiment, threads: int,
                   days: tuple[int, int] | None = None) -> DailyRun:
    torch.set_num_threads(threads)
    return _run(series, experiment, days=days)[0]


def _run(series: Series, experiment: Experiment, progress: Progress | None = None,
         days: tuple[int, int] | None = None) -> tuple[DailyRun, Inputs]:
    p = plan(series, experiment)
    schedule = p.schedule if days is None else replace(p.schedule, first_day=days[0],
                                                       stop_day=days[1])
    inputs = make_inputs(p.series, schedule.pretrain, p.spec.horizon, useful_cycles(series))
    channels = inputs.features.shape[1]
    cls, options = FORECASTERS[experiment.model], experiment.model_options

    def build() -> torch.nn.Module:
        return cls(channels, p.spec.lookback, p.spec.horizon, **options)

    try:
        build()
    except TypeError as exc:
        raise RetainError(f"bad model option for {experiment.model!r}: {exc}") from None
    settings = _settings(experiment, horizon=p.spec.horizon, period=schedule.period,
                         build=build, season=p.season, stride=p.spec.stride)
    approaches = make_approaches(experiment.approaches, settings)
    run = run_daily(p.series, inputs, approaches, schedule, build, experiment.recipe,
                    experiment.seed, experiment.detectors, progress,
                    fallback=lambda: SeasonalNaive(settings.season, settings.horizon))
    return run, inputs
