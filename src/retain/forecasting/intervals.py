"""Prediction intervals for any approach, from its own recent out-of-sample errors.

Split-conformal on a rolling window: the interval for day ``d`` at horizon step ``h`` is the
forecast plus or minus the finite-sample conformal quantile of the approach's absolute errors
on the last ``window_days`` days whose values were all revealed before day ``d``'s origin, at
steps ``h - pool .. h + pool`` (neighbouring steps pooled, so 56 days give a few hundred
errors per step). Because only past days' errors are used, an interval is as leak-free as
the forecast it surrounds; days with fewer than ``min_days`` such errors get none.

Adaptive (Gibbs & Candès, *Adaptive conformal inference under distribution shift*, NeurIPS
2021): the quantile each level asks for moves with the misses already revealed,
``alpha <- alpha + gamma * sum(alpha_nominal - missed)`` over each revealed day's steps, with
the paper's ``gamma = 0.005`` per observation. After a level shift a plain rolling window
keeps the small errors of before the shift for weeks and covers too little; the adaptive
level widens the interval within days and gives the long-run coverage back.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> actual = rng.normal(size=(60, 4)); forecast = np.zeros((60, 4))
>>> bounds = conformal_intervals(actual, forecast, np.arange(60) * 4, horizon=4)
>>> round(coverage(actual, *bounds[80]), 2), round(coverage(actual, *bounds[95]), 2)
(0.78, 0.93)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from retain.errors import RetainError

LEVELS = (80, 95)


def conformal_intervals(actual: np.ndarray, forecast: np.ndarray, origin_rows: np.ndarray,
                        horizon: int, levels: Sequence[int] = LEVELS, window_days: int = 56,
                        min_days: int = 7, pool: int = 2, gamma: float = 0.005
                        ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{level: (lower, upper)}``, each [days, H]; NaN on days without enough history.
    ``gamma = 0`` is the plain rolling split-conformal interval."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    if actual.shape != forecast.shape or actual.ndim != 2:
        raise RetainError(f"actual {actual.shape} and forecast {forecast.shape} must both be "
                          f"[days, horizon]")
    if any(not 0 < level < 100 for level in levels):
        raise RetainError(f"interval levels must lie strictly between 0 and 100, got {levels}")
    errors = np.abs(forecast - actual)
    days, steps = errors.shape
    revealed_at = np.asarray(origin_rows) + horizon  # day j is known from this row on
    width = {level: np.full((days, steps), np.nan) for level in levels}
    alpha = {level: 1 - level / 100 for level in levels}  # the miss rate asked for
    counted = 0  # days whose misses already moved alpha
    for d in range(days):
        known = np.flatnonzero(revealed_at[:d] <= origin_rows[d])
        for j in known[(known >= counted) & ~np.isnan(width[levels[0]][known, 0])]:
            for level in levels:
                missed = errors[j] > width[level][j]
                alpha[level] += gamma * float(np.sum((1 - level / 100) - missed))
        counted = known[-1] + 1 if len(known) else 0
        known = known[-window_days:]
        if len(known) < min_days:
            continue
        past = errors[known]
        for h in range(steps):
            ordered = np.sort(past[:, max(0, h - pool):h + pool + 1].ravel())
            n = len(ordered)
            for level in levels:  # the k-th smallest, k = ceil((n + 1)(1 - alpha))
                k = math.ceil((n + 1) * (1 - alpha[level]))
                width[level][d, h] = ordered[min(max(k, 1), n) - 1]
    return {level: (forecast - w, forecast + w) for level, w in width.items()}


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside ``[lower, upper]``, over the days that have bounds."""
    defined = ~np.isnan(lower)
    if not defined.any():
        return float("nan")
    inside = (actual >= lower) & (actual <= upper)
    return float(inside[defined].mean())


def summarize_intervals(actual: np.ndarray,
                        bounds: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Coverage and mean width per level of ``bounds`` (from :func:`conformal_intervals`),
    and the number of days they were measured on."""
    first = next(iter(bounds.values()))[0]
    out: dict = {"days": int((~np.isnan(first[:, 0])).sum())}
    for level, (lower, upper) in bounds.items():
        out[str(level)] = {"coverage": coverage(actual, lower, upper),
                           "mean_width": float(np.nanmean(upper - lower))
                           if out["days"] else float("nan")}
    return out


class AdaptiveConformal:
    """:func:`conformal_intervals` one day at a time, for a deployed forecaster: ask
    :meth:`widths` when forecasting a day, give :meth:`observe` that day's errors once it is
    revealed. For a horizon of at most one period (each day revealed before the next is
    forecast) the widths are those :func:`conformal_intervals` gives the same days.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> actual = rng.normal(size=(60, 4))
    >>> online = AdaptiveConformal(horizon=4)
    >>> rows = []
    >>> for day in actual:
    ...     w = online.widths()
    ...     rows.append(w[80] if w else np.full(4, np.nan))
    ...     online.observe(np.abs(day), w)
    >>> batch = conformal_intervals(actual, np.zeros((60, 4)), np.arange(60) * 4, horizon=4)
    >>> bool(np.allclose(np.array(rows), batch[80][1], equal_nan=True))
    True
    """

    def __init__(self, horizon: int, levels: Sequence[int] = LEVELS, window_days: int = 56,
                 min_days: int = 7, pool: int = 2, gamma: float = 0.005):
        if any(not 0 < level < 100 for level in levels):
            raise RetainError(f"interval levels must lie strictly between 0 and 100, got "
                              f"{levels}")
        self.horizon, self.levels, self.window_days = horizon, tuple(levels), window_days
        self.min_days, self.pool, self.gamma = min_days, pool, gamma
        self.alpha = {level: 1 - level / 100 for level in self.levels}
        self.errors = np.zeros((0, horizon))  # the last window_days revealed days

    def widths(self) -> dict[int, np.ndarray] | None:
        """Half-widths [H] per level for the next day (``None`` before ``min_days``)."""
        if len(self.errors) < self.min_days:
            return None
        out = {level: np.empty(self.horizon) for level in self.levels}
        for h in range(self.horizon):
            ordered = np.sort(self.errors[:, max(0, h - self.pool):h + self.pool + 1].ravel())
            n = len(ordered)
            for level in self.levels:
                k = math.ceil((n + 1) * (1 - self.alpha[level]))
                out[level][h] = ordered[min(max(k, 1), n) - 1]
        return out

    def observe(self, errors: np.ndarray, widths: dict[int, np.ndarray] | None) -> None:
        """A revealed day's absolute errors [H], and the widths its forecast was issued
        with (``None`` if it had none): the misses move each level, then the errors join
        the window."""
        errors = np.asarray(errors, dtype=float)
        if widths is not None:
            for level in self.levels:
                missed = errors > widths[level]
                self.alpha[level] += self.gamma * float(np.sum((1 - level / 100) - missed))
        self.errors = np.concatenate((self.errors, errors[None]))[-self.window_days:]

    def state_dict(self) -> dict:
        return {"alpha": {str(k): v for k, v in self.alpha.items()}, "errors": self.errors}

    def load_state_dict(self, state: dict) -> None:
        self.alpha = {int(k): float(v) for k, v in state["alpha"].items()}
        self.errors = np.asarray(state["errors"], dtype=float).reshape(-1, self.horizon)
