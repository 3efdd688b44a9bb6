"""A store whose versions are daily forecasters: ``retain init --task forecast``.

Layout (the tabular store's, see :mod:`retain.store.store`, plus the measured rows)::

    DIR/registry.sqlite     the history; its config names the series' columns and settings
    DIR/versions/000001/    one saved :class:`~retain.forecasting.forecaster.Forecaster`
    DIR/observed/000001/    every measured row the store was given, one folder per call,
                            written before anything learns from them
    DIR/.lock               taken by every writer

``update`` first checks the new rows against every row observed so far (missing or extra
columns, NaN/inf, duplicated, unsorted or off-grid times, a gap, a row already given with
other values: refused, nothing changed) and keeps them. Then, one completed day at a time,
the current version scores the forecast it made for the day (test-then-train), a candidate
learns the day on top of it (with any earlier day a rejected update left unlearnt) and the
gate decides:

- **learning must not make the learnt days worse**: the candidate's forecast for them now
  (:meth:`Forecaster.hindsight`, each from the rows before it) may not have a higher MAE
  than the forecast made before learning them, beyond ``tolerance`` (0.1: 10%). A step
  that diverged, or a learning rate that overshoots, fails here; so does anything
  non-finite.
- seasonal-naive's MAE on the same days is recorded beside it (``retain history``), and
  so is which version made each forecast, for the per-version error the service reports.

A rejected candidate is kept for inspection and the parent goes on serving; the day stays
observed, so the next update's candidate learns it again with the next day: no revealed day
is discarded. Checkpoints are written before the registry names them, so a crash at any
point (SIGKILL included) leaves the last good version serving.

>>> import tempfile
>>> from retain.forecasting import synthetic
>>> from retain.forecasting.experiment import Experiment
>>> frame = synthetic(days=44).frame.reset_index()
>>> store = ForecastStore(Path(tempfile.mkdtemp()) / "demand")
>>> store.init(frame.iloc[:41 * 24], time="time", label="Demand", covariates=["Temperature",
...            "WorkDay"], known_future=["WorkDay"], experiment=Experiment.quick()).status
'promoted'
>>> [(v.id, v.status) for v in store.update(frame.iloc[41 * 24:43 * 24])]
[(2, 'promoted'), (3, 'promoted')]
>>> store.predict(frame.iloc[43 * 24:][["time", "WorkDay"]]).columns.tolist()
['time', 'forecast', 'lower_80', 'upper_80', 'lower_95', 'upper_95', 'version']
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time as clock
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from retain.checkpoint.atomic import TEMP_PREFIX, write_folder
from retain.checkpoint.state import load_state, save_state
from retain.errors import RetainError
from retain.forecasting.data import Series, from_frame, parse_numbers, parse_times
from retain.forecasting.experiment import Experiment
from retain.forecasting.forecaster import Forecaster, append_rows
from retain.store.lock import StoreLock
from retain.store.registry import Registry, Version, now
from retain.store.store import DEFAULT_WAIT, Store
from retain.store.tables import Data, read_frame

TASK = "forecast"
OBSERVED = "observed"
#: versions whose saved forecaster a store keeps (see :meth:`ForecastStore.prune`)
KEEP_VERSIONS = 30
ROWS_KIND = "observed-rows"


class ForecastStore(Store):
    """A folder of versioned daily forecasters (see the module doc); opened by
    :func:`open_store` when the folder was made with ``task="forecast"``."""

    # -- creating ----------------------------------------------------------------------------
    def init(self, data: Data, *, time: str = "time", label: str = "label",
             covariates: Sequence[str] = (), known_future: Sequence[str] = (),
             horizon: int | None = None, approach: str = "hybrid", freq: str | None = None,
             warmup_days: int = 7, experiment: Experiment | None = None,
             seed: int = 0, keep_versions: int | None = KEEP_VERSIONS) -> Version:
        """Fit the first forecaster on the history ``data`` (one row per time step) and
        create the store with it as version 1. ``horizon`` is in steps (default: a day);
        ``experiment`` sets the model and its search (default :class:`Experiment`);
        ``keep_versions``: the retention policy (see :meth:`prune`; ``None`` keeps all)."""
        if keep_versions is not None and keep_versions < 2:
            raise RetainError(f"keep_versions must be at least 2 (the current version and "
                              f"one to roll back to) or None, got {keep_versions}")
        self._check_new_folder()
        frame, source = read_frame(data)
        series = from_frame(frame, time, label, covariates, known_future, freq, source=source)
        experiment = replace(experiment or Experiment(), horizon=horizon, seed=seed)
        started = clock.perf_counter()
        forecaster = Forecaster(approach, experiment, warmup_days).fit(series)
        metrics = {"days_learned": forecaster.days_learned,
                   "seconds": clock.perf_counter() - started,
                   **_recent_scores(forecaster)}
        config = {"task": TASK, "series": {"time": time, "label": label,
                                           "covariates": list(series.covariates),
                                           "known_future": list(series.known_future),
                                           "freq": series.freq},
                  "settings": {"approach": approach, "horizon": forecaster.horizon,
                               "warmup_days": warmup_days, "keep_versions": keep_versions}}
        first = Version(1, None, now(), _hash(series.frame), len(series),
                        str(series.frame.index[0]), str(series.frame.index[-1]), approach,
                        metrics, "promoted", "first version", current=True)
        self.path.mkdir(parents=True, exist_ok=True)
        with StoreLock(self.path, wait=0, purpose="init"):
            self._check_new_folder()
            self._clean(set())
            _write_rows(self.path / OBSERVED / f"{1:06d}", series.frame)
            forecaster.save(self._folder(1))
            Registry.create(self.path, config, first)
        return first

    # -- the daily update --------------------------------------------------------------------
    def update(self, data: Data, *, tolerance: float = 0.1,  # type: ignore[override]
               wait: float = DEFAULT_WAIT) -> list[Version]:
        """Keep the new rows, then score, learn and gate each day they complete (see the
        module doc). Returns one version per completed day (none if no day completed)."""
        if not tolerance >= 0:
            raise RetainError(f"tolerance must be >= 0, got {tolerance}")
        with self._writing(wait, "update") as registry:
            config = _config(registry, self.path)
            observed = self._observed(config)
            grown = append_rows(observed, _rows(data, config))
            if len(grown) > len(observed):
                _write_rows(self._next_rows_folder(), grown.frame.iloc[len(observed):])
            decided = self._learn_days(registry, grown, tolerance)
            self._prune(registry, config["settings"].get("keep_versions"))
            return decided

    def prune(self, keep: int, wait: float = DEFAULT_WAIT) -> list[int]:
        """The retention policy: delete the saved forecasters of all but the newest ``keep``
        versions and the current one (their records stay in the history; they can no longer
        be rolled back to or predicted from). ``update`` applies the store's
        ``keep_versions`` (default 30) after each run: a version of the default hybrid on
        half-hourly data is ~8 MiB, mostly its replay memory, so a year of daily versions
        would take ~3 GiB. Returns the versions pruned now."""
        if keep < 1:
            raise RetainError(f"keep must be at least 1, got {keep}")
        with self._writing(wait, "prune") as registry:
            _config(registry, self.path)
            return self._prune(registry, keep)

    def _prune(self, registry: Registry, keep: int | None) -> list[int]:
        if keep is None:
            return []
        ids = sorted(registry.ids())
        kept = set(ids[-keep:]) | {registry.current_id()}
        pruned = [i for i in ids if i not in kept and self._folder(i).exists()]
        for i in pruned:  # moved aside first: a crash never leaves half a folder under its name
            aside = self._folder(i).with_name(f"{TEMP_PREFIX}pruned-{i:06d}")
            os.rename(self._folder(i), aside)
            shutil.rmtree(aside)
        return pruned

    def _learn_days(self, registry: Registry, observed: Series,
                    tolerance: float) -> list[Version]:
        decided: list[Version] = []
        current = registry.get()
        forecaster = self._forecaster(current)
        # a day an earlier update decided on (rejected, or rolled back since) is not gated
        # alone again: it would be learnt the same way; it is learnt with the next day
        newest = max(registry.versions(), key=lambda v: v.id)
        decided_until = observed.frame.index.get_loc(pd.Timestamp(newest.data_end)) + 1
        first = forecaster.revealed
        for end in range(first + forecaster.period, len(observed) + 1, forecaster.period):
            if end <= decided_until:
                continue
            started = clock.perf_counter()
            parent = forecaster.revealed
            scores = forecaster.update(observed.frame.iloc[len(forecaster.series):end])
            days = len(scores)
            hindsight = forecaster.hindsight(days)
            before = scores["mae"].to_numpy()
            naive = _seasonal_naive(observed, forecaster, parent, end)
            worse = float(hindsight.mean()) / max(float(before.mean()), 1e-12) - 1
            promote = bool(np.isfinite(hindsight).all()) and worse <= tolerance
            reason = ("learnt " + _days(days) if promote else
                      "diverged: its forecasts are not finite" if not np.isfinite(
                          hindsight).all() else
                      f"learning made the learnt {_days(days)} worse: MAE "
                      f"{hindsight.mean():.4g} after learning against {before.mean():.4g} "
                      f"before (+{worse:.1%} > tolerance {tolerance:.0%})")
            last = scores.iloc[-1]
            day = observed.frame.iloc[end - forecaster.period:end]
            metrics = {"day": str(scores.index[-1]), "days_learned": days,
                       "forecast_by": current.id, "mae": float(last["mae"]),
                       "in_80": _number(last["in_80"]), "in_95": _number(last["in_95"]),
                       "mae_before": float(before.mean()),
                       "hindsight_mae": _number(hindsight.mean()),
                       "snaive_mae": _number(naive), "tolerance": tolerance,
                       "seconds": clock.perf_counter() - started}
            new = Version(registry.next_id(), current.id, now(), _hash(day), len(day),
                          str(day.index[0]), str(day.index[-1]), current.strategy, metrics)
            forecaster.save(self._folder(new.id))
            registry.add(new)
            registry.decide(new.id, "promoted" if promote else "rejected", reason, metrics)
            decided.append(registry.get(new.id))
            if promote:
                current = decided[-1]
            else:  # the parent serves on; the day is learnt again with the next one
                forecaster = self._forecaster(current)
        return decided

    # -- reading -----------------------------------------------------------------------------
    def load(self, version: int | None = None) -> Forecaster:  # type: ignore[override]
        """The forecaster of a version (default: the current one), as it was saved."""
        with self._registry() as registry:
            _config(registry, self.path)
            return self._forecaster(registry.get(version))

    def predict(self, future: Data | None = None,  # type: ignore[override]
                version: int | None = None) -> pd.DataFrame:
        """The next horizon after the last completed observed day, from a version (default:
        the current one): the days it did not learn (a rejected update, a rollback) are
        scored and passed with its weights unchanged. ``future``: rows with the
        known-future covariates over the horizon (a time column and those columns)."""
        with self._registry() as registry:
            config = _config(registry, self.path)
            chosen = registry.get(version)
        observed = self._observed(config)
        forecaster = self._forecaster(chosen)
        forecaster.update(observed.frame.iloc[len(forecaster.series):], learn=False)
        out = forecaster.forecast(None if future is None else _future(future, config))
        out.insert(len(out.columns), "version", chosen.id)
        return out.reset_index()

    def observed(self) -> Series:
        """Every row the store was given, in order."""
        with self._registry() as registry:
            return self._observed(_config(registry, self.path))

    def export(self, out: str | Path, version: int | None = None) -> Path:
        """A version's forecaster as a folder that ``Forecaster.load(out)`` reads."""
        with self._registry() as registry:
            _config(registry, self.path)
            chosen = registry.get(version)
        folder = self._open(chosen)
        write_folder(Path(out), {f.name: f.read_bytes() for f in folder.iterdir()})
        return Path(out)

    def errors_by_version(self) -> dict[int, dict[str, float]]:
        """For each version that made forecasts while serving: how many days it forecast
        and their mean absolute error (each day's forecast, made before the day was learnt,
        is recorded in the version that learnt it)."""
        days: dict[int, list[float]] = {}
        for v in self.history():
            if "forecast_by" in v.metrics:
                days.setdefault(int(v.metrics["forecast_by"]), []).append(v.metrics["mae"])
        return {k: {"days": len(m), "mae": float(np.mean(m))} for k, m in days.items()}

    # -- internals ---------------------------------------------------------------------------
    def _open(self, version: Version) -> Path:  # type: ignore[override]
        folder = self._folder(version.id)
        if not folder.exists():
            raise RetainError(f"version {version.id} has no saved forecaster: it was pruned by "
                              f"the retention policy (keep_versions) or never saved "
                              f"({version.status}: {version.reason})")
        return folder

    def _forecaster(self, version: Version) -> Forecaster:
        return Forecaster.load(self._open(version))

    def _observed(self, config: dict[str, Any]) -> Series:
        parts = sorted(p for p in (self.path / OBSERVED).iterdir() if p.name.isdigit())
        frames = [_read_rows(p) for p in parts]
        s = config["series"]
        if not frames:
            raise RetainError(f"{self.path} has lost its observed rows ({OBSERVED}/ is empty)")
        return Series(pd.concat(frames), s["label"], tuple(s["covariates"]),
                      tuple(s["known_future"]), s["freq"])

    def _next_rows_folder(self) -> Path:
        folder = self.path / OBSERVED
        numbers = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        return folder / f"{max(numbers, default=0) + 1:06d}"

    def _clean(self, known: set[int]) -> None:
        super()._clean(known)
        for leftover in (self.path / OBSERVED).glob(f"{TEMP_PREFIX}*"):
            shutil.rmtree(leftover)


