"""What a server over a forecast store holds: the rows observed, the journal, the forecast.

The rows the server knows are the store's observed rows followed by the *pending* ones: posted
to ``/observe``, checked against everything before them (:func:`append_rows`) and fsynced to
the journal (:mod:`retain.serve.forecast_journal`), not yet handed to the store. When they
complete a day, the update process (:mod:`retain.serve.forecast_updater`, watched by a thread)
hands them to :meth:`ForecastStore.update` (the store keeps them, then scores, learns and gates
each completed day), and the served version switches once the new forecast is computed. One
update runs at a time; rows posted meanwhile wait for the next one. The forecast of a version
over the rows known is computed once (off the event loop) and kept until a row, a future
covariate value or the version changes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from retain.errors import RetainError
from retain.forecasting.data import parse_times
from retain.forecasting.forecaster import append_rows
from retain.serve.checks import BadInput, number
from retain.serve.forecast_journal import RowJournal
from retain.serve.settings import ServeSettings
from retain.store.forecasts import ForecastStore
from retain.store.registry import Registry

Row = dict[str, Any]


class ForecastState:
    """The server's state over the forecast store ``settings.store``."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.store = ForecastStore(settings.path)
        with Registry(settings.path) as registry:
            self.columns: dict[str, Any] = registry.config["series"]
            self.version = registry.current_id()
        self.lock = threading.RLock()  # the rows, the future values and the journal
        self.journal = RowJournal(settings.path)
        stored = self.store.observed()
        self.stored = len(stored)
        self.series, self.future, self.revision = stored, None, 0
        for line, record in enumerate(self.journal.records(), 1):
            try:  # rows the store kept before a crash are identical: skipped
                self.series = append_rows(self.series, self._frame(record.get("rows", [])))
                self.future = self._merge(self._future(record.get("future", [])))
            except (RetainError, BadInput) as exc:
                raise RetainError(f"{self.journal.file}, line {line}, does not fit the store: "
                                  f"{exc}; move the file away to serve without it") from None
        first = self.store.load()
        self.period, self.offset = first.period, first.revealed % first.period
        self.cache: dict[tuple, Any] = {}
        self.computing = threading.Lock()
        self.thread: threading.Thread | None = None
        self.failed_at: float | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.started = time.time()
        self._task: asyncio.Task | None = None

    # -- rows in -----------------------------------------------------------------------------
    def observe(self, rows: Sequence[Row], future: Sequence[Row]) -> dict[str, Any]:
        """Check ``rows`` (and ``future`` known-future values) against every row known, keep
        them durably, and start an update if they complete a day."""
        if not rows and not future:
            raise BadInput("nothing to observe: send 'rows' (measured rows) and/or 'future' "
                           "(known-future values for the next horizon)")
        with self.lock:
            grown = append_rows(self.series, self._frame(rows)) if rows else self.series
            ahead = self._future(future) if future else None
            kept = grown.frame.iloc[len(self.series):]
            record: dict[str, Any] = {}
            if len(kept):
                record["rows"] = _records(kept, self.columns["time"])
            if ahead is not None:
                record["future"] = _records(ahead, self.columns["time"])
            if record:
                self.journal.append(record)  # durable before anything else changes
            self.series = grown
            if ahead is not None:
                self.future, self.revision = self._merge(ahead), self.revision + 1
            waiting = self.days_waiting()
            started = self.start_update()  # under the lock: the poll loop cannot start it first
        return {"kept": len(kept), "skipped": len(rows) - len(kept),
                "pending_rows": len(self.series) - self.stored, "days_waiting": waiting,
                "update_started": started}

    def _frame(self, rows: Sequence[Row]) -> pd.DataFrame:
        """Measured rows as a frame indexed by time, in the store's columns (checked)."""
        values = [self.columns["label"], *self.columns["covariates"]]
        return self._table(rows, values, "row")

    def _future(self, rows: Sequence[Row]) -> pd.DataFrame | None:
        if not rows:
            return None
        if not self.columns["known_future"]:
            raise BadInput("this store's forecaster uses no known-future column: send no "
                           "'future' rows")
        frame = self._table(rows, list(self.columns["known_future"]), "future row")
        if frame.index.has_duplicates:
            raise BadInput(f"future time {frame.index[frame.index.duplicated()][0]} appears "
                           "twice")
        return frame

    def _table(self, rows: Sequence[Row], columns: list[str], what: str) -> pd.DataFrame:
        time_column = self.columns["time"]
        need = [time_column, *columns]
        for r, row in enumerate(rows):
            missing = [c for c in need if c not in row]
            unknown = [c for c in row if c not in need]
            if missing or unknown:
                raise BadInput(f"{what} {r} " + "; ".join(
                    ([f"lacks column(s) {missing}"] if missing else [])
                    + ([f"has unknown column(s) {unknown}"] if unknown else []))
                    + f"; the store's {what}s have the columns {need}")
        data = {c: [number(row[c], f"{what} {r}, column {c!r}") for r, row in enumerate(rows)]
                for c in columns}
        times = parse_times(pd.Series([row[time_column] for row in rows], dtype=object),
                            time_column)
        if (times.tz is None) != (self.series.frame.index.tz is None):
            raise BadInput(f"{what} times must be given "
                           + ("without" if self.series.frame.index.tz is None else "with")
                           + " a time zone, as the store's are")
        return pd.DataFrame(data, index=times.rename("time"))

    def _merge(self, ahead: pd.DataFrame | None) -> pd.DataFrame | None:
        """The future values known, the latest posted winning, none at or before the last
        observed row (the rows hold those)."""
        merged = self.future if ahead is None else (
            ahead if self.future is None else ahead.combine_first(self.future))
        return None if merged is None else merged[merged.index > self.series.frame.index[-1]]

    def days_waiting(self) -> int:
        """Completed days no update has decided on yet."""
        with Registry(self.settings.path) as registry:
            newest = max(registry.versions(), key=lambda v: v.id)
        index = self.series.frame.index
        decided = index.get_loc(pd.Timestamp(newest.data_end)) + 1
        complete = self.offset + (len(index) - self.offset) // self.period * self.period
        return max(0, (complete - decided) // self.period)

    # -- the update --------------------------------------------------------------------------
    def start_update(self, retry: bool = False) -> bool:
        """Start the update thread if days wait and none runs (nor failed within
        ``retry_after`` seconds, unless ``retry``); ``True`` if started."""
        with self.lock:
            if self.updating or not self.days_waiting():
                return False
            if (not retry and self.failed_at is not None
                    and time.time() - self.failed_at < self.settings.retry_after):
                return False
            self.thread = threading.Thread(target=self._updates, name="retain-forecast-update",
                                           daemon=True)
            self.thread.start()
            return True

    @property
    def updating(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait_for_update(self, timeout: float = 60.0) -> None:
        """Block until the update thread (if any) is done."""
        if self.thread is not None:
            self.thread.join(timeout)

    def _updates(self) -> None:
        while True:
            with self.lock:
                if not self.days_waiting():
                    return
                rows = self.series.frame.iloc[self.stored:]
                if not len(rows):  # the store kept every row but a crash stopped it before
                    rows = self.series.frame.iloc[-1:]  # it learnt: an identical row re-runs it
            try:
                decided = self._run(rows)
            except Exception as exc:  # noqa: BLE001 - the rows wait in the journal for a retry
                self.failures += 1
                self.failed_at, self.last_error = time.time(), f"{type(exc).__name__}: {exc}"
                self._settle()
                return
            self.failed_at = self.last_error = None
            self._settle()
            if not decided:
                return

    def _run(self, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """:meth:`ForecastStore.update` on ``rows`` in the update process (this thread only
        waits for it); the versions it decided."""
        child = subprocess.Popen(
            [sys.executable, "-m", "retain.serve.forecast_updater", str(self.settings.path),
             repr(self.settings.forecast_tolerance)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        out, err = child.communicate(json.dumps(_records(rows, self.columns["time"])))
        if child.returncode != 0:
            lines = err.strip().splitlines() or [f"exit status {child.returncode}"]
            raise RetainError(f"the update process failed: {lines[-1]}")
        return json.loads(out)

    def _settle(self) -> None:
        """After the store changed: drop the rows it kept from the journal, then serve its
        current version, its forecast computed first."""
        stored = len(self.store.observed())
        with self.lock:
            self.stored = stored
            pending = self.series.frame.iloc[stored:]
            self.future = self._merge(None)
            record: dict[str, Any] = {}
            if len(pending):
                record["rows"] = _records(pending, self.columns["time"])
            if self.future is not None and len(self.future):
                record["future"] = _records(self.future, self.columns["time"])
            self.journal.rewrite([record] if record else [])
        self.refresh()

    def refresh(self) -> None:
        """Serve the store's current version (its forecast computed before the switch)."""
        with Registry(self.settings.path) as registry:
            version = registry.current_id()
        if version != self.version:
            try:
                self.compute(self.key(version))
            except (RetainError, BadInput):
                pass  # answered, with its reason, to whoever asks
            self.version = version

    # -- the forecast ------------------------------------------------------------------------
    def key(self, version: int | None = None) -> tuple[int, int, int]:
        return (self.version if version is None else version, len(self.series), self.revision)

    async def forecast(self, version: int | None = None) -> dict[str, Any]:
        """The answer to ``GET /forecast``: kept, or computed in a thread."""
        key = self.key(version)
        found = self.cache.get(key)
        if found is None:
            found = await asyncio.to_thread(self.compute, key)
        if isinstance(found, BadInput):
            raise found
        return found

    def compute(self, key: tuple[int, int, int]) -> Any:
        """The forecast of version ``key[0]`` after the first ``key[1]`` rows known: what
        :meth:`ForecastStore.predict` answers once the store holds those rows."""
        with self.computing:
            if key in self.cache:
                return self.cache[key]
            version, n, _ = key
            with self.lock:
                rows, future = self.series.frame.iloc[:n], self.future
            forecaster = self.store.load(version)
            forecaster.update(rows.iloc[len(forecaster.series):], learn=False)
            try:
                self._check_future(forecaster, rows.index[-1], future)
                out = forecaster.forecast(future)
                found: Any = {"version": version, "forecast": [
                    {"time": t.isoformat(), **{c: _value(v) for c, v in row.items()}}
                    for t, row in out.iterrows()]}
            except BadInput as exc:
                found = exc
            self.cache = {**dict(list(self.cache.items())[-7:]), key: found}
            return found

    def _check_future(self, forecaster: Any, last: pd.Timestamp,
                      future: pd.DataFrame | None) -> None:
        columns = list(self.columns["known_future"])
        times = pd.date_range(forecaster.next_origin, periods=forecaster.horizon,
                              freq=forecaster.series.freq)
        beyond = times[times > last]
        missing = beyond if future is None else beyond.difference(future.index)
        if columns and len(missing):
            raise BadInput(f"the forecast from {times[0]} needs the known-future column(s) "
                           f"{columns} at {len(missing)} step(s) after the last observed row, "
                           f"first {missing[0]}: send them as 'future' rows to POST /observe",
                           status=409)

    # -- running -----------------------------------------------------------------------------
    async def follow(self) -> None:
        """Follow rollbacks made elsewhere and retry a failed update, every ``poll`` s."""
        while True:
            await asyncio.sleep(self.settings.poll)
            try:
                if not self.updating:
                    await asyncio.to_thread(self.refresh)
                self.start_update()
            except Exception as exc:  # noqa: BLE001 - a failed check must not stop serving
                self.last_error = f"{type(exc).__name__}: {exc}"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.follow())
        self.start_update(retry=True)  # days the journal or a killed update left

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "version": self.version,
                "observed_until": self.series.frame.index[-1].isoformat(),
                "pending_rows": len(self.series) - self.stored,
                "days_waiting": self.days_waiting(), "update_running": self.updating,
                "last_error": self.last_error, "uptime_s": round(time.time() - self.started, 1)}


def _records(frame: pd.DataFrame, time_column: str) -> list[Row]:
    return [{time_column: t.isoformat(), **{c: float(v) for c, v in row.items()}}
            for t, row in frame.iterrows()]


def _value(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
