"""What a user hands a deployed forecaster: newly measured rows, and the known-future
covariates over the next horizon. Every problem is refused with a :class:`RetainError` that
names it, before anything changes.

>>> import pandas as pd
>>> from retain.forecasting import synthetic
>>> series = synthetic(days=2)
>>> later = pd.DataFrame(series.frame.iloc[-1:].to_numpy(), columns=series.frame.columns,
...                      index=[series.frame.index[-1] + pd.Timedelta("2h")])
>>> append_rows(series, later)
Traceback (most recent call last):
...
retain.errors.RetainError: new rows: expected 2024-01-03 00:00:00 next (the series steps every \
1h from 2024-01-02 23:00:00), got 2024-01-03 01:00:00 — a gap
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from retain.errors import RetainError
from retain.forecasting.data import Series
from retain.forecasting.features import Inputs
from retain.forecasting.scaling import Scaler


def append_rows(series: Series, rows: pd.DataFrame) -> Series:
    """``series`` with ``rows`` after it; every problem is refused before anything changes:
    missing or extra columns, a non-time index, NaN/inf, unsorted or duplicated times,
    off-grid times, a gap after the last stored row, and a stored row given other values."""
    columns = [series.target, *series.covariates]
    if not isinstance(rows, pd.DataFrame):
        raise RetainError(f"new rows must be a DataFrame indexed by time, got "
                          f"{type(rows).__name__}")
    missing = [c for c in columns if c not in rows.columns]
    extra = [c for c in rows.columns if c not in columns]
    if missing or extra:
        raise RetainError(f"new rows must have the columns {columns}"
                          + (f"; missing {missing}" if missing else "")
                          + (f"; unexpected {extra}" if extra else ""))
    if not isinstance(rows.index, pd.DatetimeIndex):
        raise RetainError("new rows must be indexed by time (a DatetimeIndex)")
    if len(rows) == 0:
        return series
    values = rows[columns].to_numpy(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        raise RetainError(f"new rows: column {columns[bad[0][1]]!r} has a missing or infinite "
                          f"value at {rows.index[bad[0][0]]}")
    times = rows.index
    if times.has_duplicates:
        raise RetainError(f"new rows: time {times[times.duplicated()][0]} appears twice")
    if not times.is_monotonic_increasing:
        raise RetainError("new rows: times are not in increasing order (first at "
                          f"{times[np.flatnonzero(np.diff(times.asi8) < 0)[0] + 1]})")
    frame = series.frame
    old = times[times <= frame.index[-1]]
    if len(old):
        known = old.isin(frame.index)
        if not known.all():
            raise RetainError(f"new rows: {old[~known][0]} is not on the series' "
                              f"{series.freq} grid")
        stored = frame.loc[old, columns].to_numpy(np.float64)
        differ = np.flatnonzero((stored != values[:len(old)]).any(axis=1))
        if len(differ):
            raise RetainError(f"new rows: {old[differ[0]]} was already learnt with other "
                              f"values (stored {_row(columns, stored[differ[0]])}, "
                              f"given {_row(columns, values[differ[0]])})")
    new = rows.iloc[len(old):]
    if not len(new):
        return series
    expected = pd.date_range(frame.index[-1], periods=len(new) + 1, freq=series.freq)[1:]
    wrong = np.flatnonzero(expected != new.index)
    if len(wrong):
        i = wrong[0]
        raise RetainError(f"new rows: expected {expected[i]} next (the series steps every "
                          f"{series.freq} from {frame.index[-1]}), got {new.index[i]}"
                          + (" — a gap" if new.index[i] > expected[i] else ""))
    added = pd.DataFrame(values[len(old):], index=new.index.rename(frame.index.name),
                         columns=columns)
    return replace(series, frame=pd.concat([frame, added]))


def _row(columns: list[str], values: np.ndarray) -> dict:
    return dict(zip(columns, values.tolist(), strict=True))


def fill_future(inputs: Inputs, series: Series, scaler: Scaler, future: pd.DataFrame | None,
                origin: int, horizon: int) -> None:
    """Put the known-future covariates of ``future`` (indexed by time) into ``inputs`` over
    the horizon from ``origin``, where the stored rows stop short of it."""
    n = len(series)
    times = series.extended_index(origin + horizon - n)[n:]
    columns = list(series.known_future)
    if future is None:
        raise RetainError(f"the forecaster uses the known-future column(s) {columns}: "
                          f"pass their values from {times[0]} to {times[-1]} as "
                          f"future=DataFrame indexed by time")
    missing = [c for c in columns if c not in future.columns]
    if missing:
        raise RetainError(f"future lacks the known-future column(s) {missing}")
    absent = times.difference(pd.DatetimeIndex(future.index))
    if len(absent):
        raise RetainError(f"future lacks {len(absent)} of the {len(times)} steps the "
                          f"forecast needs, first {absent[0]}")
    values = future.loc[times, columns].to_numpy(np.float64)
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise RetainError(f"future column {columns[bad[1]]!r} has a missing or infinite "
                          f"value at {times[bad[0]]}")
    for k, c in enumerate(columns):
        j = scaler.names.index(c)
        inputs.features[n - horizon:origin, j] = torch.from_numpy(
            (values[:, k] - scaler.mean[j]) / scaler.std[j]).float()
