"""The forecast store: a deployed forecaster fed each measured day through the store's verbs
(init, update, predict, history, rollback, export), gated, versioned and crash safe."""

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from retain.cli import app
from retain.errors import RetainError
from retain.forecasting import synthetic
from retain.forecasting.experiment import Experiment
from retain.forecasting.forecaster import Forecaster
from retain.forecasting.hybrid import Hybrid
from retain.store.forecasts import ForecastStore, open_store

DAY = 24
SERIES = synthetic(days=48)
FRAME = SERIES.frame.reset_index()
HISTORY_DAYS = 40
INIT = {"time": "time", "label": "Demand", "covariates": ["Temperature", "WorkDay"],
        "known_future": ["WorkDay"], "experiment": Experiment.quick()}


def _days(first: int, last: int) -> pd.DataFrame:
    """Rows of days ``[first, last)`` of the series, as a file would hold them."""
    return FRAME.iloc[first * DAY:last * DAY]


def _future(day: int) -> pd.DataFrame:
    return FRAME.iloc[day * DAY:(day + 1) * DAY][["time", "WorkDay"]]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact comparisons
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    torch.set_num_threads(1)
    store = ForecastStore(tmp_path_factory.mktemp("template") / "store")
    store.init(_days(0, HISTORY_DAYS), **INIT)
    return store.path


@pytest.fixture
def store(template, tmp_path):
    shutil.copytree(template, tmp_path / "store")
    return ForecastStore(tmp_path / "store")


