"""No series ends in a traceback: the ETS form on non-positive values, and fallbacks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from retain.forecasting import Experiment, run_experiment, synthetic
from retain.forecasting.approaches import Approach
from retain.forecasting.seasonal import SeasonalBase, require_statsforecast

QUICK = Experiment.quick(approaches=("seasonal-naive", "mstl", "gbm", "replay", "hybrid"))


def test_a_multiplicative_form_meets_non_positive_values_and_is_searched_again():
    """The bug behind 'Inappropriate model for data with negative or zero values': the form
    searched on positive values was refit later on values that were no longer positive."""
    models = require_statsforecast()
    rng = np.random.default_rng(0)
    deseasonal = rng.normal(0.0, 1.0, 500)  # crosses zero
    with pytest.raises(ValueError, match="negative or zero"):  # what the old code did
        models.AutoETS(model="MNN").fit(deseasonal)
    base = SeasonalBase(np.zeros(10), [24], 24, 24, 0, 100)
    base._form, base._refreshes = ("MNN", False), 1  # a refresh that reuses the form
    fit = base._fit_ets(models, deseasonal)
    assert fit.model == "ZZN" and "M" not in base._form[0]  # searched among additive forms
    positive = deseasonal + 10
    base._form = ("MNN", False)
    assert base._fit_ets(models, positive).model == "MNN"  # positive values keep the form


def _series(kind: str):
    s = synthetic(days=36, freq="1h")
    frame = s.frame.copy()
    y = frame["Demand"].to_numpy()
    if kind == "crosses-zero":
        frame["Demand"] = y - y.mean()
    elif kind == "constant-stretches":
        y = y.copy()
        for start in range(5 * 24, len(y), 9 * 24):  # two flat days in every nine
            y[start:start + 48] = y[start]
        frame["Demand"] = y
    elif kind == "level-step":
        y = y.copy()
        y[len(y) // 2:] *= 10
        frame["Demand"] = y
    return replace(s, frame=frame)


@pytest.mark.parametrize("kind", ["crosses-zero", "constant-stretches", "level-step"])
def test_awkward_series_run_to_the_end(kind):
    run, _ = run_experiment(_series(kind), replace(QUICK, days=None))
    assert list(run.runs) == list(QUICK.approaches)
    for name, r in run.runs.items():
        assert np.isfinite(r.forecasts).all(), name
        if r.failure:  # a fallback took over: said in the results, not a traceback
            assert "in its place" in r.note


class _BreaksOnDay3(Approach):
    name = "fragile"
    uses_pretrained = False

    def __init__(self):
        self.days = 0

    def forecast(self, x, past):
        self.days += 1
        if self.days == 3:
            raise ValueError("something numerical")
        return past[-24:]


def test_a_failing_approach_hands_over_and_the_others_go_on(monkeypatch):
    from retain.catalog import Catalog
    from retain.forecasting import approaches

    series = synthetic(days=34, freq="1h")
    plain, _ = run_experiment(series, replace(QUICK, approaches=("seasonal-naive", "gbm")))
    catalog = Catalog("approach", {**{n: approaches.APPROACHES[n] for n in approaches.APPROACHES},
                                   "fragile": lambda s: _BreaksOnDay3()})
    monkeypatch.setattr(approaches, "APPROACHES", catalog)
    run, _ = run_experiment(series, replace(QUICK, approaches=("seasonal-naive", "fragile",
                                                                "gbm")))
    fragile = run.runs["fragile"]
    assert fragile.failure.startswith("failed in its forecast of day 3 (ValueError: "
                                      "something numerical); seasonal-naive forecast")
    np.testing.assert_array_equal(fragile.forecasts[2:], run.runs["seasonal-naive"].forecasts[2:])
    for name in ("seasonal-naive", "gbm"):  # untouched by the failure beside them
        np.testing.assert_array_equal(run.runs[name].forecasts, plain.runs[name].forecasts)
        assert run.runs[name].failure == ""


def test_a_failing_hybrid_falls_back_to_its_base(monkeypatch):
    from retain.forecasting.hybrid import Hybrid

    series = synthetic(days=34, freq="1h")
    start, correction = Hybrid.start, Hybrid._correction

    def started(self, model):  # validation and pre-training as usual
        start(self, model)
        self.days_forecast = 0

    def flaky(self, learner, base, origin):  # the correction breaks on the third day
        out = correction(self, learner, base, origin)
        if hasattr(self, "days_forecast") and learner is self.learner:
            self.days_forecast += 1
            return out * np.nan if self.days_forecast >= 3 else out
        return out

    monkeypatch.setattr(Hybrid, "start", started)
    monkeypatch.setattr(Hybrid, "_correction", flaky)
    run, _ = run_experiment(series, replace(QUICK, approaches=("hybrid",)))
    hybrid = run.runs["hybrid"]
    assert hybrid.failure.startswith("failed in its forecast of day 3 (RetainError: its "
                                     "forecast is not finite); hybrid-base forecast the rest")
    assert np.isfinite(hybrid.forecasts).all() and hybrid.approach is None


def test_without_a_fallback_a_failure_still_stops_the_run():
    from retain.forecasting.backtest.protocol import _Track

    track = _Track(_BreaksOnDay3(), 5, 24, ())
    past = torch.arange(48.0)
    track.forecast(0, None, past)
    track.forecast(1, None, past)
    with pytest.raises(ValueError, match="something numerical"):
        track.forecast(2, None, past)
