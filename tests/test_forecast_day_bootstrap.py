"""The fresh-day bootstrap (benchmarks/forecast_day_bootstrap.py) reads a forecast run's
per-step forecasts into per-day MAEs and puts a paired interval around A's MAE over B's."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scipy")
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from forecast_day_bootstrap import daily_mae, relative_gap  # noqa: E402


def _run_dir(tmp_path: Path) -> Path:
    times = pd.date_range("2024-01-01", periods=6, freq="8h")  # 3 steps a day, 2 days
    pd.DataFrame({"time": times, "actual": [1.0, 2, 3, 4, 5, 6],
                  "a": [1.5, 2, 3, 4, 5, 9], "a lo80": 0.0,
                  "b": [1.0, 2, 6, 4, 4, 6]}).to_csv(tmp_path / "forecasts.csv", index=False)
    return tmp_path


def test_daily_mae_averages_each_days_steps(tmp_path):
    days = daily_mae(_run_dir(tmp_path), ["a", "b"])
    assert list(days.index) == ["2024-01-01", "2024-01-02"]
    np.testing.assert_allclose(days["a"], [0.5 / 3, 1.0])
    np.testing.assert_allclose(days["b"], [1.0, 1 / 3])


def test_a_missing_approach_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"no column\(s\) \['c'\]"):
        daily_mae(_run_dir(tmp_path), ["a", "c"])


def test_the_interval_brackets_the_gap_and_resolves_a_clear_one():
    rng = np.random.default_rng(0)
    b = rng.uniform(1, 2, 200)
    gap, low, high = relative_gap(0.8 * b + rng.normal(0, 0.01, 200), b, resamples=2000)
    assert low < gap < high < 0  # a 20% gain on 200 days: resolved
    noisy = b * rng.uniform(0.5, 1.5, 200)
    gap, low, high = relative_gap(noisy, b, resamples=2000)
    assert low < 0 < high  # no real gain: the interval spans zero
