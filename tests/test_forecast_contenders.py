"""Statistical contenders, the hybrid, prediction intervals and session calendars."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from retain.errors import RetainError
from retain.forecasting import Experiment, run_experiment
from retain.forecasting.backtest import plan
from retain.forecasting.backtest.report import acceptance_text, summarize
from retain.forecasting.bundled import calls, nyc_weather, synthetic_change, taylor
from retain.forecasting.data import from_frame, synthetic
from retain.forecasting.intervals import conformal_intervals, coverage

H, L, PRETRAIN_DAYS, DAYS = 24, 48, 26, 4
SERIES = synthetic(days=PRETRAIN_DAYS + DAYS + 1, freq="1h")
NEW = ("mstl", "gbm", "hybrid", "hybrid-retrain")
QUICK = Experiment.quick(
    lookback=L, pretrain_days=PRETRAIN_DAYS, days=DAYS,
    approaches=("seasonal-naive", *NEW), detectors=(),
    hyper={"epochs": 1, "retrain_every": 2, "validate_days": 7, "windows_days": (15, 20),
           "hybrid_lrs": (3e-4,), "hybrid_losses": ("l1",), "hybrid_epochs": 1,
           "hybrid_update_epochs": (1, 2), "gbm_every": 2})
FORECAST_DAY = 1


@pytest.fixture(scope="module")
def runs():
    run_a, inputs = run_experiment(SERIES, QUICK)
    origin = int(run_a.origin_rows[FORECAST_DAY])
    frame = SERIES.frame.copy()
    noise = np.random.default_rng(1).normal(5, 3, frame.shape)
    for j, column in enumerate(frame.columns):
        start = origin + H if column in SERIES.known_future else origin
        frame.iloc[start:, j] = noise[start:, j]
    run_b, _ = run_experiment(replace(SERIES, frame=frame), QUICK)
    return run_a, run_b, inputs


def test_no_contender_or_hybrid_uses_a_value_before_it_is_revealed(runs):
    run_a, run_b, _ = runs
    for name in NEW:
        a, b = run_a.runs[name].forecasts, run_b.runs[name].forecasts
        np.testing.assert_array_equal(a[:FORECAST_DAY + 1], b[:FORECAST_DAY + 1], err_msg=name)
        if name != "gbm":  # gbm refits every 2 days, so day 2 may use the old fit
            assert np.any(a[FORECAST_DAY + 1] != b[FORECAST_DAY + 1]), name


def test_the_validation_choice_uses_the_pre_training_period_only(runs):
    run_a, run_b, _ = runs
    for name in ("mstl", "hybrid"):
        assert run_a.runs[name].chosen == run_b.runs[name].chosen
        scores = run_a.runs[name].validation
        assert len(scores) >= 2 and all(np.isfinite(s["validation_mae"]) for s in scores)
    hybrid = run_a.runs["hybrid"]
    assert {s["correction"] for s in hybrid.validation} == {False, True}  # base alone too
    best = min(hybrid.validation, key=lambda s: s["validation_mae"])
    corrected = min((s for s in hybrid.validation if s["correction"]),
                    key=lambda s: s["validation_mae"])
    chosen = dict(hybrid.chosen)
    # the correction always learns; it starts switched on only if it beat the base alone
    assert chosen.pop("correction_weight_at_start") == (1.0 if best["correction"] else 0.0)
    assert {k: v for k, v in corrected.items() if k != "validation_mae"} == chosen


def test_the_hybrid_updates_with_the_epochs_validation_chose(runs):
    hybrid = runs[0].runs["hybrid"]
    tried = {s["update_epochs"] for s in hybrid.validation if s["correction"]}
    assert tried == {1, 2}
    samples = {}
    for epochs in (1, 2):
        experiment = replace(QUICK, approaches=("hybrid",),
                             hyper={**QUICK.hyper, "hybrid_update_epochs": (epochs,)})
        run, _ = run_experiment(SERIES, experiment)
        assert run.runs["hybrid"].chosen["update_epochs"] == epochs
        samples[epochs] = run.runs["hybrid"].samples
    assert samples[1][:-1].min() > 0
    np.testing.assert_array_equal(samples[2], 2 * samples[1])


def test_mstl_is_statsforecast_refit_on_the_trailing_window(runs):
    from statsforecast.models import MSTL, AutoETS

    run, _, inputs = runs
    window = run.runs["mstl"].chosen["window_steps"]
    origin = int(run.origin_rows[2])
    y = inputs.target[origin - window:origin].double().numpy()
    expected = MSTL([24, 168], trend_forecaster=AutoETS(model="ZZN")).fit(y).predict(h=H)
    scaled = (run.runs["mstl"].forecasts[2] - inputs.scaler.mean[0]) / inputs.scaler.std[0]
    np.testing.assert_allclose(scaled, expected["mean"], rtol=1e-5, atol=1e-5)
    assert run.runs["mstl"].seconds[:-1].min() > 0  # a refit after every day is timed


def test_summary_ranks_every_approach_and_compares_the_best_with_mstl(runs):
    run, _, _ = runs
    summary = summarize(run)
    maes = [a["mae"] for a in summary["approaches"].values()]
    assert maes == sorted(maes)
    assert [a["rank"] for a in summary["approaches"].values()] == list(range(1, 6))
    assert summary["winner"] == next(iter(summary["approaches"]))
    acc = summary["acceptance"]
    assert acc["best_incremental"] == "hybrid"  # the only daily-updated one here
    hybrid, mstl = summary["approaches"]["hybrid"], summary["approaches"]["mstl"]
    assert acc["mae_gain_over_mstl"] == pytest.approx(1 - hybrid["mae"] / mstl["mae"])
    for key in ("mae_gain_over_mstl", "fresh_days_mae_gain_over_mstl"):
        low, high = acc[f"{key}_ci95"]  # days resampled: the run's own gain lies inside
        assert low <= acc[key] <= high and low < high, key
    assert f"{acc['mae_gain_over_mstl']:+.1%} [95%: " in acceptance_text(acc)
    assert acc["mstl_refit_over_this_seconds"] == pytest.approx(
        mstl["update_seconds"] / hybrid["update_seconds"])
    assert "mae_vs_daily_retrain_on_fresh_days" in acc  # against hybrid-retrain
    assert summary["approaches"]["hybrid-retrain"]["family"] == "hybrid"
    assert summary["daily_retrain_reference"]["samples"] == summary["approaches"][
        "hybrid-retrain"]["daily_retrain_extrapolated"]["samples"]


def test_intervals_use_only_days_revealed_before_the_origin():
    rng = np.random.default_rng(0)
    actual, forecast = rng.normal(size=(40, 6)), np.zeros((40, 6))
    origins = np.arange(40) * 6
    bounds = conformal_intervals(actual, forecast, origins, horizon=6, min_days=5)
    changed = actual.copy()
    changed[20:] += 100
    again = conformal_intervals(changed, forecast, origins, horizon=6, min_days=5)
    for level in (80, 95):
        np.testing.assert_array_equal(bounds[level][1][:21], again[level][1][:21])
        assert np.all(again[level][1][22:] > bounds[level][1][22:])  # later days see it
        assert np.isnan(bounds[level][0][:5]).all() and not np.isnan(bounds[level][0][5:]).any()


def test_interval_width_is_the_conformal_quantile_of_past_errors():
    errors = np.arange(1, 11, dtype=float)  # ten past days, one step, errors 1..10
    actual = np.concatenate((errors, [0.0]))[:, None]
    bounds = conformal_intervals(actual, np.zeros((11, 1)), np.arange(11), horizon=1,
                                 levels=(80,), min_days=10, pool=0)
    # the ceil(11 * 0.8) = 9th smallest error
    assert bounds[80][1][10, 0] == 9.0 and bounds[80][0][10, 0] == -9.0
    assert coverage(np.zeros((1, 1)), bounds[80][0][10:], bounds[80][1][10:]) == 1.0


def test_adaptive_intervals_recover_coverage_after_the_errors_grow():
    rng = np.random.default_rng(0)
    scale = np.where(np.arange(150) < 60, 1.0, 2.0)[:, None]  # the errors double on day 60
    actual, forecast = rng.normal(size=(150, 24)) * scale, np.zeros((150, 24))
    origins = np.arange(150) * 24
    after = slice(60, None)
    for level in (80, 95):
        plain = conformal_intervals(actual, forecast, origins, 24, gamma=0.0)[level]
        adaptive = conformal_intervals(actual, forecast, origins, 24)[level]
        shortfall = {name: level / 100 - coverage(actual[after], b[0][after], b[1][after])
                     for name, b in (("plain", plain), ("adaptive", adaptive))}
        assert shortfall["plain"] > 0.05  # the rolling window lags behind the change
        assert abs(shortfall["adaptive"]) < shortfall["plain"] / 2, shortfall


def test_a_too_short_pre_training_period_says_how_much_is_needed():
    with pytest.raises(RetainError, match=r"hybrid needs \d+ steps \(\d+ days\) of "
                                          r"pre-training.*--pretrain-days"):
        plan(SERIES, replace(QUICK, pretrain_days=16, approaches=("hybrid",)))


def _business_hours(days: int = 15, fill_weekends: bool = False) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    if not fill_weekends:
        dates = dates[dates.dayofweek < 5]
    times = [d + pd.Timedelta("9h") + k * pd.Timedelta("15min") for d in dates
             for k in range(32)]
    return pd.DataFrame({"time": times, "y": np.arange(len(times), dtype=float)})


def test_business_hours_form_a_session_calendar():
    series = from_frame(_business_hours(), "time", "y")
    assert series.session_steps == 32 and series.week_sessions == 5
    assert series.steps_in("1D") == 32 and series.steps_in("7D") == 160
    extended = series.extended_index(40)
    assert extended[len(series)] == pd.Timestamp("2024-01-16 09:00")  # next weekday
    assert extended[-1] == pd.Timestamp("2024-01-17 10:45")
    with pytest.raises(RetainError, match="sessions"):
        series.steps_in("12h")


def test_a_regular_series_missing_a_day_is_still_a_gap():
    table = synthetic(days=10, freq="1h").frame.reset_index()
    table = table[(table["time"] < "2024-01-04") | (table["time"] >= "2024-01-05")]
    with pytest.raises(RetainError, match="24 missing h step"):
        from_frame(table, "time", "Demand")


def test_bundled_development_series_load():
    c = calls()
    assert (c.session_steps, c.week_sessions, len(c)) == (169, 5, 27716)
    assert c.frame.index[0] == pd.Timestamp("2003-03-03 07:00")
    assert c.frame.index[168] == pd.Timestamp("2003-03-03 21:00")
    t = taylor()
    assert (len(t), t.freq, t.target) == (4032, "30min", "demand")
    assert t.frame.index[0].day_name() == "Monday" and t.frame.index[-1] == pd.Timestamp(
        "2000-08-27 23:30")  # Sunday 27 August 2000, as R's documentation says
    w = nyc_weather("JFK")
    assert w.freq == "h" and w.target == "temp" and not w.frame.isna().any().any()
    level = synthetic_change("level", days=20)
    plain = synthetic(days=20, freq="30min")
    diff = level.frame["Demand"].to_numpy() - plain.frame["Demand"].to_numpy()
    assert diff[: len(diff) // 2].max() == 0 and diff[len(diff) // 2:].min() > 0


@pytest.mark.parametrize("chunk_days", [16, 1])
def test_two_processes_give_the_same_results_as_one(runs, chunk_days):
    run, _, _ = runs
    experiment = replace(QUICK, approaches=("seasonal-naive", "mstl", "gbm"),
                         detectors=("page-hinkley",))
    one, _ = run_experiment(SERIES, experiment)
    # chunk_days=1: mstl's days run one by one, some in either process
    parallel, _ = run_experiment(SERIES, experiment, workers=2, chunk_days=chunk_days)
    assert list(parallel.runs) == ["seasonal-naive", "mstl", "gbm"]
    for name in parallel.runs:
        a, b = one.runs[name], parallel.runs[name]
        np.testing.assert_array_equal(b.forecasts, run.runs[name].forecasts)
        np.testing.assert_array_equal(b.forecasts, a.forecasts)
        np.testing.assert_array_equal(b.daily_errors, a.daily_errors)
        assert (b.alarms, b.chosen, b.validation, b.note) == (a.alarms, a.chosen, a.validation,
                                                            a.note)
        assert (b.samples == a.samples).all() and len(b.seconds) == DAYS
    mstl = parallel.runs["mstl"]
    assert (mstl.seconds > 0).all()  # a refit after each day, the series' last included
    assert len(mstl.validation) == 2  # chosen once, on the pre-training period


def test_a_stream_resumes_only_with_approaches_that_do_not_learn_from_the_past():
    p = plan(SERIES, QUICK)
    late = replace(p.schedule, first_day=2)
    assert late.origins(len(SERIES))[0] == p.schedule.origins(len(SERIES))[2]
    with pytest.raises(RetainError, match="outside the stream"):
        replace(p.schedule, first_day=DAYS).origins(len(SERIES))
    from retain.forecasting.backtest.run import _run

    with pytest.raises(RetainError, match=r"\['hybrid'\] cannot resume"):
        _run(SERIES, replace(QUICK, approaches=("mstl", "hybrid")), days=(2, DAYS))


def test_the_hybrid_weighs_its_correction_on_revealed_days_only():
    from retain.forecasting.hybrid import Hybrid

    h = Hybrid((24,), horizon=4, period=4, lookback=4, windows=(48,), blend_days=2)
    h.target, h.weight, h._revealed = np.zeros(40), 1.0, 12
    ones = np.ones(4)
    # revealed days: base 1, correction -2 -> the error vanishes at w = 1/2
    h._made = {0: (ones, -2 * ones), 4: (ones, -2 * ones), 8: (ones, -2 * ones)}
    h._made[12] = (ones, -1 * ones)  # not revealed yet (needs rows 12..15): ignored
    h._reweigh()
    assert h.weight == 0.5
    h._made[8] = (ones, 0 * ones)  # the last two revealed days: 4 (w=1/2 best) and 8 (any)
    h._made[4] = (ones, -1 * ones)  # now w = 1 removes day 4's error
    h._reweigh()
    assert h.weight == 1.0


@pytest.fixture
def ets_asked(monkeypatch) -> list[tuple]:
    """The (model, damped) of every AutoETS the base creates."""
    import statsforecast.models

    asked = []

    class Recorded(statsforecast.models.AutoETS):
        def __init__(self, *args, model="ZZZ", damped=None, **kwargs):
            asked.append((model, damped))
            super().__init__(*args, model=model, damped=damped, **kwargs)

    monkeypatch.setattr(statsforecast.models, "AutoETS", Recorded)
    return asked


def _refreshed_daily(days: int, state: str, **cadence):
    """An hourly base with a daily season refreshed on ``days`` days from day 3 (the first
    with two cycles behind it), and its ``state`` attribute after each refresh."""
    from retain.forecasting.seasonal import SeasonalBase

    y = synthetic(days=40, freq="1h").frame.iloc[:, 0].to_numpy(float)
    base = SeasonalBase(y, (24,), horizon=24, period=24, anchor=0, window=24 * 14, **cadence)
    states = []
    for day in range(3, 3 + days):
        base.at(day * 24)
        states.append(getattr(base, state))
    return base, states


def test_the_base_searches_the_ets_form_weekly_and_refits_its_parameters_daily(ets_asked):
    asked = ets_asked
    _, forms = _refreshed_daily(10, "_form", form_every=7)
    assert asked[0] == asked[7] == ("ZZN", None)  # the search: first and eighth refresh
    for i in set(range(10)) - {0, 7}:  # between: the last search's form, parameters refit
        assert asked[i] == forms[i] == forms[i - 1]
    assert len(asked) == 10 and len(forms[0][0]) == 3


def test_a_weekly_ets_cadence_searches_and_fits_once_a_week(ets_asked):
    asked = ets_asked
    base, fits = _refreshed_daily(30, "_ets", ets_every=7)
    # refreshes 0, 7, 14, 21 and 28: a search every four weeks, that form refit between
    assert asked[0] == asked[4] == ("ZZN", None) and len(asked) == 5
    assert asked[1] == asked[2] == asked[3] != ("ZZN", None)
    assert fits[0] is fits[6] is not fits[7]  # the week's fit serves every day of it
    # between fits, each day's forecast still starts from that day's history
    assert not np.allclose(base.at(4 * 24), base.at(5 * 24))


def test_the_base_ets_cadence_is_chosen_by_validation(runs):
    hybrid = runs[0].runs["hybrid"]
    tried = {s["base_ets_fit_every"] for s in hybrid.validation if not s["correction"]}
    assert tried == {1, 7}
    assert hybrid.chosen["base_ets_fit_every"] in tried
    assert hybrid.export["base_ets_fit_every"] == hybrid.chosen["base_ets_fit_every"]
    from retain.forecasting.hybrid import Hybrid

    with pytest.raises(RetainError, match="ETS fits"):
        Hybrid((24,), 24, 24, 48, (240,), ets_every=(0,))


def test_stl_settings_follow_r_defaults_or_one_given_jump():
    from retain.forecasting.seasonal import r_stl

    assert r_stl([24]) == {"seasonal_deg": 0, "inner_iter": 2, "seasonal_jump": 2,
                           "trend_jump": 5, "low_pass_jump": 3}
    jumps = {k: v for k, v in r_stl([48, 336], jump=1).items() if k.endswith("_jump")}
    assert set(jumps.values()) == {1}


def test_the_base_decomposes_as_statsforecasts_mstl_with_r_inner_iterations():
    """statsmodels' MSTL with 5 inner iterations is statsforecast's ``mstl``; the base's 2
    (R's) stay close to it."""
    from statsforecast.mstl import mstl
    from statsmodels.tsa.seasonal import MSTL

    from retain.forecasting.seasonal import r_stl

    y = SERIES.frame[SERIES.target].to_numpy(np.float64)[:24 * 28]
    settings = r_stl([24, 168])
    theirs = mstl(y, [24, 168], stl_kwargs={k: v for k, v in settings.items()
                                            if k.endswith("_jump")})
    theirs = theirs[["seasonal24", "seasonal168"]].to_numpy()
    same = MSTL(y, periods=(24, 168), stl_kwargs={**settings, "inner_iter": 5}).fit()
    np.testing.assert_allclose(same.seasonal, theirs, atol=1e-9)
    ours = MSTL(y, periods=(24, 168), stl_kwargs=settings).fit().seasonal
    assert np.abs(ours - theirs).max() < 0.02 * np.ptp(theirs.sum(1))


def test_a_saved_hybrid_forecasts_as_the_run_did_from_the_history_alone(runs, tmp_path):
    from retain.forecasting.bundle import load_hybrid, save_hybrid
    from retain.forecasting.features import useful_cycles

    run_a, _, inputs = runs
    hybrid = run_a.runs["hybrid"]
    save_hybrid(tmp_path / "h", hybrid, SERIES, inputs.scaler, useful_cycles(SERIES))
    saved = load_hybrid(tmp_path / "h")
    origin = int(run_a.origin_rows[-1])
    history = replace(SERIES, frame=SERIES.frame.iloc[:origin])
    future = SERIES.frame.iloc[origin:origin + H][["WorkDay"]]
    forecast = saved.forecast(history, future)
    assert list(forecast.index) == list(SERIES.frame.index[origin:origin + H])
    np.testing.assert_allclose(forecast.to_numpy(), hybrid.forecasts[-1], rtol=1e-5)
    # a folder named by a string, as a user types it, saves and loads the same hybrid
    save_hybrid(str(tmp_path / "s"), hybrid, SERIES, inputs.scaler, useful_cycles(SERIES))
    by_name = load_hybrid(str(tmp_path / "s")).forecast(history, future)
    np.testing.assert_array_equal(by_name.to_numpy(), forecast.to_numpy())

    with pytest.raises(RetainError, match=r"known-future column\(s\) \['WorkDay'\]"):
        saved.forecast(history)
    with pytest.raises(RetainError, match="future has 3 rows; the forecast needs 24"):
        saved.forecast(history, future.iloc[:3])
    need = 2 * max(saved.meta["base_seasons"]) + 1 + H  # two cycles, and a day for its error
    with pytest.raises(RetainError, match=f"at least {need} rows of history"):
        saved.forecast(replace(SERIES, frame=SERIES.frame.iloc[:50]), future)
    other = replace(SERIES, frame=SERIES.frame.drop(columns="Temperature"),
                    covariates=("WorkDay",))
    with pytest.raises(RetainError, match="covariates \\['WorkDay'\\]; the model was trained"):
        saved.forecast(other, future)
    (tmp_path / "h" / "hybrid.json").write_text("{not json")
    with pytest.raises(RetainError, match="damaged hybrid"):
        load_hybrid(tmp_path / "h")
    with pytest.raises(RetainError, match="no saved hybrid"):
        load_hybrid(tmp_path)


def test_each_member_of_the_correction_ensemble_learns_from_its_own_output_only():
    import torch

    from retain.forecasting.hybrid import CorrectionEnsemble, Hybrid

    torch.manual_seed(0)
    x = torch.randn(3, 5, L)
    ensemble = CorrectionEnsemble(5, L, H, width=4, members=3)
    out = ensemble(x)
    assert out.shape == (3, 3, H)
    assert not torch.allclose(out[:, 0], out[:, 1])  # initialised apart
    out[:, 1].abs().sum().backward()  # member 1's output: no gradient for members 0 and 2
    first, head, error = ensemble.body[0].weight.grad, ensemble.head_weight.grad, \
        ensemble.error.weight.grad
    for k in (0, 2):
        assert not first[4 * k:4 * k + 4].any() and not head[k].any()
        assert not error[H * k:H * k + H].any()
    assert first[4:8].any() and head[1].any() and error[H:2 * H].any()
    with pytest.raises(RetainError, match="at least one member, got 0"):
        Hybrid((24,), H, 24, L, (240,), members=0)


def test_an_ensemble_hybrid_forecasts_with_its_members_mean_and_saves_them_all(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from retain.forecasting.bundle import load_hybrid, save_hybrid
    from retain.forecasting.features import useful_cycles

    experiment = replace(QUICK, approaches=("hybrid",), hyper={
        **QUICK.hyper, "hybrid_update_epochs": (1,), "hybrid_members": 2})
    run, inputs = run_experiment(SERIES, experiment)
    hybrid = run.runs["hybrid"]
    assert hybrid.export["members"] == 2
    save_hybrid(tmp_path / "h", hybrid, SERIES, inputs.scaler, useful_cycles(SERIES))
    saved = load_hybrid(tmp_path / "h")
    assert saved.model.members == 2
    origin = int(run.origin_rows[-1])
    history = replace(SERIES, frame=SERIES.frame.iloc[:origin])
    future = SERIES.frame.iloc[origin:origin + H][["WorkDay"]]
    again = saved.forecast(history, future).to_numpy()
    # the saved hybrid has learned the last day too (it is not one day stale), so its
    # forecast of that day is close to, but no longer exactly, the run's
    assert np.isfinite(again).all()
    np.testing.assert_allclose(again, hybrid.forecasts[-1], rtol=0.05)
    assert not np.allclose(again, hybrid.forecasts[-1], rtol=1e-7)

    # a hybrid saved before ensembles (one network's weights, no "members") still loads
    one, _ = run_experiment(SERIES, replace(experiment, hyper={
        **experiment.hyper, "hybrid_members": 1}))
    for name in ("old", "h1"):
        save_hybrid(tmp_path / name, one.runs["hybrid"], SERIES, inputs.scaler,
                    useful_cycles(SERIES))
    meta = json.loads((tmp_path / "old" / "hybrid.json").read_text())
    del meta["members"]
    (tmp_path / "old" / "hybrid.json").write_text(json.dumps(meta))
    new = load_file(tmp_path / "old" / "weights.safetensors")
    old = {f"cnn.{k}": v for k, v in new.items() if k.startswith("body.")}
    old |= {"cnn.head.weight": new["head_weight"][0].t().contiguous(),
            "cnn.head.bias": new["head_bias"][0, 0], "error.weight": new["error.weight"],
            "error.bias": new["error.bias"], "cnn.linear.weight": new["error.weight"].clone(),
            "cnn.linear.bias": new["error.bias"].clone()}  # ForecastCNN's unused skip map
    save_file(old, tmp_path / "old" / "weights.safetensors")
    # the same weights, loaded from the old layout, forecast what the new layout does
    np.testing.assert_allclose(load_hybrid(tmp_path / "old").forecast(history, future),
                               load_hybrid(tmp_path / "h1").forecast(history, future),
                               rtol=1e-6)
