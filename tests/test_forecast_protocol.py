"""The daily protocol: no leak of future values, baselines and metrics by hand, costs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from retain.forecasting import Experiment, run_experiment
from retain.forecasting.approaches import APPROACHES, Incremental, Recipe, Settings
from retain.forecasting.backtest.metrics import errors, errors_by_month
from retain.forecasting.backtest.protocol import Schedule, run_daily
from retain.forecasting.data import synthetic
from retain.forecasting.features import make_inputs, useful_cycles
from retain.forecasting.stratified import TimeStratifiedBuffer
from retain.forecasting.windows import Windows, WindowSpec
from retain.models.forecasting import ForecastCNN

H, L, PRETRAIN_DAYS, DAYS = 24, 48, 8, 4
SERIES = synthetic(days=PRETRAIN_DAYS + DAYS + 1, freq="1h")
FORECAST_DAY = 1  # the leak test changes every value from this forecast day on
#: approaches that need more than 8 days of history are checked in test_forecast_contenders
LONG_HISTORY = ("mstl", "gbm", "hybrid", "hybrid-retrain")
QUICK = Experiment.quick(lookback=L, pretrain_days=PRETRAIN_DAYS, days=DAYS,
                         approaches=tuple(a for a in APPROACHES if a not in LONG_HISTORY),
                         hyper={"epochs": 1, "retrain_every": 2, "replay_capacity": 64})


def _future_changed(series, origin: int):
    """The same series with every value not yet known at ``origin`` replaced by noise: the
    target and past-only covariates from the origin on, known-future ones after the horizon."""
    frame = series.frame.copy()
    noise = np.random.default_rng(1).normal(5, 3, frame.shape)
    for j, column in enumerate(frame.columns):
        start = origin + H if column in series.known_future else origin
        frame.iloc[start:, j] = noise[start:, j]
    return replace(series, frame=frame)


def _first_changed_day(run_a, run_b) -> dict[str, int | None]:
    """Per approach, the first forecast day whose forecast differs between two runs."""
    out = {}
    for name, a in run_a.runs.items():
        differs = np.flatnonzero(np.any(a.forecasts != run_b.runs[name].forecasts, axis=1))
        out[name] = int(differs[0]) if len(differs) else None
    return out


def test_no_approach_uses_a_value_before_it_is_revealed():
    """Changing the data from forecast day k on must leave every forecast up to day k
    bit-identical (they were issued before day k was revealed), and must change later ones
    (so the test would see a leak if there were one)."""
    run_a, _ = run_experiment(SERIES, QUICK)
    origin = int(run_a.origin_rows[FORECAST_DAY])
    run_b, _ = run_experiment(_future_changed(SERIES, origin), QUICK)
    first = _first_changed_day(run_a, run_b)
    for name in QUICK.approaches:
        assert first[name] is None or first[name] > FORECAST_DAY, f"{name} leaks: {first}"
    for name in ("frozen", "incremental-adam", "replay", "online-ewc", "retrain"):
        assert first[name] == FORECAST_DAY + 1, first  # the next day's input has changed


def test_protocol_hands_out_only_revealed_rows_before_each_forecast():
    run, _ = run_experiment(SERIES, QUICK)
    assert (run.trained_until <= run.origin_rows).all()
    assert list(np.diff(run.origin_rows)) == [24] * (DAYS - 1)
    assert run.origin_rows[0] == PRETRAIN_DAYS * 24


class _TrainsBeforeForecasting(Incremental):
    """A deliberately broken approach: learns the day it is about to forecast."""

    def __init__(self, windows: Windows):
        super().__init__("cheater", lambda p: torch.optim.Adam(p, lr=1e-2), epochs=3)
        self.windows = windows

    def forecast(self, x, past):
        origin = len(past)
        self.learner.learn(self.windows.completed(origin, origin + H), epochs=3)
        return super().forecast(x, past)


def _manual_run(series, train_rows: int, cheat: bool):
    cycles = useful_cycles(series)
    inputs = make_inputs(series, train_rows, H, cycles)
    windows = Windows(inputs.features, inputs.target, WindowSpec(L, H))

    def build():
        return ForecastCNN(inputs.features.shape[1], L, H, width=4)

    settings = Settings(horizon=H, season=168, period=24, build=build, epochs=1)
    approach = _TrainsBeforeForecasting(windows) if cheat else APPROACHES["incremental-adam"](
        settings)
    schedule = Schedule(WindowSpec(L, H), PRETRAIN_DAYS * 24, 24, DAYS)
    return run_daily(series, inputs, [approach], schedule, build, Recipe(epochs=1),
                     detectors=())


@pytest.mark.parametrize("cheat,train_rows,leaks", [
    (False, PRETRAIN_DAYS * 24, False),
    (True, PRETRAIN_DAYS * 24, True),  # trains on the day before forecasting it
    (False, len(SERIES), True),  # normalisation fitted on the whole series
])
def test_the_leak_test_catches_leaks(cheat, train_rows, leaks):
    run_a = _manual_run(SERIES, train_rows, cheat)
    origin = int(run_a.origin_rows[FORECAST_DAY])
    run_b = _manual_run(_future_changed(SERIES, origin), train_rows, cheat)
    first = next(iter(_first_changed_day(run_a, run_b).values()))
    assert (first is not None and first <= FORECAST_DAY) == leaks


def test_seasonal_naive_repeats_the_value_one_week_earlier():
    series = synthetic(days=12, freq="1h")
    experiment = Experiment.quick(lookback=48, pretrain_days=8, days=3,
                                  approaches=("seasonal-naive",), detectors=())
    run, _ = run_experiment(series, experiment)
    demand = series.frame["Demand"].to_numpy()
    for day, origin in enumerate(run.origin_rows):
        np.testing.assert_allclose(run.runs["seasonal-naive"].forecasts[day],
                                   demand[origin - 168 : origin - 168 + H], rtol=1e-6)
        np.testing.assert_array_equal(run.actual[day], demand[origin : origin + H])


def test_retrain_cost_extrapolation_counts_every_days_history():
    run, _ = run_experiment(SERIES, QUICK)
    retrain = run.runs["retrain"]
    would_seconds, would_samples = retrain.daily_retrain
    # history after day d: windows whose targets end by the end of day d
    expected = [len(range(L, origin + 24 - H + 1)) for origin in run.origin_rows]
    # one epoch per retrain in the quick recipe; the last day is learned too
    assert list(would_samples) == expected
    measured = retrain.samples > 0
    assert list(np.flatnonzero(measured)) == [1, 3]  # every 2nd day of 4 updates
    rate = retrain.seconds.sum() / retrain.samples.sum()
    np.testing.assert_allclose(would_seconds, would_samples * rate)


def test_daily_work_beside_the_retrains_is_added_as_measured_not_spread_over_samples():
    from types import SimpleNamespace

    from retain.forecasting.backtest.protocol import _extrapolated

    # retrain every 2 days; every update also spends 1 s on work a daily retrain would
    # do as well (the hybrid's base refresh), the retrains 4 s on 100 samples each
    approach = SimpleNamespace(kind="retrain", every=2, daily_samples=[100, 100, 100, 100],
                               fit_seconds=[0.0, 4.0, 0.0, 4.0])
    seconds = np.array([1.0, 5.0, 1.0, 5.0])
    samples = np.array([0, 100, 0, 100])
    would_seconds, would = _extrapolated(approach, seconds, samples)
    np.testing.assert_array_equal(would, [100, 100, 100, 100])
    np.testing.assert_allclose(would_seconds, [5.0, 5.0, 5.0, 5.0])  # 1 s + 100 x 0.04 s
    del approach.fit_seconds  # without the split: all seconds are training seconds
    np.testing.assert_allclose(_extrapolated(approach, seconds, samples)[0], [6.0] * 4)


def test_replay_counts_replayed_rows_as_processed_samples():
    run, _ = run_experiment(SERIES, QUICK)
    plain, replay = run.runs["incremental-adam"].samples, run.runs["replay"].samples
    assert plain[0] == replay[0] == 24  # day 1: the memory is still empty
    assert list(replay[1:-1]) == [2 * n for n in plain[1:-1]]


def test_errors_match_hand_computation():
    actual = np.array([[1.0, 2.0], [4.0, 5.0]])
    forecast = np.array([[2.0, 2.0], [2.0, 5.0]])
    got = errors(actual, forecast)
    assert got["mae"] == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert got["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4 + 0) / 4))
    assert got["mape"] == pytest.approx((1 / 1 + 0 + 2 / 4 + 0) / 4 * 100)
    times = pd.DatetimeIndex(["2024-01-31", "2024-01-31", "2024-02-01", "2024-02-01"])
    months = errors_by_month(actual, forecast, times)
    assert months["2024-01"]["mae"] == pytest.approx(0.5)
    assert months["2024-02"]["mape"] == pytest.approx(25.0)


def test_zero_actuals_are_left_out_of_mape_only():
    got = errors(np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    assert got["mae"] == 1.0 and got["mape"] == pytest.approx(50.0)


def test_time_stratified_buffer_keeps_every_stratum_equally():
    buffer = TimeStratifiedBuffer(capacity=50, stratum_size=100, seed=0)
    for start in range(0, 1000, 25):
        rows = torch.arange(start, start + 25, dtype=torch.float32)
        buffer.add(x=rows.view(-1, 1), y=rows)
    strata = (buffer.contents()["y"] // 100).long()
    counts = torch.bincount(strata, minlength=10)
    assert counts.sum() == 50 and counts.max() - counts.min() <= 1
    restored = TimeStratifiedBuffer(capacity=50, stratum_size=100)
    restored.load_state_dict(buffer.state_dict())
    assert restored.class_slots == buffer.class_slots
    assert torch.equal(restored.contents()["x"], buffer.contents()["x"])


def test_regression_model_learns_under_the_protocol():
    """Sanity check that the updates do something: the incremental model's training loss on
    the revealed days falls below the frozen model's error on the same days."""
    series = synthetic(days=20, freq="1h")
    experiment = Experiment.quick(lookback=48, pretrain_days=8, days=11,
                                  approaches=("frozen", "incremental-adam"), detectors=(),
                                  hyper={"epochs": 3, "adam_lr": 3e-3})
    run, _ = run_experiment(series, experiment)
    frozen = np.abs(run.runs["frozen"].forecasts - run.actual).mean()
    updated = np.abs(run.runs["incremental-adam"].forecasts - run.actual).mean()
    assert updated < frozen
    assert isinstance(run.runs["incremental-adam"].model, nn.Module)


def test_stride_thins_the_windows_each_update_learns():
    experiment = replace(QUICK, stride=3, approaches=("incremental-adam", "replay-stratified"),
                         detectors=())
    run, _ = run_experiment(SERIES, experiment)
    assert list(run.runs["incremental-adam"].samples[:-1]) == [8] * (DAYS - 1)  # 24 / 3
