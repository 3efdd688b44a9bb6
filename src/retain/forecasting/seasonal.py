"""The hybrid's seasonal base: MSTL over the day and the week, AutoETS on what is left,
refreshed once a day on a trailing window (see :mod:`~retain.forecasting.hybrid` for why),
and what a seasonal decomposition needs of a history.

A deployed forecaster and the backtest's contenders (``mstl``) both build on this module; it
imports nothing else of :mod:`retain.forecasting`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from retain.errors import RetainError


def require_statsforecast():
    """statsforecast's models, or an error naming the extra that installs them."""
    try:
        import statsforecast.models as models
    except ImportError:
        raise RetainError("the mstl and hybrid approaches need statsforecast: "
                          "pip install 'retain[forecast]'") from None
    return models


def seasonal_periods(period: int, season: int) -> tuple[int, ...]:
    """The seasonal cycles in steps (a day and a week for sub-daily data, a week for daily
    data): cycles of one step are no cycle."""
    return tuple(sorted({p for p in (period, season) if p > 1}))


def check_history(rows: int, seasons: Sequence[int], what: str) -> None:
    """MSTL needs two whole cycles of its longest season."""
    need = 2 * max(seasons, default=1) + 1
    if rows < need:
        raise RetainError(
            f"{what} has {rows} steps, but a seasonal decomposition needs at least two whole "
            f"cycles of its longest season ({need} steps, {need / max(1, min(seasons)):.0f} "
            f"periods); use a longer pre-training period (--pretrain-days)")


