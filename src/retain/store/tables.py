"""The store's data: one row per sample with feature columns, a label (or target) column and an
optional time column, read from CSV/Parquet files or pandas DataFrames.

The column layout is fixed when the store is created (:class:`Schema`), so a later day's file
with a missing, renamed or extra column is refused by name instead of feeding the model the
wrong inputs. The fingerprint of the rows (hash, count, time range) lets the store refuse data it
has already learned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retain.datasets.files import TABLE_SUFFIXES, encode_labels, file_suffix, read_table_file
from retain.errors import DataNotFoundError, RetainError
from retain.store.windows import Windows, is_windows, read_windows

if TYPE_CHECKING:
    from retain.forecasting.scaling import Scaler

# The number/time parsers and the Scaler live in retain.forecasting, which imports pandas,
# scipy and river at module level; they are imported where used so that saving or loading a
# store does not load the forecasting package.

TASKS = ("classification", "regression")
HOLDOUTS = ("recent", "random")
Data = str | Path | pd.DataFrame


@dataclass(frozen=True)
class Schema:
    """Which columns are features, label and time, and what the label means."""

    features: tuple[str, ...]
    label: str
    task: str
    n_outputs: int
    time: str | None = None
    classes: tuple[str, ...] | None = None  # text class names; class id = position
    ignored: tuple[str, ...] = ()  # other columns of the first data, allowed and unused later
    shape: tuple[int, ...] | None = None  # [channels, time] of a window, for signals

    @classmethod
    def of_windows(cls, windows: Windows, task: str | None = None) -> Schema:
        """The schema of windows of signals (:mod:`retain.store.windows`): one feature name
        per channel, the label ``label``; classification only."""
        if task not in (None, "classification"):
            raise RetainError("windows of signals are classified; regression needs a table")
        if windows.label is None:
            raise RetainError(f"{windows.source} has no 'label' array: the first data needs "
                              "one label per window")
        y, classes = encode_labels(_label_values_of(windows.label),
                                   f"{windows.source}: labels")
        channels = tuple(f"channel{i}" for i in range(windows.x.shape[1]))
        return cls(channels, "label", "classification",
                   len(classes) if classes else int(y.max()) + 1,
                   classes=tuple(classes) if classes else None, shape=windows.x.shape[1:])

    @classmethod
    def infer(cls, frame: pd.DataFrame, label: str, time: str | None = None,
              features: list[str] | None = None, task: str | None = None,
              source: str = "the data") -> Schema:
        """The schema of a first data set: features default to every other column; the task to
        classification for integer, boolean or text labels, regression for real numbers."""
        _require(frame, [label, *([time] if time else []), *(features or [])], source)
        if features is None:
            features = [c for c in frame.columns if c not in (label, time)]
        if not features:
            raise RetainError(f"{source} has no feature columns besides {label!r}")
        ignored = tuple(c for c in frame.columns if c not in (*features, label, time))
        column = frame[label]
        if task is None:
            task = "regression" if pd.api.types.is_float_dtype(column) else "classification"
        if task not in TASKS:
            raise RetainError(f"task must be one of {TASKS}, got {task!r}")
        if task == "regression":
            return cls(tuple(features), label, task, 1, time, None, ignored)
        y, classes = encode_labels(_label_values(column), f"{source}: label column {label!r}")
        if int(y.min()) < 0:
            raise RetainError(f"{source}: label column {label!r} holds negative class ids")
        n_outputs = len(classes) if classes else int(y.max()) + 1
        return cls(tuple(features), label, task, n_outputs, time,
                   tuple(classes) if classes else None, ignored)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["shape"] is None:  # tables: the dict (and data fingerprints) as before signals
            del data["shape"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        classes, shape = data.get("classes"), data.get("shape")
        return cls(**{**data, "features": tuple(data["features"]),
                      "classes": tuple(classes) if classes else None,
                      "ignored": tuple(data.get("ignored", ())),
                      "shape": tuple(shape) if shape else None})


def version_schema(schema: Schema, normalization: dict[str, Any] | None) -> Schema:
    """The store's schema with the classes a version knows (kept with its checkpoint since
    classes can grow; a version saved before that knows the store's first classes)."""
    known = (normalization or {}).get("classes")
    if known is None:
        return schema
    return replace(schema, n_outputs=int(known["n_outputs"]),
                   classes=tuple(known["names"]) if known["names"] else None)


def grow_schema(data: Data, schema: Schema) -> Schema:
    """``schema`` with the labels of ``data`` it has not seen appended as new classes (text
    labels sorted after the known ones, integer ids up to the largest), so the ids of the
    known classes never change.

    >>> s = Schema(("a",), "label", "classification", 2, classes=("inner", "normal"))
    >>> grow_schema(pd.DataFrame({"a": [0.0, 1.0], "label": ["outer", "ball"]}), s).classes
    ('inner', 'normal', 'ball', 'outer')
    """
    if is_windows(data):
        labels = read_windows(data).label
        if labels is None:
            return schema
        values = _label_values_of(labels)
    else:
        frame, _ = read_frame(data)
        if schema.task != "classification" or schema.label not in frame.columns:
            return schema
        values = _label_values(frame[schema.label])
    if schema.classes is not None:
        new = sorted(set(values.astype(str).tolist()) - set(schema.classes))
        classes = (*schema.classes, *new)
        return replace(schema, classes=classes, n_outputs=len(classes)) if new else schema
    if values.dtype.kind not in "iub" and not (values.dtype.kind == "f"
                                               and np.all(values == np.round(values))):
        return schema  # read_table names the problem
    top = int(np.max(values)) + 1 if len(values) else 0
    return replace(schema, n_outputs=top) if top > schema.n_outputs else schema


