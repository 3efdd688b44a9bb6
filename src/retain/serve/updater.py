"""The update process: the store's gated update on the labels that wait, then the record.

Run by a server worker as ``python -m retain.serve.updater SETTINGS_JSON TRIGGER`` in its own
process (at the lowest CPU priority), so training never holds up a prediction. It takes the
labels no update has taken, learns them with :meth:`Store.update` — the store's gate,
divergence guard and crash safety — and records the outcome and the labels it took in one
transaction. Promotion needs nothing more: the workers see the store's new current version
and load it. A process killed half way leaves the update ``running`` in the journal; the next
one matches it against the store's history by the data's fingerprint, so the labels are
neither lost nor learned twice.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from retain.errors import RetainError
from retain.serve.journal import Journal
from retain.serve.policy import UPDATE_LOCK
from retain.serve.settings import ServeSettings
from retain.store.registry import Registry
from retain.store.store import Store
from retain.store.tables import Data, Schema, read_table


def labelled_frame(rows: list[tuple[int, list[float], Any]], schema: Schema) -> pd.DataFrame:
    """The journal's labels as a table the store learns (features and the label column)."""
    frame = pd.DataFrame([r[1] for r in rows], columns=list(schema.features))
    frame[schema.label] = [r[2] for r in rows]
    return frame


def labelled_data(rows: list[tuple[int, Any, Any]], schema: Schema, folder: Path) -> Data:
    """The journal's labels as data the store learns: a table, or for a store of signals the
    windows the predictions saw with their labels, as a ``.npz`` file in ``folder``."""
    if schema.shape is None:
        return labelled_frame(rows, schema)
    path = folder / "labels.npz"
    np.savez(path, x=np.asarray([r[1] for r in rows], dtype=np.float32),
             label=np.asarray([r[2] for r in rows]))
    return path


def run_update(settings: ServeSettings, trigger: str) -> dict[str, Any] | None:
    """One update under the serve update lock; ``None`` if another runs or too few labels."""
    with open(settings.path / UPDATE_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        journal = Journal(settings.path)
        try:
            store = Store(settings.path)
            schema = _schema(store)
            _recover(journal, store, schema, settings)
            rows = journal.unused_rows()
            if len(rows) < settings.min_update_rows:
                return None
            return _update(journal, store, schema, settings, trigger, rows)
        finally:
            journal.close()


def _update(journal: Journal, store: Store, schema: Schema, settings: ServeSettings,
            trigger: str, rows: list[tuple[int, list[float], Any]]) -> dict[str, Any]:
    update = journal.start_update(trigger, rows[0][0], rows[-1][0], len(rows))
    if settings.shadow:  # workers keep the champion while the store promotes (see _settle)
        journal.set_state("shadow", {"champion": _current(store), "challenger": None,
                                     "since": None, "update": update})
    try:
        with tempfile.TemporaryDirectory(prefix="retain-labels-") as folder:
            version = store.update(labelled_data(rows, schema, Path(folder)),
                                   tolerance=settings.tolerance)
    except RetainError as exc:  # e.g. the store is busy: the labels wait for the next try
        if settings.shadow:
            journal.set_state("shadow", None)
        journal.finish_update(update, "failed", None, str(exc), take_labels=False)
        return {"update": update, "status": "failed", "reason": str(exc)}
    status = _settle(journal, settings, update, version.status, version.id, version.parent)
    journal.finish_update(update, status, version.id, version.reason, take_labels=True)
    return {"update": update, "status": status, "version": version.id,
            "reason": version.reason}


def _settle(journal: Journal, settings: ServeSettings, update: int, status: str,
            version: int | None, parent: int | None) -> str:
    """In shadow mode a promoted version goes on trial, anything else ends the pending one.

    The trial's state is written *before* the store makes the new version current (with no
    challenger yet) so that a worker polling in between keeps serving the champion: the new
    version never answers on its own before its trial decides."""
    if not settings.shadow:
        return status
    if status == "promoted":
        journal.set_state("shadow", {"champion": parent, "challenger": version,
                                     "since": time.time(), "update": update})
        return "shadow"
    journal.set_state("shadow", None)
    return status


def _current(store: Store) -> int:
    with Registry(store.path) as registry:
        return registry.current_id()


def _recover(journal: Journal, store: Store, schema: Schema,
             settings: ServeSettings | None = None) -> None:
    """Settle updates a killed process left ``running``: if the store recorded a version of
    exactly those rows, the labels were learned (in shadow mode that version goes on trial);
    otherwise they wait for the next update."""
    shadow = settings is not None and settings.shadow
    for update in journal.interrupted():
        record = next(u for u in journal.updates() if u["id"] == update)
        rows = [r for r in journal.unused_rows()
                if record["first_seq"] <= r[0] <= record["last_seq"]]
        learned = None
        if rows:
            with tempfile.TemporaryDirectory(prefix="retain-labels-") as folder:
                data = labelled_data(rows, schema, Path(folder))
                digest = read_table(data, schema).fingerprint(schema).hash
            learned = next((v for v in store.history() if v.data_hash == digest), None)
        if learned is None:
            if shadow:
                journal.set_state("shadow", None)
            journal.finish_update(update, "interrupted", None,
                                  "the update process stopped before the store recorded a "
                                  "version; its labels wait for the next update",
                                  take_labels=False)
        else:
            status = (learned.status if settings is None else
                      _settle(journal, settings, update, learned.status, learned.id,
                              learned.parent))
            journal.finish_update(update, status, learned.id, learned.reason,
                                  take_labels=True)


def _schema(store: Store) -> Schema:
    with Registry(store.path) as registry:
        return Schema.from_dict(registry.config["schema"])


def _lowest_priority() -> None:
    """Predictions come first: on Linux the update runs as SCHED_IDLE (it gets the CPU the
    server leaves), elsewhere at the lowest nice level."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def main(argv: list[str]) -> int:
    _lowest_priority()
    torch.set_num_threads(1)
    settings = ServeSettings.from_json(argv[0])
    run_update(settings, argv[1] if len(argv) > 1 else "manual")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