def history_needed(approach: str, seasons: Sequence[int], period: int, horizon: int,
                   validate_days: int, lookback: int) -> int:
    """Pre-training steps ``approach`` needs: two cycles of the longest season before its
    validation days (mstl, hybrid: the hybrid also a day of base errors and its lookback),
    or a week of rows past the longest lag (gbm); 0 for the others."""
    cycles = 2 * max(seasons, default=1) + 1
    if approach == "mstl":
        return cycles + validate_days * period
    if approach in ("hybrid", "hybrid-retrain"):
        return -(-cycles // period) * period + lookback + (validate_days + 1) * period
    if approach == "gbm":
        return max(s * math.ceil(horizon / s) for s in seasons) + 7 * period
    return 0


@dataclass
class EtsFit:
    """A fitted AutoETS and what it was fit on, so that a saved base can fit it again."""

    y: np.ndarray
    model: str
    damped: bool | None
    fitted: object

    @classmethod
    def fit(cls, models, y: np.ndarray, model: str, damped: bool | None) -> EtsFit:
        y = np.asarray(y, dtype=np.float64)
        return cls(y, model, damped, models.AutoETS(model=model, damped=damped).fit(y))

    def forward(self, y: np.ndarray, h: int) -> dict:
        return self.fitted.forward(y=y, h=h)

    def describe(self) -> dict:
        return {"y": self.y, "model": self.model, "damped": self.damped}


class SeasonalBase:
    """Base forecasts [H] from any origin of ``target``, refreshed once per ``period``.

    Refreshes happen at rows ``anchor + k * period`` (the forecast origins); an origin uses
    the last refresh at or before it, so it sees nothing at or after itself.
    """

    def __init__(self, target: np.ndarray, seasons: Sequence[int], horizon: int, period: int,
                 anchor: int, window: int, jump: int | None = None, ets_every: int = 1,
                 form_every: int = 28):
        self.target, self.seasons, self.horizon = target, tuple(seasons), horizon
        self.period, self.anchor, self.window = period, anchor % period, window
        self.jump, self.ets_every, self.form_every = jump, ets_every, form_every
        self._form: tuple[str, bool] | None = None
        self.first = self.anchor + period * -(-(2 * max(self.seasons) + 1 - self.anchor)
                                              // period)  # first refresh with two cycles
        self._fits: dict[int, tuple] = {}
        self._forecasts: dict[int, np.ndarray] = {}
        #: network inputs built on this base, by origin (a retrain reuses them)
        self.inputs: dict[int, torch.Tensor] = {}
        self._ets = None
        self._refreshes = 0

    def _refresh(self, r: int) -> tuple:
        if r in self._fits:
            return self._fits[r]
        models = require_statsforecast()
        from statsmodels.tsa.seasonal import MSTL  # statsforecast's own dependency

        start = max(0, r - self.window)
        y = self.target[start:r]
        check_history(len(y), self.seasons, "the hybrid's base window")
        mstl = MSTL(y, periods=self.seasons, stl_kwargs=r_stl(self.seasons, self.jump))
        parts = np.asarray(mstl.fit().seasonal).reshape(len(y), -1)  # a column per season
        seasonal = parts.sum(axis=1)
        profiles = [(parts[-s:, i], s) for i, s in enumerate(mstl.periods)]
        if self._ets is None or self._refreshes % self.ets_every == 0:
            self._ets = self._fit_ets(models, y - seasonal)
        self._refreshes += 1
        self._fits[r] = fit = (start, y - seasonal, profiles, self._ets)
        return fit

    def _fit_ets(self, models, deseasonal: np.ndarray) -> EtsFit:
        """AutoETS's form search every ``form_every`` refreshes; that form's parameters refit
        between. The search costs three fits, and on the pre-training days of the development
        series the form it finds changes seldom (elecdemand: on 3 days in 28, the error type).

        A multiplicative form needs positive values; deseasonalised values of a positive
        series can still reach zero or below, so such a form is searched again (among the
        forms the data allow) instead of refit, and the search's form is kept."""
        if self._form is not None and self._refreshes % self.form_every:
            form, damped = self._form
            if "M" not in form or deseasonal.min() > 0:
                return EtsFit.fit(models, deseasonal, form, damped)
        ets = EtsFit.fit(models, deseasonal, "ZZN", None)
        components = str(ets.fitted.model_["components"])
        self._form = (components[:3], components[3:] == "D")
        return ets

    def compact(self, keep_from: int) -> None:
        """Forget fits, forecasts and windows of origins before ``keep_from`` (a deployed
        forecaster's later days never read them; a backtest keeps them for its retrains)."""
        for cache in (self._fits, self._forecasts, self.inputs):
            for key in [k for k in cache if k < keep_from]:
                del cache[key]

    def state_dict(self) -> dict:
        """The refreshes still cached, the forecasts from them and each ETS fit's data and
        form: on load every ETS is fit again on the same data (statsforecast's fits are
        deterministic), so no statsforecast object is stored."""
        ets = [self._ets] + [f[3] for f in self._fits.values()]
        unique = list({id(e): e for e in ets if e is not None}.values())
        index = {id(e): i for i, e in enumerate(unique)}
        return {
            "form": None if self._form is None else list(self._form),
            "refreshes": self._refreshes,
            "ets": [e.describe() for e in unique],
            "current_ets": index.get(id(self._ets)),
            "fits": {r: {"start": start, "deseasonal": d, "ets": index[id(e)],
                         "profiles": [p for p, _ in profiles],
                         "seasons": [s for _, s in profiles]}
                     for r, (start, d, profiles, e) in self._fits.items()},
            "forecasts": dict(self._forecasts),
        }

    def load_state_dict(self, state: dict) -> None:
        models = require_statsforecast()
        fits = [EtsFit.fit(models, e["y"], e["model"], e["damped"]) for e in state["ets"]]
        self._form = None if state["form"] is None else (state["form"][0],
                                                         bool(state["form"][1]))
        self._refreshes = int(state["refreshes"])
        self._ets = None if state["current_ets"] is None else fits[state["current_ets"]]
        self._fits = {int(r): (int(f["start"]), f["deseasonal"],
                               list(zip(f["profiles"], f["seasons"], strict=True)),
                               fits[f["ets"]]) for r, f in state["fits"].items()}
        self._forecasts = {int(o): v for o, v in state["forecasts"].items()}
        self.inputs = {}

    def _seasonal(self, profiles, steps: np.ndarray) -> np.ndarray:
        return sum(p[steps % s] for p, s in profiles)

    def at(self, origin: int) -> np.ndarray:
        """The base forecast for rows ``[origin, origin + H)`` from rows before ``origin``."""
        if origin in self._forecasts:
            return self._forecasts[origin]
        r = self.anchor + (origin - self.anchor) // self.period * self.period
        if r < self.first:
            raise RetainError(f"no base forecast before row {self.first} (two seasonal "
                              f"cycles); asked for origin {origin}")
        start, deseasonal, profiles, ets = self._refresh(r)
        k = origin - r
        recent = self.target[r:origin] - self._seasonal(profiles, np.arange(k))
        history = np.concatenate((deseasonal, recent))[-self.window:]
        level = np.asarray(ets.forward(y=history, h=self.horizon)["mean"])
        out = level + self._seasonal(profiles, k + np.arange(self.horizon))
        self._forecasts[origin] = out
        return out


def r_stl(seasons: Sequence[int], jump: int | None = None) -> dict[str, int]:
    """STL's settings in R's ``stl``, which MSTL was defined with, for statsmodels' MSTL.

    statsmodels' STL evaluates every LOESS at every point and runs 5 inner iterations; R's
    steps a tenth of each smoothing window (``jump``: that step for every smoother instead)
    and interpolates, and runs 2 inner iterations. On 56 days of half-hours R's settings
    cost about a seventieth of statsmodels' and stay within 2% of its seasonal amplitude;
    ``seasonal_deg=0`` is statsforecast's ``mstl``'s choice.

    >>> r_stl([48, 336])
    {'seasonal_deg': 0, 'inner_iter': 2, 'seasonal_jump': 2, 'trend_jump': 57, 'low_pass_jump': 34}
    """
    settings = {"seasonal_deg": 0, "inner_iter": 2}
    if jump is not None:
        return settings | {f"{k}_jump": jump for k in ("seasonal", "trend", "low_pass")}
    period = max(seasons)
    seasonal = 7 + 4 * len(seasons)  # mstl's window for its longest (last) season

    def odd(n: float) -> int:
        n = int(np.ceil(n))
        return n + (n % 2 == 0)
    trend = odd(1.5 * period / (1 - 1.5 / seasonal))  # statsmodels' and R's default windows
    low_pass = odd(period + 1)
    return settings | {"seasonal_jump": -(-seasonal // 10), "trend_jump": -(-trend // 10),
                       "low_pass_jump": -(-low_pass // 10)}