def classes_dict(schema: Schema) -> dict[str, Any]:
    """What a version's checkpoint keeps of its classes (see :func:`version_schema`)."""
    return {"n_outputs": schema.n_outputs, "names": list(schema.classes or [])}


@dataclass(frozen=True)
class Fingerprint:
    """What a version learned from: hash of the rows, their count and time range."""

    hash: str
    rows: int
    start: str | None
    end: str | None


@dataclass
class Table:
    """Checked, numeric rows: ``x`` float32 [n, features], ``y`` int64 or float32 [n]."""

    x: np.ndarray
    y: np.ndarray | None
    times: pd.DatetimeIndex | None
    groups: np.ndarray | None = None  # the recording of each window (signals)

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, index: np.ndarray) -> Table:
        return Table(self.x[index], None if self.y is None else self.y[index],
                     None if self.times is None else self.times[index],
                     None if self.groups is None else self.groups[index])

    def split(self, fraction: float, how: str = "recent") -> tuple[Table, Table]:
        """``(learn, holdout)``: a ``fraction`` of the rows kept out, either the most recent
        (by time, else by order; for windows of recordings, the last of each recording) or a
        random sample (seeded by the rows themselves, so the same data always splits the same
        way).

        >>> t = Table(np.zeros((6, 1)), None, None, np.array(list("aaabbb")))
        >>> [part.groups.tolist() for part in t.split(0.34)]
        [['a', 'a', 'b', 'b'], ['a', 'b']]
        """
        if how not in HOLDOUTS:
            raise RetainError(f"holdout must be one of {HOLDOUTS} or a data file, got {how!r}")
        if not 0 < fraction < 1:
            raise RetainError(f"the holdout fraction must be between 0 and 1, got {fraction}")
        n_out = int(round(len(self) * fraction))
        if n_out < 1 or n_out >= len(self):
            raise RetainError(f"{len(self)} rows are too few to keep {fraction:.0%} out as a "
                              "holdout; send more rows or pass a holdout file")
        if how == "random":
            seed = int.from_bytes(hashlib.sha256(self.x.tobytes()).digest()[:8], "little")
            order = np.random.default_rng(seed).permutation(len(self))
            return self.rows(np.sort(order[:-n_out])), self.rows(np.sort(order[-n_out:]))
        if self.times is None and self.groups is not None:
            return self._split_recordings(fraction)
        order = (np.arange(len(self)) if self.times is None
                 else np.argsort(self.times.asi8, kind="stable"))
        return self.rows(order[:-n_out]), self.rows(order[-n_out:])

    def _split_recordings(self, fraction: float) -> tuple[Table, Table]:
        """The last ``fraction`` of each recording's windows (in time order within it) held
        out: a time cut per recording, as ``retain run --scenario recordings`` makes, so no
        recording is only learned or only tested, and no window held out precedes a learned
        one of its recording."""
        out = np.zeros(len(self), dtype=bool)
        for name in dict.fromkeys(self.groups.tolist()):  # in order of first appearance
            where = np.flatnonzero(self.groups == name)
            n_out = int(round(len(where) * fraction))
            out[where[len(where) - n_out:]] = n_out > 0
        if not out.any() or out.all():
            raise RetainError(f"{len(self)} windows in {len(set(self.groups.tolist()))} "
                              f"recordings are too few to keep {fraction:.0%} of each out as "
                              "a holdout; send more windows or pass holdout='random'")
        return self.rows(np.flatnonzero(~out)), self.rows(np.flatnonzero(out))

    def fingerprint(self, schema: Schema) -> Fingerprint:
        digest = hashlib.sha256(json.dumps(schema.to_dict(), sort_keys=True).encode())
        for part in (self.x, self.y, None if self.times is None else self.times.asi8):
            if part is not None:
                digest.update(np.ascontiguousarray(part).tobytes())
        start = end = None
        if self.times is not None:
            start, end = self.times.min().isoformat(), self.times.max().isoformat()
        return Fingerprint(digest.hexdigest(), len(self), start, end)


def read_frame(data: Data) -> tuple[pd.DataFrame, str]:
    """A DataFrame and a name for messages, from a CSV/Parquet path or a DataFrame."""
    if isinstance(data, pd.DataFrame):
        frame, source = data, "the data frame"
    else:
        path = Path(data).expanduser()
        if not path.is_file():
            raise DataNotFoundError(f"data file not found: {path}")
        suffix = file_suffix(path)
        if suffix not in TABLE_SUFFIXES:
            raise RetainError(f"{path.name} is not a CSV or Parquet file "
                              f"({', '.join(TABLE_SUFFIXES)})")
        frame, source = read_table_file(path, suffix), path.name
    if len(frame) == 0:
        raise RetainError(f"{source} has no rows")
    frame = frame.rename(columns=str)
    return frame, source


