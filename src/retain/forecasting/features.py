"""Model inputs: the target, covariates and calendar cycles as channels of one scaled array.

Channel 0 is the target. Values known in advance (calendar cycles, covariates declared
``known_future``) are shifted ``horizon`` steps earlier ("lead" channels), so the last
``horizon`` positions of an input window carry their values over the forecast horizon while
the window itself never extends past the forecast origin. This keeps every window a plain
slice of one array (no per-window copies), and the past-only channels stay past-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from retain.errors import RetainError
from retain.forecasting.data import Series
from retain.forecasting.scaling import Scaler

CYCLES = {"day": pd.Timedelta("1D"), "week": pd.Timedelta("7D")}


@dataclass(frozen=True)
class Inputs:
    """Scaled channels ``features`` [T, C] (lead channels already shifted), the scaled
    target [T] and the scaler that made them."""

    features: torch.Tensor
    target: torch.Tensor
    scaler: Scaler
    lead: tuple[bool, ...]


def calendar(index: pd.DatetimeIndex, cycles: Sequence[str]) -> dict[str, np.ndarray]:
    """sin/cos of the phase in each cycle (wall-clock time), so 23:30 sits next to 00:00."""
    unknown = [c for c in cycles if c not in CYCLES]
    if unknown:
        raise RetainError(f"unknown calendar cycle(s) {unknown}; choose from {list(CYCLES)}")
    seconds = (index - index.normalize()).total_seconds().to_numpy()
    days = index.day_of_week.to_numpy() + seconds / 86400.0
    phases = {"day": seconds / 86400.0, "week": days / 7.0}
    out = {}
    for cycle in cycles:
        angle = 2 * np.pi * phases[cycle]
        out[f"{cycle}_sin"], out[f"{cycle}_cos"] = np.sin(angle), np.cos(angle)
    return out


def useful_cycles(series: Series, cycles: Sequence[str] = ("day", "week")) -> tuple[str, ...]:
    """The cycles longer than one step (a daily series has no time of day)."""
    offset = pd.tseries.frequencies.to_offset(series.freq)
    try:
        step = pd.to_timedelta(offset)
    except ValueError:  # calendar steps (months, years) are longer than any cycle here
        return ()
    return tuple(c for c in cycles if CYCLES[c] > step)


def make_inputs(series: Series, train_end: int, horizon: int,
                cycles: Sequence[str] = ("day", "week"), scaler: Scaler | None = None) -> Inputs:
    """Channels of ``series`` scaled by statistics of rows ``[0, train_end)`` only (or by a
    saved ``scaler``, whose channels must be these)."""
    if not 2 <= train_end <= len(series):
        raise RetainError(f"training period of {train_end} rows does not fit a series of "
                          f"{len(series)} rows")
    frame = series.frame
    n = len(frame)
    # one extra horizon of rows: the calendar is known there, the data are NaN (and never
    # used, because no complete window reaches past the end)
    index = series.extended_index(horizon)
    table = frame[[series.target, *series.covariates]].reindex(index)
    table = table.assign(**calendar(index, cycles))
    names = list(table.columns)
    lead = np.array([c in series.known_future or c not in frame.columns for c in names])
    raw = table.to_numpy(np.float64)
    if scaler is None:
        scaler = Scaler.fit(raw[:train_end], names)
    elif list(scaler.names) != names:
        raise RetainError(f"the series gives channels {names}; the saved model was trained "
                          f"on {list(scaler.names)}")
    scaled = np.nan_to_num(scaler.transform(raw))
    features = np.where(lead, scaled[horizon:], scaled[:n])
    return Inputs(torch.from_numpy(features.astype(np.float32)),
                  torch.from_numpy(scaled[:n, 0].astype(np.float32)), scaler,
                  tuple(bool(v) for v in lead))