def _snapshot(path):
    """Every file under ``path`` with its bytes (the lock file aside)."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock" and not p.name.endswith(("-wal", "-shm"))}


def test_the_store_forecasts_what_the_forecaster_fed_day_by_day_forecasts(store):
    direct = Forecaster("hybrid", Experiment.quick()).fit(
        replace_frame(SERIES, SERIES.frame.iloc[:HISTORY_DAYS * DAY]))
    for day in range(HISTORY_DAYS, HISTORY_DAYS + 3):
        versions = store.update(_days(day, day + 1))
        assert [v.status for v in versions] == ["promoted"]
        scored = direct.update(SERIES.frame.iloc[day * DAY:(day + 1) * DAY])
        assert versions[0].metrics["mae"] == scored["mae"].iloc[0]  # the same forecast, scored
    served = store.predict(_future(HISTORY_DAYS + 3))
    expected = direct.forecast(_future(HISTORY_DAYS + 3).set_index("time"))
    np.testing.assert_array_equal(served["forecast"], expected["forecast"])
    np.testing.assert_array_equal(served["upper_95"], expected["upper_95"])
    assert (served["version"] == 4).all()
    assert served["time"].iloc[0] == pd.Timestamp(FRAME["time"].iloc[(HISTORY_DAYS + 3) * DAY])


def replace_frame(series, frame):
    from dataclasses import replace

    return replace(series, frame=frame)


def test_several_days_in_one_file_each_get_a_gated_version_and_partial_days_wait(store):
    rows = _days(HISTORY_DAYS, HISTORY_DAYS + 3).iloc[:-6]  # two days and 18 hours
    versions = store.update(rows)
    assert [(v.id, v.parent, v.status) for v in versions] == [(2, 1, "promoted"),
                                                              (3, 2, "promoted")]
    assert versions[1].metrics["forecast_by"] == 2 and versions[1].metrics["days_learned"] == 1
    assert store.update(rows) == []  # the same rows again: nothing new, nothing learnt
    assert len(store.history()) == 3
    last = store.update(_days(HISTORY_DAYS + 2, HISTORY_DAYS + 3).iloc[-6:])
    assert [v.id for v in last] == [4] and last[0].data_rows == DAY
    assert store.load().days_learned == HISTORY_DAYS + 3


def test_a_rejected_day_leaves_the_parent_serving_and_is_learnt_with_the_next(
        store, monkeypatch):
    update = Hybrid.update

    def diverging(self, new, history):  # an update step that blows the correction up
        stats = update(self, new, history)
        with torch.no_grad():
            for p in self.learner.model.parameters():
                p.mul_(-50.0)
        self.weight = 1.0
        return stats

    monkeypatch.setattr(Hybrid, "update", diverging)
    [rejected] = store.update(_days(HISTORY_DAYS, HISTORY_DAYS + 1))
    assert rejected.status == "rejected" and "made the learnt 1 day worse" in rejected.reason
    assert rejected.metrics["hindsight_mae"] > rejected.metrics["mae_before"]
    assert store.history()[0].current  # version 1 serves on
    # it forecasts from the latest observed day, with its own weights
    served = store.predict(_future(HISTORY_DAYS + 1))
    assert (served["version"] == 1).all()
    assert served["time"].iloc[0] == FRAME["time"].iloc[(HISTORY_DAYS + 1) * DAY]
    monkeypatch.setattr(Hybrid, "update", update)
    [promoted] = store.update(_days(HISTORY_DAYS + 1, HISTORY_DAYS + 2))
    assert promoted.status == "promoted" and promoted.parent == 1
    assert promoted.metrics["days_learned"] == 2  # the rejected day was not discarded
    assert store.load().days_learned == HISTORY_DAYS + 2


def _edit(frame: pd.DataFrame, **changes) -> pd.DataFrame:
    frame = frame.copy()
    for what, value in changes.items():
        if what == "drop":
            frame = frame.drop(columns=[value])
        elif what == "add":
            frame[value] = 1.0
        elif what == "nan":
            frame.loc[frame.index[3], value] = np.nan
        elif what == "rows":
            frame = frame.iloc[value].reset_index(drop=True)
        elif what == "shift":
            frame.loc[frame.index[5], "time"] += pd.Timedelta(value)
    return frame


DAY_ROWS = _days(HISTORY_DAYS, HISTORY_DAYS + 1)


@pytest.mark.parametrize("rows, message", [
    (_edit(DAY_ROWS, drop="Temperature"), r"missing \['Temperature'\]"),
    (_edit(DAY_ROWS, add="Humidity"), r"unexpected \['Humidity'\]"),
    (_edit(DAY_ROWS, drop="time"), "lacks the time column 'time'"),
    (_edit(DAY_ROWS, nan="Demand"), "column 'Demand' has a missing or infinite value at"),
    (_edit(DAY_ROWS, rows=[0, 1, 1, 2]), "appears twice"),
    (_edit(DAY_ROWS, rows=[0, 2, 1, 3]), "not in increasing order"),
    (_edit(DAY_ROWS, rows=[0, 1, 3, 4]), "a gap"),
    (_edit(DAY_ROWS, shift="10min"), "got 2024-02-10 05:10:00"),
    (_edit(_days(HISTORY_DAYS - 1, HISTORY_DAYS).assign(Demand=1.0)),
     "was already learnt with other values"),
])
def test_bad_rows_are_named_and_nothing_saved_changes(store, rows, message):
    before = _snapshot(store.path)
    with pytest.raises(RetainError, match=message):
        store.update(rows)
    assert _snapshot(store.path) == before


def test_a_forecast_needs_the_known_future_covariates(store):
    with pytest.raises(RetainError, match="known-future column"):
        store.predict()
    with pytest.raises(RetainError, match="future lacks 12 of the 24 steps"):
        store.predict(_future(HISTORY_DAYS).iloc[:12])


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_the_command_line_runs_the_daily_job(tmp_path, template):
    shutil.copytree(template, tmp_path / "st")
    st = tmp_path / "st"
    _days(HISTORY_DAYS, HISTORY_DAYS + 1).to_csv(tmp_path / "day.csv", index=False)
    _future(HISTORY_DAYS + 1).to_csv(tmp_path / "future.csv", index=False)
    done = invoke("update", "--store", st, "--data", tmp_path / "day.csv")
    assert done.exit_code == 0 and "version 2 promoted" in done.output
    again = invoke("update", "--store", st, "--data", tmp_path / "day.csv")
    assert again.exit_code == 0 and "no day completed" in again.output
    predicted = invoke("predict", "--store", st, "--data", tmp_path / "future.csv")
    assert predicted.exit_code == 0
    lines = predicted.stdout.splitlines()
    assert lines[0] == "time,forecast,lower_80,upper_80,lower_95,upper_95,version"
    assert len(lines) == 1 + DAY and lines[1].endswith(",2")
    history = invoke("history", "--store", st)
    assert "forecast store" in history.stdout and "*2" in history.stdout
    assert invoke("rollback", "--store", st).exit_code == 0
    assert open_store(st).history()[0].current
    back = invoke("predict", "--store", st, "--data", tmp_path / "future.csv")
    assert back.stdout.splitlines()[1].endswith(",1")  # same day forecast, by version 1
    assert invoke("export", "--store", st, "--out", tmp_path / "exported").exit_code == 0
    exported = Forecaster.load(tmp_path / "exported")
    assert exported.days_learned == HISTORY_DAYS
    before = _snapshot(st)
    bad = subprocess.run([sys.executable, "-m", "retain.cli", "update", "--store", str(st),
                          "--data", str(tmp_path / "future.csv")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "missing ['Demand', 'Temperature']" in bad.stderr
    assert _snapshot(st) == before


def test_init_from_the_command_line(tmp_path):
    _days(0, HISTORY_DAYS).to_csv(tmp_path / "history.csv", index=False)
    done = invoke("init", "--store", tmp_path / "st", "--data", tmp_path / "history.csv",
                  "--time", "time", "--label", "Demand", "--task", "forecast",
                  "--covariates", "Temperature,WorkDay", "--known-future", "WorkDay",
                  "--horizon", "12", "--quick")
    assert done.exit_code == 0 and f"{HISTORY_DAYS} days learnt" in done.output
    store = open_store(tmp_path / "st")
    assert isinstance(store, ForecastStore) and store.load().horizon == 12
    assert len(store.predict(_future(HISTORY_DAYS))) == 12


def _update_in_child(path, rows, started) -> None:
    torch.set_num_threads(1)
    started.set()
    ForecastStore(path).update(rows)


def test_sigkill_during_an_update_leaves_the_store_serving_and_the_rows_kept(store):
    rows = _days(HISTORY_DAYS, HISTORY_DAYS + 2)
    fork = multiprocessing.get_context("fork")
    for delay in (0.2, 0.6, 1.0):
        started = fork.Event()
        child = fork.Process(target=_update_in_child, args=(store.path, rows, started))
        child.start()
        started.wait(30)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        history = store.history()
        assert sum(v.current for v in history) == 1
        assert store.load().days_learned >= HISTORY_DAYS  # the current version loads
    store.update(rows)  # the next update finishes the work
    assert store.load().days_learned == HISTORY_DAYS + 2
    assert len(store.observed()) == (HISTORY_DAYS + 2) * DAY
    leftovers = [p for p in store.path.rglob(".tmp-*")]
    assert leftovers == []


def test_init_refuses_an_existing_store(store):
    before = _snapshot(store.path)
    with pytest.raises(RetainError, match="already a retain store"):
        ForecastStore(store.path).init(_days(0, HISTORY_DAYS), **INIT)
    assert _snapshot(store.path) == before


def test_the_retention_policy_keeps_the_newest_versions_and_the_current_one(tmp_path):
    store = ForecastStore(tmp_path / "store")
    store.init(_days(0, HISTORY_DAYS), keep_versions=2, **INIT)
    store.update(_days(HISTORY_DAYS, HISTORY_DAYS + 2))
    store.rollback(to=2)
    store.update(_days(HISTORY_DAYS + 2, HISTORY_DAYS + 3))  # learns 2 days from version 2
    kept = sorted(int(p.name) for p in (store.path / "versions").iterdir())
    assert kept == [3, 4] and [v.id for v in store.history() if v.current] == [4]
    with pytest.raises(RetainError, match="pruned by the retention policy"):
        store.rollback(to=2)
    assert store.prune(keep=1) == [3]
    assert store.load().days_learned == HISTORY_DAYS + 3