def read_table(data: Data, schema: Schema, need_label: bool = True) -> Table:
    """Rows of ``data`` checked against ``schema``: every column present, none unknown, numbers
    finite, labels known."""
    if is_windows(data):
        return _window_table(read_windows(data), schema, need_label)
    frame, source = read_frame(data)
    optional = [] if need_label else [schema.label]
    optional += [schema.time] if schema.time else []
    _require(frame, [c for c in (*schema.features, schema.label) if c not in optional], source)
    known = (*schema.features, schema.label, schema.time, *schema.ignored)
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        raise RetainError(f"{source} has unexpected column(s) {unknown}; the store learns from "
                          f"{list(schema.features)} -> {schema.label!r}")
    times = None
    if schema.time and schema.time in frame.columns:
        from retain.forecasting.data import parse_times

        times = parse_times(frame[schema.time], schema.time)
    y = None
    if schema.label in frame.columns:
        y = _targets(frame[schema.label], schema, source)
    return Table(_features(frame, schema.features, source), y, times)


def _window_table(windows: Windows, schema: Schema, need_label: bool) -> Table:
    if schema.shape is None:
        raise RetainError(f"{windows.source} holds windows of signals; this store learns "
                          f"from table rows ({list(schema.features)})")
    if tuple(windows.x.shape[1:]) != tuple(schema.shape):
        raise RetainError(f"{windows.source}: windows of shape {tuple(windows.x.shape[1:])}; "
                          f"the store learns [channels, time] = {list(schema.shape)}")
    y = None
    if windows.label is not None and need_label:  # predictions ignore the labels
        what = f"{windows.source}: labels"
        y = encode_labels(_label_values_of(windows.label), what, schema.classes)[0].numpy()
    elif need_label:
        raise RetainError(f"{windows.source} has no 'label' array; updates need labels")
    return Table(windows.x, y, None, windows.recording)


def _label_values_of(labels: np.ndarray) -> np.ndarray:
    return labels.astype(object) if labels.dtype.kind in "US" else labels


def _features(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> np.ndarray:
    from retain.forecasting.data import parse_numbers

    x = np.stack([parse_numbers(frame[c], c) for c in columns], axis=1)
    bad = [c for c, ok in zip(columns, np.isfinite(x).all(axis=0), strict=True) if not ok]
    if bad:
        raise RetainError(f"{source}: feature column(s) {bad} hold missing, NaN or inf values; "
                          "drop or fill those rows first")
    return x.astype(np.float32)


def _targets(column: pd.Series, schema: Schema, source: str) -> np.ndarray:
    what = f"{source}: label column {schema.label!r}"
    if schema.task == "regression":
        from retain.forecasting.data import parse_numbers

        y = parse_numbers(column, schema.label)
        if not np.isfinite(y).all():
            raise RetainError(f"{what} has missing, NaN or inf values")
        return y.astype(np.float32)
    y, _ = encode_labels(_label_values(column), what, schema.classes)
    if schema.classes is None and (int(y.min()) < 0 or int(y.max()) >= schema.n_outputs):
        raise RetainError(f"{what} holds class ids outside 0..{schema.n_outputs - 1}, the "
                          "classes the store was created with")
    return y.numpy()


def _label_values(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    return column.astype(str).to_numpy(dtype=object)


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RetainError(f"{source} lacks column(s) {missing}; its columns are "
                          f"{list(frame.columns)}")


@dataclass(frozen=True)
class Normalizer:
    """Standardisation fitted on the first version's training rows and never refitted, so the
    weights of every later version read inputs on the same scale."""

    features: Scaler
    target: Scaler | None

    @classmethod
    def fit(cls, table: Table, schema: Schema) -> Normalizer:
        from retain.forecasting.scaling import Scaler

        target = None
        if schema.task == "regression":
            target = Scaler.fit(table.y[:, None].astype(np.float64), [schema.label])
        x = table.x.astype(np.float64)
        if x.ndim == 3:  # signals: per channel, over every sample of every window
            x = x.swapaxes(1, 2).reshape(-1, x.shape[1])
        return cls(Scaler.fit(x, schema.features), target)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 3:
            return self.features.transform(x.swapaxes(1, 2)).swapaxes(1, 2).astype(np.float32)
        return self.features.transform(x).astype(np.float32)

    def targets(self, y: np.ndarray) -> np.ndarray:
        return y if self.target is None else self.target.transform(y[:, None])[:, 0].astype(
            np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(),
                "target": None if self.target is None else self.target.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        from retain.forecasting.scaling import Scaler

        target = data.get("target")
        return cls(Scaler.from_dict(data["features"]),
                   None if target is None else Scaler.from_dict(target))
