"""``retain forecast``: the quick run end to end, a user's CSV, and bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from retain.cli import app, main
from retain.forecasting.bundle import load_forecaster, load_hybrid
from retain.forecasting.data import synthetic


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast")
    result = CliRunner().invoke(app, ["forecast", "--quick", "--threads", "1", "--out",
                                      str(out), "--json", "--plot-days", "2014-01-30",
                                      "--log", "csv", "--log-dir", str(out / "logs"),
                                      "--hybrid-members", "2"])
    assert result.exit_code == 0, result.output
    return out, result


def test_the_run_is_logged_day_by_day_with_its_summary(quick_run):
    import csv

    out, result = quick_run
    summary = json.loads(result.stdout)
    folder = out / "logs" / "csv" / f"forecast-{out.name}"
    with open(folder / "scalars.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    daily = [r for r in rows if r["name"].startswith("mae_7day/")]
    assert sorted({int(r["step"]) for r in daily}) == list(range(summary["days"]))
    for name, a in summary["approaches"].items():
        logged = [float(r["value"]) for r in rows if r["name"] == f"{name}/mae"]
        assert logged == pytest.approx([a["mae"]])
    assert (folder / "summary.csv").read_text().startswith("#,approach,kind,MAE")
    assert list(folder.glob("*.png"))


def test_quick_run_writes_the_report_and_prints_json(quick_run):
    out, result = quick_run
    summary = json.loads(result.stdout)
    assert summary["days"] == 5 and summary["first_day"].startswith("2014-01-29")
    assert list(summary["approaches"]) == sorted(
        summary["approaches"], key=lambda n: summary["approaches"][n]["mae"])  # ranked
    assert set(summary["approaches"]) == {
        "seasonal-naive", "mstl", "gbm", "replay", "hybrid", "hybrid-retrain"}
    assert summary["approaches"]["seasonal-naive"]["update_samples"] == 0
    assert summary["approaches"]["hybrid-retrain"]["daily_retrain_extrapolated"][
        "samples"] > 0
    assert summary["acceptance"]["best_incremental"] in ("replay", "hybrid")
    assert "mae_gain_over_mstl" in summary["acceptance"]
    assert set(summary["approaches"]["hybrid"]["intervals"]) == {"days", "80", "95"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"]["approaches"].keys() == summary["approaches"].keys()
    assert len(saved["daily_mae"]["seasonal-naive"]) == 5
    assert saved["config"]["pretrain_days"] == 28
    assert saved["config"]["hyper"]["hybrid_members"] == 2  # beside --quick's own settings
    assert saved["config"]["hyper"]["retrain_every"] == 2
    assert json.loads((out / "hybrid" / "hybrid.json").read_text())["members"] == 2
    assert saved["summary"]["approaches"]["hybrid"]["chosen"]["base_window_steps"] == 21 * 48
    for name in ("forecast_days.png", "daily_mae.png", "compute.png", "forecasts.csv"):
        assert (out / name).stat().st_size > 1000
    page = (out / "index.html").read_text()
    assert "<img src='daily_mae.png'" in page and "MAE per month" in page
    assert "Settings chosen on the pre-training period" in page
    assert "5 forecast days" in result.stderr  # the table goes to stderr, JSON to stdout


def test_the_saved_model_carries_its_scaler_and_reproduces_forecasts(quick_run):
    out, _ = quick_run
    model, meta = load_forecaster(out / "model")
    assert meta["scaler"].names[0] == "Demand" and meta["windows"].lookback == 96
    x = torch.zeros(1, len(meta["scaler"].names), 96)
    assert model(x).shape == (1, 48)
    hybrid = load_hybrid(out / "hybrid")  # the hybrid as it stands after the last day
    assert hybrid.meta["target"] == "Demand" and hybrid.horizon == 48


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A user's one-column CSV of 33 days: 28 pre-trained, 3 forecast, 2 for later."""
    folder = tmp_path_factory.mktemp("tiny")
    rows = synthetic(days=33, freq="1h").frame[["Demand"]]
    rows.reset_index().to_csv(folder / "load.csv", index=False)
    result = CliRunner().invoke(app, [
        "forecast", "--csv", str(folder / "load.csv"), "--time-col", "time", "--target-col",
        "Demand", "--quick", "--days", "3", "--approaches", "seasonal-naive,replay,hybrid",
        "--drift", "none", "--workers", "1", "--threads", "1", "--out", str(folder / "out")])
    assert result.exit_code == 0, result.output
    return folder / "out", rows, result


def test_the_results_table_goes_to_stdout_and_the_progress_to_stderr(tiny_run):
    _, _, result = tiny_run
    assert "3 forecast days, 2024-01-29 to 2024-01-31" in result.stdout
    table = [line for line in result.stdout.splitlines() if "incremental" in line]
    assert [line.split()[3] for line in table] == ["hybrid", "replay"]  # ranked rows
    assert "best daily-updated approach" in result.stdout
    assert "3/3" in result.stderr and "wall time" in result.stderr  # the bar, then the files
    assert "forecaster/ (hybrid)" in result.stderr
    assert "forecast days" not in result.stderr and "wall time" not in result.stdout


