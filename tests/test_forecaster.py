"""The deployed forecaster: the backtest's forecasts, exact resume, and every bad input named."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from retain.errors import RetainError
from retain.forecasting import Experiment, run_experiment, synthetic
from retain.forecasting.forecaster import Forecaster

P = 24  # hourly synthetic series: a day
PRE = 28 * P  # Experiment.quick's pre-training period
DAYS = 9  # past the seven scored days the intervals need
FULL = synthetic(days=28 + DAYS + 2)
SERIES = replace(FULL, frame=FULL.frame.iloc[:PRE + DAYS * P])
EXPERIMENT = Experiment.quick(approaches=("replay", "hybrid"), days=None)


def _head(rows: int):
    return replace(FULL, frame=FULL.frame.iloc[:rows])


def _day(d: int) -> pd.DataFrame:
    return FULL.frame.iloc[PRE + d * P:PRE + (d + 1) * P]


@contextlib.contextmanager
def one_thread():
    """Bit-equality between the backtest and production needs one thread: with several,
    a kernel may split a reduction by the size of the array a window is a view of (the
    whole series there, the rows stored here), and a value can move by one float32 ulp."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backtest():
    with one_thread():
        return run_experiment(SERIES, EXPERIMENT)


@pytest.mark.parametrize("name", ["replay", "hybrid"])
def test_production_loop_saved_every_day_gives_the_backtests_forecasts(backtest, name,
                                                                        tmp_path):
    """Fit on the pre-training rows, then each day: load, forecast, learn the day, save.
    Forecasts and intervals equal the backtest's bit for bit."""
    run, _ = backtest
    folder = tmp_path / name
    with one_thread():
        forecasts, bounds = _days_through_a_folder(name, folder)
    np.testing.assert_array_equal(np.array(forecasts), run.runs[name].forecasts)
    lower80, upper95 = run.intervals(name)[80][0], run.intervals(name)[95][1]
    got = np.array(bounds)
    np.testing.assert_array_equal(got[:, :, 0], lower80)  # NaN on the first seven days
    np.testing.assert_array_equal(got[:, :, 1], upper95)
    assert np.isnan(got[:7]).all() and np.isfinite(got[7:]).all()


def _days_through_a_folder(name, folder):
    Forecaster(name, EXPERIMENT, warmup_days=0).fit(_head(PRE)).save(folder)
    forecasts, bounds = [], []
    for d in range(DAYS):
        f = Forecaster.load(folder)
        out = f.forecast(future=_day(d)[["WorkDay"]])
        forecasts.append(out["forecast"].to_numpy())
        bounds.append(out[["lower_80", "upper_95"]].to_numpy())
        scored = f.update(_day(d))
        assert len(scored) == 1 and scored.index[0] == _day(d).index[0]
        f.save(folder, overwrite=True)
    return forecasts, bounds


@pytest.mark.parametrize("name", ["replay", "hybrid"])
def test_the_runs_forecaster_has_learnt_every_day_and_goes_on_like_production(
        backtest, name, tmp_path):
    run, inputs = backtest
    handed = Forecaster.from_run(SERIES, EXPERIMENT, run, inputs, name)
    assert handed.revealed == len(SERIES)  # the last day too: nothing stale
    handed.save(tmp_path / "run")
    with one_thread():
        produced = Forecaster(name, EXPERIMENT, warmup_days=0).fit(_head(PRE))
        produced.update(SERIES.frame.iloc[PRE:])
    loaded = Forecaster.load(tmp_path / "run")
    future = _day(DAYS)[["WorkDay"]]
    pd.testing.assert_frame_equal(loaded.forecast(future), produced.forecast(future))
    loaded.update(_day(DAYS))
    produced.update(_day(DAYS))
    torch.testing.assert_close(loaded.approach.learner.model.state_dict(),
                               produced.approach.learner.model.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["replay", "hybrid"])
def test_saving_and_loading_between_days_changes_nothing(name, tmp_path):
    """With the default threads: a forecaster saved and loaded after every day and one
    never saved give the same forecasts and weights, bit for bit."""
    kept = Forecaster(name, EXPERIMENT, warmup_days=0).fit(_head(PRE))
    kept.save(tmp_path / "f")
    for d in range(3):
        loaded = Forecaster.load(tmp_path / "f")
        future = _day(d)[["WorkDay"]]
        pd.testing.assert_frame_equal(loaded.forecast(future), kept.forecast(future))
        loaded.update(_day(d))
        kept.update(_day(d))
        loaded.save(tmp_path / "f", overwrite=True)
    _assert_same_state(Forecaster.load(tmp_path / "f").state_dict(), kept.state_dict())


def _assert_same_state(a: dict, b: dict) -> None:
    """Every tensor, array and value of two states equal (the replay memory, the
    optimizer's moments, the base's fits, the conformal errors, the generators...)."""
    from retain.checkpoint.serialize import flatten

    ta, tb = {}, {}
    skeleton_a, skeleton_b = flatten(a, ta), flatten(b, tb)
    assert json.dumps(skeleton_a, sort_keys=True) == json.dumps(skeleton_b, sort_keys=True)
    assert ta.keys() == tb.keys() and len(ta) > 10
    for key in ta:
        torch.testing.assert_close(ta[key], tb[key], rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m, key=key: f"{key}: {m}")


