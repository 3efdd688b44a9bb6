"""Point-forecast errors: MAE, RMSE and MAPE, overall and per calendar month."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.errors import RetainError


def errors(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """``mae``, ``rmse`` and ``mape`` (percent; rows where the actual is 0 are left out of
    MAPE, which is undefined there)."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    if actual.shape != forecast.shape or actual.size == 0:
        raise RetainError(f"actual {actual.shape} and forecast {forecast.shape} must have the "
                          f"same non-empty shape")
    diff = forecast - actual
    nonzero = actual != 0
    mape = float(np.mean(np.abs(diff[nonzero] / actual[nonzero])) * 100) if nonzero.any() \
        else float("nan")
    return {"mae": float(np.mean(np.abs(diff))), "rmse": float(np.sqrt(np.mean(diff**2))),
            "mape": mape}


def errors_by_month(actual: np.ndarray, forecast: np.ndarray,
                    times: pd.DatetimeIndex) -> dict[str, dict[str, float]]:
    """:func:`errors` per calendar month of the forecast values' times (``"2014-03"``)."""
    months = np.asarray(times.strftime("%Y-%m"))
    actual, forecast = np.ravel(actual), np.ravel(forecast)
    if len(months) != len(actual):
        raise RetainError(f"{len(months)} times for {len(actual)} values")
    return {m: errors(actual[months == m], forecast[months == m]) for m in np.unique(months)}


def daily_mae(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """MAE of each forecast day ([days, H] -> [days])."""
    return np.abs(np.asarray(forecast) - np.asarray(actual)).mean(axis=1)