def test_the_run_saves_its_forecaster_which_goes_on_from_the_runs_last_day(tiny_run):
    from retain.forecasting import Experiment, run_experiment
    from retain.forecasting.data import read_series
    from retain.forecasting.forecaster import Forecaster

    out, rows, _ = tiny_run
    f = Forecaster.load(out / "forecaster")
    assert f.approach_name == "hybrid" and f.days_learned == 31  # the 3 days run, learnt
    daily = json.loads((out / "results.json").read_text())["daily_mae"]["hybrid"]
    assert [s["mae"] for s in f.scores] == pytest.approx(daily, rel=1e-9)  # the run's days
    tomorrow = f.forecast()
    assert tomorrow.index[0] == rows.index[31 * 24] and len(tomorrow) == 24
    # what the same backtest, one day longer, forecast for that day
    series = read_series(out.parent / "load.csv", "time", "Demand")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        longer, _ = run_experiment(series, Experiment.quick(
            approaches=("seasonal-naive", "replay", "hybrid"), days=4, detectors=()))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(tomorrow["forecast"].to_numpy(),
                               longer.runs["hybrid"].forecasts[3], rtol=1e-6)
    scored = f.update(rows.iloc[31 * 24:32 * 24])
    assert list(scored.index) == [rows.index[31 * 24]] and f.days_learned == 32
    assert f.forecast().index[0] == rows.index[32 * 24]


def test_a_users_csv_runs_through_the_same_command(tmp_path):
    path = tmp_path / "load.csv"
    synthetic(days=12, freq="1h").frame.reset_index().to_csv(path, index=False)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "forecast", "--csv", str(path), "--time-col", "time", "--target-col", "Demand",
        "--covariates", "Temperature,WorkDay", "--known-future", "WorkDay", "--quick",
        "--pretrain-days", "8", "--days", "3", "--lookback", "48", "--approaches",
        "seasonal-naive,incremental-adam,retrain", "--drift", "none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["series"] == "load.csv"
    assert set(saved["summary"]["approaches"]) == {"seasonal-naive", "incremental-adam",
                                                    "retrain"}
    forecasts = pd.read_csv(out / "forecasts.csv", index_col="time")
    assert len(forecasts) == 3 * 24
    assert list(forecasts.columns[:6]) == ["actual", *(
        f"seasonal-naive{s}" for s in ("", " lo80", " hi80", " lo95", " hi95"))]
    assert forecasts["retrain lo95"].isna().all()  # 3 days: too few past errors for bounds


def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,load\n2024-01-01 00:00,1\n2024-01-01 01:00,x\n2024-01-01 02:00,3\n")
    out = tmp_path / "report"
    monkeypatch.setattr(sys, "argv", ["retain", "forecast", "--csv", str(bad), "--time-col",
                                      "time", "--target-col", "load", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: column 'load', row 2: 'x' is not a number"]
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--approaches", "frozen,magic"], "unknown approach 'magic'; choose one of"),
    (["--model", "transformer"], "unknown model 'transformer'"),
    (["--plot-days", "2013-05-01"], "is not a forecast day"),
    (["--csv", "missing.csv", "--time-col", "t", "--target-col", "y"], "not found"),
    (["--csv", "x.csv"], "--csv needs --time-col and --target-col"),
    (["--hybrid-members", "0"], "--hybrid-members must be >= 1, got 0"),
    (["--known-future", "Humidity"], "known-future column(s) ['Humidity'] must also be"),
    (["--covariates", "Rain"], "no covariate(s) ['Rain'] in this series"),
    (["--freq", "h", "--fill", "ffill"], "--freq, --fill apply to --csv only"),
])
def test_bad_options_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["forecast", "--quick", "--out", str(out), *args])
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not out.exists()


def test_validate_forecasts_only_days_inside_the_pretraining_period(tmp_path):
    out = tmp_path / "val"
    result = CliRunner().invoke(app, ["forecast", "--quick", "--validate", "3", "--approaches",
                                      "seasonal-naive,incremental-adam", "--out", str(out),
                                      "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["days"] == 3
    assert summary["first_day"].startswith("2014-01-26")  # pre-training is 28 days
    assert summary["last_day"].startswith("2014-01-28")


def test_a_bundled_series_takes_a_choice_of_its_own_inputs():
    from retain.cli.forecast import _load

    kept = _load("elecdemand", None, None, None, "", "", None, None)
    assert (kept.covariates, kept.known_future) == (("Temperature", "WorkDay"), ("WorkDay",))
    perfect = _load("elecdemand", None, None, None, "", "WorkDay,Temperature", None, None)
    assert perfect.known_future == ("WorkDay", "Temperature")
    alone = _load("elecdemand", None, None, None, "WorkDay", "", None, None)
    assert (alone.covariates, alone.known_future) == (("WorkDay",), ("WorkDay",))
    assert list(alone.frame.columns) == ["Demand", "WorkDay"]
