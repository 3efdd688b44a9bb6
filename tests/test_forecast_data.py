"""Series loading: the bundled data, a CSV/Parquet round trip, and every bad-input error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.errors import RetainError
from retain.forecasting.backtest import plan
from retain.forecasting.data import elecdemand, from_frame, read_series, synthetic
from retain.forecasting.experiment import Experiment


def _table(rows: int = 48, freq: str = "30min") -> pd.DataFrame:
    times = pd.date_range("2024-03-01", periods=rows, freq=freq)
    return pd.DataFrame({"ts": times.strftime("%Y-%m-%d %H:%M:%S"),
                         "load": np.arange(rows, dtype=float) + 1.0,
                         "temp": np.linspace(10, 20, rows)})


def test_elecdemand_has_the_documented_shape_and_index():
    series = elecdemand()
    frame = series.frame
    assert frame.shape == (17520, 3)
    assert frame.index[0] == pd.Timestamp("2014-01-01 00:00")
    assert frame.index[-1] == pd.Timestamp("2014-12-31 23:30")
    assert series.freq == "30min" and series.steps_in("1D") == 48
    assert series.known_future == ("WorkDay",)
    assert 2.8 < frame["Demand"].min() and frame["Demand"].max() < 9.4


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_through_a_file_keeps_values_index_and_frequency(tmp_path, suffix):
    original = synthetic(days=3, freq="15min")
    table = original.frame.reset_index()
    path = tmp_path / f"series{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    loaded = read_series(path, "time", "Demand", ["Temperature", "WorkDay"], ["WorkDay"])
    assert loaded.freq == "15min"
    assert loaded.known_future == ("WorkDay",)
    assert (loaded.frame.index == original.frame.index).all()
    np.testing.assert_allclose(loaded.frame.to_numpy(), original.frame.to_numpy(), rtol=1e-12)


def test_frequency_is_inferred_or_taken_as_given():
    assert from_frame(_table(freq="h"), "ts", "load").freq == "h"
    assert from_frame(_table(freq="D"), "ts", "load", freq="D").freq == "D"
    with pytest.raises(RetainError, match="unknown frequency 'fortnightly'"):
        from_frame(_table(), "ts", "load", freq="fortnightly")


def test_missing_column_names_the_column_and_lists_the_others():
    with pytest.raises(RetainError, match=r"column 'demand' not found in the table; .*ts, load"):
        from_frame(_table(), "ts", "demand")
    with pytest.raises(RetainError, match="column 'humidity' not found"):
        from_frame(_table(), "ts", "load", covariates=["humidity"])


def test_unparseable_timestamp_names_row_and_value():
    table = _table()
    table.loc[5, "ts"] = "not a time"
    with pytest.raises(RetainError, match=r"time column 'ts', row 6: cannot parse 'not a time'"):
        from_frame(table, "ts", "load")


def test_duplicated_and_unsorted_steps_name_the_row():
    table = _table()
    table.loc[7, "ts"] = table.loc[6, "ts"]
    with pytest.raises(RetainError, match=r"row 8 \(2024-03-01 03:00:00\) repeats row 7"):
        from_frame(table, "ts", "load")
    table = _table()
    table.loc[[3, 4], "ts"] = table.loc[[4, 3], "ts"].to_numpy()
    with pytest.raises(RetainError, match="row 5 .* is earlier than row 4"):
        from_frame(table, "ts", "load")


def test_irregular_step_is_an_error_naming_the_row():
    table = _table()
    table.loc[10, "ts"] = "2024-03-01 05:07:00"  # between 05:00 and 05:30
    with pytest.raises(RetainError, match=r"row 11 \(2024-03-01 05:07:00\) is off the regular "
                                          r"30min grid"):
        from_frame(table, "ts", "load")


def test_gap_is_an_error_unless_fill_is_asked_for():
    table = _table().drop(index=[10, 11]).reset_index(drop=True)
    with pytest.raises(RetainError, match=r"2 missing 30min step\(s\), the first at "
                                          r"2024-03-01 05:00:00 .*--fill"):
        from_frame(table, "ts", "load")
    filled = from_frame(table, "ts", "load", fill="interpolate")
    assert len(filled) == 48
    np.testing.assert_allclose(filled.frame["load"].to_numpy(), np.arange(48) + 1.0)
    forward = from_frame(table, "ts", "load", fill="ffill")
    assert forward.frame["load"].iloc[10] == forward.frame["load"].iloc[11] == 10.0


def test_non_numeric_and_missing_targets_name_row_and_column():
    table = _table().astype({"load": object})
    table.loc[4, "load"] = "n/a"
    with pytest.raises(RetainError, match=r"column 'load', row 5: 'n/a' is not a number"):
        from_frame(table, "ts", "load")
    table = _table()
    table.loc[[4, 9], "temp"] = np.nan
    with pytest.raises(RetainError, match=r"column 'temp', row 5 .* missing .* \(2 such"):
        from_frame(table, "ts", "load", covariates=["temp"])
    filled = from_frame(table, "ts", "load", covariates=["temp"], fill="interpolate")
    assert np.isfinite(filled.frame["temp"]).all()


def test_bad_option_values_are_errors():
    with pytest.raises(RetainError, match="unknown fill 'mean'"):
        from_frame(_table(), "ts", "load", fill="mean")
    with pytest.raises(RetainError, match="must also be listed as covariates"):
        from_frame(_table(), "ts", "load", known_future=["temp"])
    with pytest.raises(RetainError, match="holds numbers, not timestamps"):
        from_frame(_table().assign(ts=range(48)), "ts", "load")


def test_series_shorter_than_the_windows_is_an_error(tmp_path):
    short = synthetic(days=3, freq="1h")
    with pytest.raises(RetainError, match="initial training period .* must be longer than "
                                          "lookback \\+ horizon"):
        plan(short, Experiment(pretrain_days=2))
    with pytest.raises(RetainError, match="ends before the first forecast"):
        plan(short, Experiment(pretrain_days=3, lookback=24))


def test_file_problems_are_errors(tmp_path):
    with pytest.raises(RetainError, match="not found"):
        read_series(tmp_path / "nope.csv", "ts", "load")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RetainError, match="empty"):
        read_series(tmp_path / "empty.csv", "ts", "load")
    (tmp_path / "data.txt").write_text("ts,load\n")
    with pytest.raises(RetainError, match="not a CSV or Parquet file"):
        read_series(tmp_path / "data.txt", "ts", "load")


def test_calendar_frequencies_load_but_cannot_be_windowed_by_days():
    table = pd.DataFrame({"month": pd.date_range("2020-01-01", periods=30, freq="MS"),
                          "sales": np.arange(30.0)})
    series = from_frame(table, "month", "sales")
    assert series.freq == "MS"
    with pytest.raises(RetainError, match="vary in length"):
        plan(series, Experiment())