def open_store(path: str | Path) -> Store:
    """The store in ``path``: a :class:`ForecastStore` if it was made for forecasting,
    else a tabular :class:`~retain.store.store.Store`."""
    with Registry(path) as registry:
        task = registry.config.get("task")
    return ForecastStore(path) if task == TASK else Store(path)


def _config(registry: Registry, path: Path) -> dict[str, Any]:
    config = registry.config
    if config.get("task") != TASK:
        raise RetainError(f"{path} is a store of tabular rows, not of forecasters; use "
                          "retain.store.Store")
    return config


def _rows(data: Data, config: dict[str, Any]) -> pd.DataFrame:
    """New measured rows as a frame indexed by time, in the store's columns."""
    frame, source = read_frame(data)
    s = config["series"]
    if s["time"] not in frame.columns:
        raise RetainError(f"{source} lacks the time column {s['time']!r}; it has "
                          f"{list(frame.columns)}")
    times = parse_times(frame[s["time"]], s["time"])
    columns = [c for c in frame.columns if c != s["time"]]
    values = {c: parse_numbers(frame[c], c) if c in (s["label"], *s["covariates"])
              else frame[c].to_numpy() for c in columns}
    return pd.DataFrame(values, index=times.rename("time"))


def _future(data: Data, config: dict[str, Any]) -> pd.DataFrame:
    frame, source = read_frame(data)
    s = config["series"]
    if s["time"] not in frame.columns:
        raise RetainError(f"{source} lacks the time column {s['time']!r}")
    times = parse_times(frame[s["time"]], s["time"])
    return pd.DataFrame({c: parse_numbers(frame[c], c) for c in frame.columns
                         if c in s["known_future"]}, index=times)