def test_warm_up_days_give_intervals_from_the_first_forecast():
    f = Forecaster("replay", EXPERIMENT, warmup_days=7).fit(_head(PRE + 7 * P))
    assert len(f.scores) == 7 and f.days_learned == 35
    out = f.forecast(future=_day(7)[["WorkDay"]])
    assert out.index[0] == _day(7).index[0] and len(out) == P
    assert (out["lower_95"] <= out["lower_80"]).all() and (out["lower_80"] < out["forecast"]).all()
    assert (out["forecast"] < out["upper_80"]).all() and (out["upper_80"] <= out["upper_95"]).all()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("f") / "replay"
    Forecaster("replay", EXPERIMENT, warmup_days=0).fit(_head(PRE + P)).save(folder)
    return folder


def _bad(frame: pd.DataFrame, **edit) -> pd.DataFrame:
    frame = frame.copy()
    for key, value in edit.items():
        frame.iloc[int(key[1:]), 0] = value
    return frame


@pytest.mark.parametrize("rows, message", [
    (lambda d: d.drop(columns="Temperature"), r"missing \['Temperature'\]"),
    (lambda d: d.assign(Wind=1.0), r"unexpected \['Wind'\]"),
    (lambda d: _bad(d, r3=np.nan), r"'Demand' has a missing or infinite value at 2024-01-30 03"),
    (lambda d: _bad(d, r5=np.inf), "missing or infinite"),
    (lambda d: pd.concat([d.iloc[:3], d.iloc[2:]]), "appears twice"),
    (lambda d: d.iloc[::-1], "not in increasing order"),
    (lambda d: d.iloc[2:], r"expected 2024-01-30 00:00:00 next .* got 2024-01-30 02:00:00 — a gap"),
    (lambda d: d.set_axis(d.index + pd.Timedelta("30min")), "expected 2024-01-30 00:00:00"),
    (lambda d: d.reset_index(drop=True), "indexed by time"),
])
def test_bad_rows_are_named_and_change_nothing(fitted, rows, message):
    f = Forecaster.load(fitted)
    before = (f.revealed, len(f.series), f.approach.learner.samples_seen)
    with pytest.raises(RetainError, match=message):
        f.update(rows(_day(1)))
    assert (f.revealed, len(f.series), f.approach.learner.samples_seen) == before


def test_rows_already_learnt_are_skipped_if_equal_and_refused_if_changed(fitted):
    f = Forecaster.load(fitted)
    learnt = _day(0)  # the last day of the fitted history
    assert len(f.update(learnt)) == 0 and f.revealed == PRE + P
    changed = learnt.copy()
    changed.iloc[5, 0] += 1.0
    with pytest.raises(RetainError, match="2024-01-29 05:00:00 was already learnt with other"):
        f.update(pd.concat([changed, _day(1)]))
    assert f.revealed == PRE + P
    assert len(f.update(pd.concat([learnt, _day(1)]))) == 1  # overlap + a new day


def test_partial_days_wait_and_a_forecast_needs_the_known_future(fitted):
    f = Forecaster.load(fitted)
    assert len(f.update(_day(1).iloc[:10])) == 0 and f.revealed == PRE + P
    with pytest.raises(RetainError, match=r"known-future column\(s\) \['WorkDay'\]"):
        f.forecast()
    # the stored rows give the first ten steps; future must give the rest
    with pytest.raises(RetainError, match="future lacks 14 of the 14 steps"):
        f.forecast(future=_day(1)[["WorkDay"]].iloc[:5])
    out = f.forecast(future=_day(1)[["WorkDay"]].iloc[10:])
    assert out.index[0] == _day(1).index[0]
    assert len(f.update(_day(1).iloc[10:])) == 1


def test_damaged_or_foreign_folders_are_refused(fitted, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(fitted, copy)
    data = bytearray((copy / "state.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "state.safetensors").write_bytes(bytes(data))
    with pytest.raises(RetainError, match="state.safetensors is corrupt"):
        Forecaster.load(copy)
    manifest = json.loads((fitted / "manifest.json").read_text())
    manifest["kind"] = "learner"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RetainError, match="holds a 'learner', not a 'forecaster'"):
        Forecaster.load(tmp_path / "other")
    with pytest.raises(RetainError, match="does not exist"):
        Forecaster.load(tmp_path / "nowhere")
    # nothing is written over a saved forecaster unless asked
    with pytest.raises(RetainError, match="already exists"):
        Forecaster.load(fitted).save(fitted)


def test_arguments_checked_before_any_work():
    with pytest.raises(RetainError, match="cannot be deployed; choose from hybrid, replay"):
        Forecaster("mstl")
    with pytest.raises(RetainError, match="not fitted"):
        Forecaster().forecast()
    with pytest.raises(RetainError, match="needs .* of pre-training"):
        Forecaster("hybrid", EXPERIMENT, warmup_days=0).fit(_head(10 * P))
