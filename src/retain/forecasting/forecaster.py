"""The forecaster a user deploys: fit on history, forecast the next day, learn each new day.

One object from backtest to production. :meth:`Forecaster.fit` pre-trains on a history and
makes every validated choice there (the hybrid's base, loss, learning rate); then, day after
day, :meth:`Forecaster.forecast` gives the next horizon with 80%/95% adaptive conformal
intervals, and :meth:`Forecaster.update` takes newly measured rows: each day they complete is
first scored against the forecast made for it (test-then-train: the intervals and the
hybrid's correction weight learn from that error), then learnt incrementally. The approach
inside is the one ``retain forecast`` measures (the hybrid, or a CNN with replay), driven by
the same calls in the same order, so the backtest's forecasts are what this object forecasts
(tested).

:meth:`save` / :meth:`load` use retain's checkpoint format (safetensors + hashed JSON, atomic,
no pickle) and hold everything: weights, optimizer, replay memory, the correction weight's
window, the conformal state, the base's fits, the history and the generators. A forecaster
saved and loaded after any day goes on bit for bit like one never saved.

>>> from dataclasses import replace
>>> from retain.forecasting import synthetic
>>> from retain.forecasting.experiment import Experiment
>>> series = synthetic(days=45)
>>> history, later = series.frame.iloc[:40 * 24], series.frame.iloc[40 * 24:]
>>> f = Forecaster("replay", Experiment.quick(), warmup_days=7)
>>> f = f.fit(replace(series, frame=history))
>>> tomorrow = f.forecast(future=later[["WorkDay"]].iloc[:24])  # a calendar fact
>>> tomorrow.columns.tolist()
['forecast', 'lower_80', 'upper_80', 'lower_95', 'upper_95']
>>> scored = f.update(later.iloc[:48])      # two more days measured: scored, then learnt
>>> len(scored), f.days_learned
(2, 42)
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retain.errors import RetainError
from retain.forecasting.approaches import Recipe, make_approaches, train_from_scratch
from retain.forecasting.data import Series
from retain.forecasting.experiment import Experiment, _check_history, _settings
from retain.forecasting.features import Inputs, make_inputs, useful_cycles
from retain.forecasting.intervals import LEVELS, AdaptiveConformal
from retain.forecasting.new_rows import append_rows, fill_future
from retain.forecasting.scaling import Scaler
from retain.forecasting.windows import Windows, WindowSpec
from retain.models.forecasting import FORECASTERS

KIND, VERSION = "forecaster", 1
#: approaches that can be deployed (they keep a state that :meth:`Forecaster.save` stores)
DEPLOYABLE = ("hybrid", "replay", "replay-stratified", "incremental-adam", "incremental-sgd",
              "online-ewc")
COLUMNS = ["forecast", *(f"{side}_{level}" for level in LEVELS for side in ("lower", "upper"))]


class Forecaster:
    """A deployable daily forecaster (see the module doc).

    Args:
        approach: ``hybrid`` (the default: the seasonal base plus the correction networks)
            or a network approach such as ``replay`` (see :data:`DEPLOYABLE`).
        experiment: model, window and hyper-parameter settings, as for ``retain forecast``
            (its ``approaches``, ``days`` and ``pretrain_days`` are not used here).
        warmup_days: the last days of the history that :meth:`fit` walks through
            test-then-train after pre-training on the rest, so that the intervals (which
            need seven scored days) and the correction weight start from real errors.
    """

    def __init__(self, approach: str = "hybrid", experiment: Experiment | None = None,
                 warmup_days: int = 7):
        if approach not in DEPLOYABLE:
            raise RetainError(f"approach {approach!r} cannot be deployed; choose from "
                              f"{', '.join(DEPLOYABLE)}")
        if warmup_days < 0:
            raise RetainError(f"warmup_days must be >= 0, got {warmup_days}")
        self.approach_name, self.warmup_days = approach, warmup_days
        self.experiment = experiment or Experiment()
        self.approach: Any = None

    # -- set-up ------------------------------------------------------------------------------
    def fit(self, history: Series) -> Forecaster:
        """Pre-train on ``history`` (all but its last ``warmup_days`` days), choose every
        setting on it, then learn the warm-up days one at a time. Returns ``self``."""
        self._layout(history)
        pretrain = len(history) - self.warmup_days * self.period
        e = self.experiment
        _check_history(replace(e, approaches=(self.approach_name,)), pretrain, self.period,
                       self.season, self.spec.horizon)
        if pretrain < self.spec.lookback + self.spec.horizon:
            raise RetainError(f"the history has {len(history)} rows; pre-training needs more "
                              f"than lookback + horizon ({self.spec.lookback} + "
                              f"{self.spec.horizon}) before the {self.warmup_days} warm-up "
                              f"days")
        self.series = replace(history, frame=history.frame.iloc[:pretrain])
        self.pretrain = self.revealed = pretrain
        inputs = make_inputs(self.series, pretrain, self.spec.horizon, self.cycles)
        self.scaler = inputs.scaler
        self.approach = self._build(inputs)
        model = None
        if self.approach.uses_pretrained:
            windows = Windows(inputs.features, inputs.target, self.spec)
            model, _ = train_from_scratch(self._model_builder(), windows.completed(0, pretrain),
                                          e.recipe, e.seed)
        self.approach.start(model)
        self.conformal = AdaptiveConformal(self.spec.horizon)
        self.pending: tuple[int, np.ndarray, dict | None] | None = None
        self.scores: list[dict] = []
        self.update(history.frame.iloc[pretrain:])
        return self

    def _layout(self, series: Series) -> None:
        """Rows per day, season, windows and calendar of ``series`` (checked)."""
        if series.session_steps is not None:
            raise RetainError("a session calendar (business hours only) cannot be deployed "
                              "yet; backtest it with retain forecast")
        e = self.experiment
        self.period, self.season = series.steps_in(e.period), series.steps_in(e.season)
        self.spec = WindowSpec(e.lookback or series.steps_in("7D"), e.horizon or self.period,
                               e.stride)
        if self.spec.horizon > self.period:
            raise RetainError(f"a deployed forecaster's horizon ({self.spec.horizon} steps) "
                              f"must not exceed the period between forecasts ({self.period})")
        if e.model not in FORECASTERS:
            raise RetainError(f"unknown model {e.model!r}; choose from {', '.join(FORECASTERS)}")
        self.cycles = useful_cycles(series)

    def _model_builder(self):
        cls, options = FORECASTERS[self.experiment.model], self.experiment.model_options
        channels = 1 + len(self.series.covariates) + 2 * len(self.cycles)
        return lambda: cls(channels, self.spec.lookback, self.spec.horizon, **options)

    def _build(self, inputs: Inputs):
        settings = _settings(self.experiment, horizon=self.spec.horizon, period=self.period,
                             build=self._model_builder(), season=self.season,
                             stride=self.spec.stride)
        approach = make_approaches([self.approach_name], settings)[0]
        approach.prepare(inputs, self.pretrain, self.period)
        return approach

    # -- the day's work ------------------------------------------------------------------------
    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def days_learned(self) -> int:
        """Whole days learnt so far (pre-training included)."""
        return self.revealed // self.period

    @property
    def next_origin(self) -> pd.Timestamp:
        """The time of the first step the next forecast is for."""
        return self._time(self.revealed)

    def _time(self, row: int) -> pd.Timestamp:
        return self.series.frame.index[0] + row * self.series.step

    def forecast(self, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The next horizon from the last learnt day: a frame indexed by time with the
        forecast and 80%/95% bounds (NaN until seven days have been scored). ``future``:
        the known-future covariates over those steps, indexed by time (needed where the
        stored rows do not reach that far)."""
        self._require_fit()
        origin, values, widths = self._forecast_at(self.revealed, future)
        times = pd.date_range(self._time(origin), periods=self.horizon, freq=self.series.freq,
                              name="time")
        out = pd.DataFrame({"forecast": values}, index=times)
        for level in LEVELS:
            w = widths[level] if widths else np.full(self.horizon, np.nan)
            out[f"lower_{level}"], out[f"upper_{level}"] = values - w, values + w
        return out[COLUMNS]

    def update(self, rows: pd.DataFrame, learn: bool = True) -> pd.DataFrame:
        """Append newly measured ``rows`` (indexed by time, the history's columns); score
        and learn every day they complete. Rows already held and identical are skipped;
        changed ones, gaps and off-grid times are refused before anything changes. Returns
        one row per day learnt: its MAE, and whether its values fell in the intervals.

        ``learn=False`` scores the days and moves the forecast origin past them with the
        weights unchanged: how a version the gate did not let learn them still forecasts
        from the latest day."""
        self._require_fit()
        self.series = append_rows(self.series, rows)
        done = []
        while self.revealed + self.period <= len(self.series):
            done.append(self._learn_day(self.revealed, learn))
        return pd.DataFrame(done, columns=["time", "mae", "in_80", "in_95"]).set_index("time")

    def hindsight(self, days: int = 1) -> np.ndarray:
        """The MAE of what this forecaster, as it is now, forecasts for each of its last
        ``days`` learnt days (each from the rows before it): after learning a day its
        forecast for that day should not be worse than the one made before, or the
        learning went wrong (what the store's gate checks). Leaves ``self`` unchanged."""
        self._require_fit()
        learnt = (self.revealed - self.pretrain) // self.period
        if not 1 <= days <= learnt:
            raise RetainError(f"days must be between 1 and the {learnt} days learnt after "
                              f"pre-training, got {days}")
        probe = Forecaster.from_state(self.state_dict())
        target = self.series.frame[self.series.target].to_numpy(np.float64)
        out = []
        for origin in range(self.revealed - days * self.period, self.revealed, self.period):
            probe.pending = None
            _, values, _ = probe._forecast_at(origin, None)
            out.append(np.abs(values - target[origin:origin + self.horizon]).mean())
        return np.asarray(out)

    def _learn_day(self, origin: int, learn: bool = True) -> dict:
        _, forecast, widths = self._forecast_at(origin, None)
        H = self.horizon
        actual = self.series.frame[self.series.target].to_numpy(np.float64)[origin:origin + H]
        errors = np.abs(forecast - actual)
        self.conformal.observe(errors, widths)
        score = {"time": self.series.frame.index[origin], "mae": float(errors.mean()),
                 **{f"in_{level}": float(np.mean(errors <= widths[level])) if widths
                    else float("nan") for level in LEVELS}}
        self.scores.append(score)
        revealed = origin + self.period
        inputs = self._inputs()
        windows = Windows(inputs.features, inputs.target, self.spec)
        self._extend(inputs)
        self.approach.observe(revealed)
        if learn:
            self.approach.update(windows.completed(origin, revealed),
                                 windows.completed(0, revealed))
        self.revealed, self.pending = revealed, None
        if hasattr(self.approach, "compact"):
            self.approach.compact()
        return score

    def _forecast_at(self, origin: int, future: pd.DataFrame | None
                     ) -> tuple[int, np.ndarray, dict | None]:
        """The forecast (target units) from ``origin``, made once and kept until that day
        is learnt: the day is scored against what was forecast for it."""
        if self.pending is not None and self.pending[0] == origin:
            return self.pending
        inputs = self._inputs(future, origin)
        self._extend(inputs)
        windows = Windows(inputs.features, inputs.target, self.spec)
        z = self.approach.forecast(windows.input_at(origin), inputs.target[:origin])
        values = self.scaler.inverse_target(z.float()).numpy().astype(np.float64)
        self.pending = (origin, values, self.conformal.widths())
        return self.pending

    def _inputs(self, future: pd.DataFrame | None = None, origin: int | None = None) -> Inputs:
        """Scaled channels of every stored row, with the known-future covariates over the
        horizon from ``origin`` filled from ``future`` where the rows stop short."""
        n = len(self.series)
        inputs = make_inputs(self.series, n, self.horizon, self.cycles, scaler=self.scaler)
        if origin is None or not self.series.known_future or origin + self.horizon <= n:
            return inputs
        fill_future(inputs, self.series, self.scaler, future, origin, self.horizon)
        return inputs

    def _extend(self, inputs: Inputs) -> None:
        if hasattr(self.approach, "extend"):
            self.approach.extend(inputs)

    def _require_fit(self) -> None:
        if self.approach is None:
            raise RetainError("the forecaster is not fitted: call fit(history) or "
                              "Forecaster.load(folder) first")

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to go on exactly (see the module doc)."""
        self._require_fit()
        s = self.series
        return {
            "approach_name": self.approach_name, "warmup_days": self.warmup_days,
            "experiment": asdict(self.experiment),
            "series": {"target": s.target, "covariates": list(s.covariates),
                       "known_future": list(s.known_future), "freq": s.freq,
                       "times": s.frame.index.asi8.copy(),
                       "values": s.frame.to_numpy(np.float64)},
            "pretrain": self.pretrain, "revealed": self.revealed,
            "scaler": self.scaler.to_dict(), "approach": self.approach.state_dict(),
            "conformal": self.conformal.state_dict(),
            "pending": None if self.pending is None else {
                "origin": self.pending[0], "values": self.pending[1],
                "widths": None if self.pending[2] is None else {
                    str(k): v for k, v in self.pending[2].items()}},
            "scores": [{**d, "time": str(d["time"])} for d in self.scores],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Forecaster:
        """A forecaster from :meth:`state_dict`."""
        try:
            e = dict(state["experiment"])
            experiment = Experiment(**{**e, "recipe": Recipe(**e["recipe"])})
            self = cls(state["approach_name"], experiment, int(state["warmup_days"]))
            s = state["series"]
            frame = pd.DataFrame(np.asarray(s["values"]), columns=[s["target"],
                                                                   *s["covariates"]],
                                 index=pd.DatetimeIndex(np.asarray(s["times"]), name="time"))
            series = Series(frame, s["target"], tuple(s["covariates"]),
                            tuple(s["known_future"]), s["freq"])
            self._layout(series)
            self.series, self.scaler = series, Scaler.from_dict(state["scaler"])
            self.pretrain, self.revealed = int(state["pretrain"]), int(state["revealed"])
            inputs = make_inputs(series, len(series), self.horizon, self.cycles,
                                 scaler=self.scaler)
            approach = self._build(inputs)
            if self.approach_name == "hybrid":
                approach.load_state_dict(state["approach"])
            else:
                approach.load_state_dict(state["approach"], self._model_builder()())
            self.approach = approach
            self.conformal = AdaptiveConformal(self.horizon)
            self.conformal.load_state_dict(state["conformal"])
            p = state["pending"]
            self.pending = None if p is None else (int(p["origin"]), np.asarray(p["values"]), (
                None if p["widths"] is None else {int(k): np.asarray(v)
                                                  for k, v in p["widths"].items()}))
            self.scores = [{**d, "time": pd.Timestamp(d["time"])} for d in state["scores"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RetainError(f"not a forecaster's state: {exc!r}") from None
        return self

    @classmethod
    def from_run(cls, series: Series, experiment: Experiment, run: Any, inputs: Inputs,
                 name: str = "hybrid") -> Forecaster:
        """The forecaster a backtest (:func:`~retain.forecasting.backtest.run.run_experiment`
        over all of ``series``, which made ``inputs``) hands on: approach ``name`` as it
        stands after the run,
        with the intervals' state and the scores of the days it forecast, ready to forecast
        the day after the series and to learn the days after it."""
        approach_run = run.runs.get(name)
        if approach_run is None or approach_run.approach is None:
            raise RetainError(f"the run has no deployable {name!r} approach; it ran "
                              f"{list(run.runs)}")
        self = cls(name, experiment, warmup_days=0)
        self._layout(series)
        self.series, self.approach = series, approach_run.approach
        self.pretrain = int(self.approach.pretrain if name == "hybrid"
                            else run.origin_rows[0])
        days = len(run.origin_rows)
        self.revealed = int(run.origin_rows[-1]) + self.period
        if self.revealed > len(series):
            raise RetainError("the run's last day is not in the series: run it over all of it")
        self.scaler = inputs.scaler
        self.conformal = AdaptiveConformal(self.horizon)
        self.pending, self.scores = None, []
        for d in range(days):
            widths = self.conformal.widths()
            errors = np.abs(approach_run.forecasts[d] - run.actual[d])
            self.conformal.observe(errors, widths)
            self.scores.append({"time": run.origins[d], "mae": float(errors.mean()),
                                **{f"in_{level}": float(np.mean(errors <= widths[level]))
                                   if widths else float("nan") for level in LEVELS}})
        return self

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the whole state into the folder ``path`` (atomically)."""
        from retain.checkpoint.state import save_state

        return save_state(path, KIND, self.state_dict(), VERSION, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """A forecaster saved by :meth:`save`, ready to forecast and update."""
        from retain.checkpoint.state import load_state

        return cls.from_state(load_state(Path(path), KIND, VERSION))

    def __repr__(self) -> str:
        if self.approach is None:
            return f"Forecaster({self.approach_name!r}, not fitted)"
        return (f"Forecaster({self.approach_name!r}, {self.days_learned} days learnt, next "
                f"forecast from {self.next_origin})")
