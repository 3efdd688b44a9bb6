"""benchmarks/forecast_days.py: a finished run's chosen days, their weather, and the gain on
the fresh-retrain days without them, computed by hand on a small run folder."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import forecast_days  # noqa: E402


def _run(tmp_path: Path) -> Path:
    """Two elecdemand days (2014-03-03, a Monday, and 2014-03-10, Labour Day: a weekday that
    is no working day), two steps each; a errs 1 then 3, b 2 then 2."""
    times = pd.to_datetime(["2014-03-03 00:00", "2014-03-03 00:30",
                            "2014-03-10 00:00", "2014-03-10 00:30"])
    pd.DataFrame({"time": times, "actual": 4.0, "a": [5.0, 5, 7, 1], "a lo80": 0.0,
                  "b": [2.0, 6, 6, 2]}).to_csv(tmp_path / "forecasts.csv", index=False)
    (tmp_path / "results.json").write_text(json.dumps(
        {"config": {"series": "elecdemand", "target": "Demand", "hyper": {}}}))
    return tmp_path


def test_days_their_weather_and_the_gain_without_them(tmp_path, monkeypatch, capsys):
    out = _run(tmp_path)
    assert forecast_days.approaches(out) == ["a", "b"]
    monkeypatch.setattr(sys, "argv", ["forecast_days.py", str(out), "--a", "a", "--b", "b",
                                      "--every", "1", "--day", "2014-03-10"])
    forecast_days.main()
    lines = capsys.readouterr().out.splitlines()
    temperature = forecast_days.load("elecdemand").frame.loc["2014-03-10", "Temperature"]
    assert lines[0].startswith("2014-03-10 (Monday): MAE a 3.000, b 2.000; ")
    assert f"Temperature max {temperature.max():.1f} mean {temperature.mean():.1f}" in lines[0]
    assert lines[1].split(":")[1].strip() == "a 2.0000, b 2.0000, gain +0.0%"  # both days
    assert lines[2].split(":")[1].strip() == "a 1.0000, b 2.0000, gain +50.0%"  # without it
    assert lines[3].startswith("weekday holidays") and "1 days: a 3.0000" in lines[3]


def test_a_day_the_run_did_not_forecast_is_named(tmp_path, monkeypatch):
    out = _run(tmp_path)
    monkeypatch.setattr(sys, "argv", ["forecast_days.py", str(out), "--day", "2014-05-01"])
    with pytest.raises(SystemExit, match="2014-05-01 is not a forecast day"):
        forecast_days.main()
