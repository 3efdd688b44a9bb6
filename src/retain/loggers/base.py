"""What every logger does: buffer what it is given, write it on :meth:`Logger.flush`.

Loggers never see the update step. :meth:`retain.Learner.run` hands them the scores of each
experience once it is learned (and, with ``eval_every``, the curve points of that
experience) and flushes them then; the store, ``retain bench`` and ``retain forecast`` log
once per version, finished run or series. A logger writes in :meth:`flush` only, so a slow
disk or tracking server costs time between experiences, never inside one.

>>> class Printer(Logger):
...     def _write(self, scalars, params, tables, figures):
...         for step, name, value in scalars:
...             print(step, name, value)
>>> log = Printer()
>>> log.log_scalars({"accuracy": 0.5}, step=1)
>>> log.flush()
1 accuracy 0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retain.errors import RetainError

Table = tuple[str, Sequence[str], Sequence[Sequence[Any]]]


class Logger:
    """Buffers scalars, parameters, tables and figures; subclasses write them in ``_write``."""

    def __init__(self) -> None:
        self._scalars: list[tuple[int, str, float]] = []
        self._params: dict[str, Any] = {}
        self._tables: list[Table] = []
        self._figures: list[tuple[str, Path]] = []
        self.closed = False

    def log_scalars(self, scalars: Mapping[str, float | None], step: int) -> None:
        """Record ``name -> value`` at ``step``; ``None`` and non-finite values are skipped
        (a measure that does not apply, such as NFI for regression)."""
        self._check_open()
        for name, value in scalars.items():
            if value is not None and math.isfinite(float(value)):
                self._scalars.append((int(step), str(name), float(value)))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record the settings of what is logged (strategy, learning rate, ...)."""
        self._check_open()
        self._params.update({str(k): v for k, v in params.items()})

    def log_table(self, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._check_open()
        if any(len(row) != len(header) for row in rows):
            raise RetainError(f"table {name!r}: every row needs {len(header)} cells")
        self._tables.append((name, list(header), [list(r) for r in rows]))

    def log_figure(self, name: str, path: str | Path) -> None:
        """Record a PNG file (a report plot) under ``name``."""
        self._check_open()
        path = Path(path)
        if not path.is_file():
            raise RetainError(f"figure {name!r}: no file {path}")
        self._figures.append((name, path))

    def flush(self) -> None:
        """Write everything recorded since the last flush."""
        if not (self._scalars or self._params or self._tables or self._figures):
            return
        self._write(self._scalars, self._params, self._tables, self._figures)
        self._scalars, self._params, self._tables, self._figures = [], {}, [], []

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self._close()
            self.closed = True

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise RetainError(f"{type(self).__name__} is closed")

    def _write(self, scalars: list[tuple[int, str, float]], params: dict[str, Any],
               tables: list[Table], figures: list[tuple[str, Path]]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Release files or runs (nothing by default)."""
