"""Windows are views with the right rows; lead channels; the scaler sees training rows only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from retain.data import as_tensors
from retain.errors import RetainError
from retain.forecasting.data import synthetic
from retain.forecasting.features import calendar, make_inputs
from retain.forecasting.scaling import Scaler
from retain.forecasting.windows import Windows, WindowSpec


def _windows(rows=40, channels=2, spec=WindowSpec(6, 3, 2)):
    features = torch.arange(rows * channels, dtype=torch.float32).view(rows, channels)
    target = torch.arange(rows, dtype=torch.float32) * 10
    return Windows(features, target, spec), features, target


def test_every_window_holds_the_rows_its_origin_names():
    windows, features, target = _windows()
    assert list(windows.origins) == list(range(6, 38, 2))  # last origin + H <= 40
    for i, origin in enumerate(windows.origins):
        assert torch.equal(windows.x[i], features[origin - 6 : origin].t())
        assert torch.equal(windows.y[i], target[origin : origin + 3])


def test_windows_are_views_of_the_series_not_copies():
    windows, features, target = _windows()
    assert windows.x.untyped_storage().data_ptr() == features.untyped_storage().data_ptr()
    assert windows.y.untyped_storage().data_ptr() == target.untyped_storage().data_ptr()
    subset = windows.completed(0, 30)
    x, y = as_tensors(subset)  # the Learner's tensor fast path sees the same views
    assert x.untyped_storage().data_ptr() == features.untyped_storage().data_ptr()


@pytest.mark.parametrize("start,stop", [(0, 20), (20, 26), (13, 14), (0, 9), (37, 40)])
def test_completed_windows_are_exactly_those_whose_last_target_row_is_revealed(start, stop):
    windows, _, _ = _windows()
    chosen = windows.completed(start, stop)
    expected = [o for o in windows.origins if start <= o + 3 - 1 < stop]
    assert list(chosen.origins) == expected
    assert chosen.target_end <= stop


def test_day_by_day_sets_partition_all_windows_and_never_reach_the_next_origin():
    windows, _, _ = _windows(rows=60, spec=WindowSpec(8, 4, 1))
    seen: list[int] = []
    for origin in range(12, 56, 4):  # forecast [origin, origin + 4), then reveal it
        assert all(o + 4 <= origin for o in seen)  # no trained target reaches the forecast
        seen += list(windows.completed(origin, origin + 4).origins)
    assert seen == [o for o in windows.origins if 12 <= o + 3 < 56]


def test_input_at_is_the_lookback_before_the_origin():
    windows, features, _ = _windows()
    assert torch.equal(windows.input_at(10)[0], features[4:10].t())
    with pytest.raises(RetainError, match="history"):
        windows.input_at(3)


def test_too_short_series_and_bad_spec_are_errors():
    with pytest.raises(RetainError, match="shorter than lookback \\+ horizon"):
        Windows(torch.zeros(8, 1), torch.zeros(8), WindowSpec(6, 3))
    with pytest.raises(RetainError, match="lookback must be a positive integer"):
        WindowSpec(0, 3)


def test_scaler_statistics_match_hand_computation_and_round_trip():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = Scaler.fit(values, ["a", "b"])
    assert scaler.mean == (3.0, 5.0)
    assert scaler.std == (pytest.approx(np.sqrt(8 / 3)), 1.0)  # constant channel: std 1
    assert Scaler.from_dict(scaler.to_dict()) == scaler
    z = torch.tensor([0.5])
    assert scaler.inverse_target(z).item() == pytest.approx(3.0 + 0.5 * np.sqrt(8 / 3))
    with pytest.raises(RetainError, match="not a saved scaler"):
        Scaler.from_dict({"names": ["a"]})


def test_normalisation_is_fitted_on_the_training_rows_only():
    series = synthetic(days=10, freq="1h")
    train_end = 5 * 24
    inputs = make_inputs(series, train_end, horizon=24)
    demand = series.frame["Demand"].to_numpy()
    assert inputs.scaler.mean[0] == pytest.approx(demand[:train_end].mean())
    assert inputs.scaler.std[0] == pytest.approx(demand[:train_end].std())
    changed = series.frame.copy()
    changed.iloc[train_end:] *= 100  # later rows must not move the statistics
    again = make_inputs(replace(series, frame=changed), train_end, horizon=24)
    assert again.scaler == inputs.scaler


def test_lead_channels_show_the_horizon_and_past_channels_do_not():
    series = synthetic(days=6, freq="1h")
    H = 24
    inputs = make_inputs(series, 72, horizon=H, cycles=("day",))
    names = inputs.scaler.names
    assert names == ("Demand", "Temperature", "WorkDay", "day_sin", "day_cos")
    assert inputs.lead == (False, False, True, True, True)
    mean, std = np.array(inputs.scaler.mean[:3]), np.array(inputs.scaler.std[:3])
    scaled = (series.frame.to_numpy() - mean) / std
    features = inputs.features.numpy()
    np.testing.assert_allclose(features[:, :2], scaled[:, :2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features[:-H, 2], scaled[H:, 2], rtol=1e-5, atol=1e-6)
    clock = calendar(series.frame.index, ("day",))["day_sin"]
    lead_clock = features[:-H, 3] * inputs.scaler.std[3] + inputs.scaler.mean[3]
    np.testing.assert_allclose(lead_clock, clock[H:], atol=1e-5)


def test_calendar_cycles_are_wall_clock_phases():
    import pandas as pd

    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-08 00:00"])
    cycles = calendar(index, ("day", "week"))
    np.testing.assert_allclose(cycles["day_sin"], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(cycles["week_cos"][[0, 2]], [1, 1])  # Mondays, a week apart
    with pytest.raises(RetainError, match="unknown calendar cycle"):
        calendar(index, ("month",))
