"""A run's gains come with paired day-bootstrap intervals
(retain.forecasting.backtest.significance), and benchmarks/forecast_day_bootstrap.py reads a
run's per-step forecasts into per-day MAEs."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scipy")
from retain.forecasting.backtest.significance import gain_interval  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from forecast_day_bootstrap import run_daily_mae  # noqa: E402


def _run_dir(tmp_path: Path) -> Path:
    times = pd.date_range("2024-01-01", periods=6, freq="8h")  # 3 steps a day, 2 days
    pd.DataFrame({"time": times, "actual": [1.0, 2, 3, 4, 5, 6],
                  "a": [1.5, 2, 3, 4, 5, 9], "a lo80": 0.0,
                  "b": [1.0, 2, 6, 4, 4, 6]}).to_csv(tmp_path / "forecasts.csv", index=False)
    return tmp_path


def test_daily_mae_averages_each_days_steps(tmp_path):
    days = run_daily_mae(_run_dir(tmp_path), ["a", "b"])
    assert list(days.index) == ["2024-01-01", "2024-01-02"]
    np.testing.assert_allclose(days["a"], [0.5 / 3, 1.0])
    np.testing.assert_allclose(days["b"], [1.0, 1 / 3])


def test_a_missing_approach_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"no column\(s\) \['c'\]"):
        run_daily_mae(_run_dir(tmp_path), ["a", "c"])


def test_the_interval_resolves_a_clear_gain_and_spans_zero_without_one():
    rng = np.random.default_rng(0)
    theirs = rng.uniform(1, 2, 200)
    low, high = gain_interval(0.8 * theirs + rng.normal(0, 0.01, 200), theirs)
    assert 0.18 < low < 0.2 < high < 0.22  # a 20% gain on 200 days: resolved
    low, high = gain_interval(theirs * rng.uniform(0.5, 1.5, 200), theirs)
    assert low < 0 < high  # no real gain: the interval spans zero


def test_days_are_resampled_in_pairs():
    """Hard days are hard for both: resampled apart, a steady 5% gain on very uneven days
    would look unresolved."""
    rng = np.random.default_rng(1)
    theirs = rng.lognormal(0, 1, 60)
    low, high = gain_interval(0.95 * theirs, theirs)
    assert low == pytest.approx(0.05) and high == pytest.approx(0.05)


def test_too_few_days_give_no_interval_and_bad_shapes_are_named():
    assert all(np.isnan(gain_interval([1.0], [2.0])))
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        gain_interval([1.0, 2, 3], [1.0, 2])
