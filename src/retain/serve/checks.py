"""Checks of request rows and labels against the store's columns, before anything is written.

Every failure is a :class:`BadInput` whose message names the row, column or id, so the caller
can fix its request; the server answers it with a 4xx status and writes nothing.

>>> from retain.store.tables import Schema
>>> schema = Schema(("temperature", "hour"), "demand", "regression", 1)
>>> rows_to_array([{"temperature": 21.5, "hour": 3}], schema).tolist()
[[21.5, 3.0]]
>>> try:
...     rows_to_array([{"temperature": 21.5, "hour": 3}, {"temperature": "warm", "hour": 4}],
...                   schema)
... except BadInput as exc:
...     print(exc)
row 1, column 'temperature': 'warm' is not a number
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from retain.store.tables import Schema

MAX_ID = 200  # characters of a prediction id


class BadInput(Exception):
    """A request the server refuses; ``status`` is its HTTP status code."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def rows_to_array(rows: Sequence[dict[str, Any]], schema: Schema,
                  label: bool = False) -> np.ndarray:
    """The feature values of ``rows`` as float32 [n, features]: every feature column present,
    no unknown column, every value a finite number. ``label``: the label column is required."""
    if not rows:
        raise BadInput("no rows: send at least one row")
    allowed = {*schema.features, schema.label, *schema.ignored,
               *([schema.time] if schema.time else [])}
    need = [*schema.features, *([schema.label] if label else [])]
    x = np.empty((len(rows), len(schema.features)), dtype=np.float32)
    for r, row in enumerate(rows):
        missing = [c for c in need if c not in row]
        if missing:
            raise BadInput(f"row {r} lacks column(s) {missing}; the store's features are "
                           f"{list(schema.features)}" + (f" and label {schema.label!r}"
                                                         if label else ""))
        unknown = [c for c in row if c not in allowed]
        if unknown:
            raise BadInput(f"row {r} has unknown column(s) {unknown}; the store's features are "
                           f"{list(schema.features)}")
        for c, column in enumerate(schema.features):
            x[r, c] = number(row[column], f"row {r}, column {column!r}")
    return x


def signals_to_array(signals: Sequence[Any], schema: Schema) -> np.ndarray:
    """Windows of signals as float32 [n, channels, time]: each of the store's window shape
    (``[time]`` for one channel), every value a finite float32 number."""
    if schema.shape is None:
        raise BadInput("this store learns table rows: send 'rows', not 'signals'")
    shape = list(schema.shape)
    try:
        x = np.asarray(signals, dtype=np.float64)
    except ValueError:  # ragged: windows of different lengths or channel counts
        x = None
    if x is not None and x.ndim == 2 and shape[0] == 1:
        x = x[:, None, :]
    if x is None or list(x.shape[1:]) != shape:
        got = ("windows of different shapes" if x is None
               else f"windows of shape {list(x.shape[1:])}")
        raise BadInput(f"signals: {got}; this store learns windows of [channels, time] = "
                       f"{shape}" + (" (or [time])" if shape[0] == 1 else ""))
    bad = ~np.isfinite(x) | (np.abs(x) > np.finfo(np.float32).max)
    if bad.any():
        w, c, t = (int(i) for i in np.argwhere(bad)[0])
        raise BadInput(f"window {w}, channel {c}, sample {t}: {float(x[w, c, t])!r} is not "
                       "a finite float32 number")
    return x.astype(np.float32)


def number(value: Any, where: str) -> float:
    """``value`` as a finite float; booleans and text are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{where}: {value!r} is not a number")
    if not math.isfinite(value):
        raise BadInput(f"{where}: {value!r} is not a finite number (NaN and inf are refused)")
    if abs(value) > np.finfo(np.float32).max:
        raise BadInput(f"{where}: {value!r} is too large for a float32 input")
    return float(value)


def check_label(value: Any, schema: Schema, where: str) -> Any:
    """A label of the store's kind: one of its class names, a class id in range, or a finite
    number for regression. Returns it in the form the store reads."""
    if schema.task == "regression":
        return number(value, where)
    if schema.classes:
        if not isinstance(value, str) or value not in schema.classes:
            raise BadInput(f"{where}: {value!r} is not one of the classes "
                           f"{list(schema.classes)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where}: {value!r} is not a class id (an integer "
                       f"0..{schema.n_outputs - 1})")
    if not 0 <= value < schema.n_outputs:
        raise BadInput(f"{where}: class id {value} is outside 0..{schema.n_outputs - 1}")
    return value


def unique(ids: Sequence[str], what: str) -> None:
    """Refuse an id given twice in one request."""
    seen: set[str] = set()
    for i, one in enumerate(ids):
        if one in seen:
            raise BadInput(f"{what} {one!r} appears twice in the request (again at item {i})")
        seen.add(one)