def _write_rows(folder: Path, frame: pd.DataFrame) -> None:
    save_state(folder, ROWS_KIND, {"columns": list(frame.columns),
                                   "times": torch.from_numpy(frame.index.asi8.copy()),
                                   "values": torch.from_numpy(frame.to_numpy(np.float64))})


def _read_rows(folder: Path) -> pd.DataFrame:
    state = load_state(folder, ROWS_KIND)
    return pd.DataFrame(np.asarray(state["values"]), columns=state["columns"],
                        index=pd.DatetimeIndex(np.asarray(state["times"]), name="time"))


def _seasonal_naive(observed: Series, forecaster: Forecaster, start: int, end: int) -> float:
    """MAE of repeating the values one season earlier over rows ``[start, end)``."""
    y = observed.frame[observed.target].to_numpy(np.float64)
    lag = forecaster.season
    if start < lag:
        return float("nan")
    return float(np.abs(y[start:end] - y[start - lag:end - lag]).mean())


def _recent_scores(forecaster: Forecaster) -> dict[str, float]:
    if not forecaster.scores:
        return {}
    return {"warmup_mae": float(np.mean([s["mae"] for s in forecaster.scores]))}


def _hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(frame.index.asi8.tobytes())
    digest.update(np.ascontiguousarray(frame.to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def _number(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"
