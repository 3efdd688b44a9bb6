"""Rows held out and not learned yet: the store's pooled holdout.

A small daily file keeps only a few rows out (24 rows at 20%: 5), too few to tell a worse
model from noise. So an update's held-out rows stay out of training for the next
``holdout_window`` updates and join their holdouts; the gate judges on all of them. When a
generation has served ``holdout_window`` holdouts, the next update learns its rows: no row is
held out for ever. Each version's pool is a file ``DIR/rows/NNNNNN.npz`` written before the
registry names the version and never changed (:mod:`retain.store.layout`).

>>> import numpy as np
>>> from retain.store.tables import Table
>>> day = lambda v: Pool(Table(np.full((2, 1), v, np.float32), np.zeros(2), None),
...                      np.full(2, v))
>>> pool = day(1).merge(day(2))
>>> learn, keep = pool.age(window=2)
>>> len(learn), keep.generation.tolist()  # generation 1 has served two holdouts
(2, [2, 2])
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retain.checkpoint.atomic import write_file
from retain.store.tables import Table


@dataclass
class Pool:
    """Held-out rows and, per row, the version whose update held it out."""

    table: Table
    generation: np.ndarray
    waiting: Table | None = None  # rows an update that could not be judged left to the next

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def of(cls, table: Table, version: int) -> Pool:
        return cls(table, np.full(len(table), version, dtype=np.int64))

    def merge(self, other: Pool) -> Pool:
        return Pool(concat([self.table, other.table]),
                    np.concatenate([self.generation, other.generation]))

    def age(self, window: int) -> tuple[Table, Pool]:
        """``(rows to learn now, rows that stay held out)``: the oldest generations beyond
        the ``window - 1`` newest leave the pool, since today's rows make a new one."""
        kept = np.unique(self.generation)[::-1][: max(window - 1, 0)]
        stay = np.isin(self.generation, kept)
        return self.table.rows(np.flatnonzero(~stay)), Pool(
            self.table.rows(np.flatnonzero(stay)), self.generation[stay])

    def save(self, path: Path) -> None:
        arrays = {"generation": self.generation, **_arrays(self.table, "")}
        if self.waiting is not None:
            arrays.update(_arrays(self.waiting, "waiting_"))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_file(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path, like: Table) -> Pool:
        """The pool saved at ``path``; an empty one (shaped as ``like``) if there is none (a
        version made before pools existed)."""
        if not path.is_file():
            return cls(like.rows(np.arange(0)), np.zeros(0, dtype=np.int64))
        with np.load(path, allow_pickle=False) as f:
            arrays = dict(f)
        waiting = _table(arrays, "waiting_", like) if "waiting_x" in arrays else None
        return cls(_table(arrays, "", like), arrays["generation"], waiting)


def _arrays(table: Table, prefix: str) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}x": table.x, f"{prefix}y": table.y}
    if table.times is not None:
        arrays[f"{prefix}times"] = table.times.asi8
    return arrays


def _table(arrays: dict[str, np.ndarray], prefix: str, like: Table) -> Table:
    x = arrays[f"{prefix}x"]
    times = arrays.get(f"{prefix}times")
    if times is None and like.times is not None:  # saved by a store without a time column
        times = np.zeros(len(x), dtype=np.int64)
    return Table(x, arrays[f"{prefix}y"], None if times is None else pd.DatetimeIndex(times))


def concat(tables: list[Table]) -> Table:
    """The rows of several tables, in order (times kept when every table has them)."""
    times = [t.times for t in tables]
    return Table(np.concatenate([t.x for t in tables]), np.concatenate([t.y for t in tables]),
                 None if any(t is None for t in times) else pd.DatetimeIndex(
                     np.concatenate([t.asi8 for t in times])))
