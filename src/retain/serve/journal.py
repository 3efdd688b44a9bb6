"""The server's durable log: predictions with the features they saw, labels, updates.

Two SQLite databases next to the store's registry (WAL mode), shared by every server worker and
the update process. Why a log and not memory: a label may come days after its prediction, and a
server killed in between must still join it to exactly what the model saw. Labels, updates and
the shadow trial (``DIR/serve.sqlite``) are written with ``synchronous=FULL`` (fsync on commit)
before ``/learn`` answers. Predictions (``DIR/serve-predictions.sqlite``) only need to survive
a killed process, so they skip the fsync (``synchronous=NORMAL`` in WAL mode keeps every commit
through a ``SIGKILL``); and being another file, their writes never queue behind a label's fsync.
A worker commits the predictions of one turn of its event loop together (:class:`GroupCommit`),
each before its answer.

Prequential metrics are sums over the ``labels`` table, so a restart finds them where they were.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOURNAL_FILE = "serve.sqlite"
PREDICTIONS_FILE = "serve-predictions.sqlite"

_PREDICTIONS = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, features TEXT NOT NULL,
    prediction TEXT NOT NULL, created REAL NOT NULL, shadow TEXT);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created);
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, prediction_id TEXT UNIQUE, version INTEGER NOT NULL,
    features TEXT NOT NULL, label TEXT NOT NULL, error REAL NOT NULL, shadow_error REAL,
    created REAL NOT NULL, used_by INTEGER);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trigger TEXT NOT NULL, started REAL NOT NULL,
    finished REAL, first_seq INTEGER, last_seq INTEGER, rows INTEGER,
    status TEXT NOT NULL, version INTEGER, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS labels_unused ON labels (used_by);
"""


class JournalError(Exception):
    """A request conflicts with the log (an id used twice, a label given twice)."""


@dataclass(frozen=True)
class Pending:
    """A logged prediction waiting for its label."""

    id: str
    version: int
    features: list[float]
    prediction: Any
    created: float
    shadow: Any = None


class Journal:
    """Open (and create) the log of the store in ``folder``; one per process and thread."""

    def __init__(self, folder: str | Path, durable: bool = True, checkpoints: bool = True):
        self.file = Path(folder) / JOURNAL_FILE
        self.conn = _connect(self.file, "FULL" if durable else "NORMAL", checkpoints, _SCHEMA)
        self.pconn = _connect(Path(folder) / PREDICTIONS_FILE, "NORMAL", checkpoints,
                              _PREDICTIONS)

    def close(self) -> None:
        self.conn.close()
        self.pconn.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead logs into the databases (fsyncs; keeps the logs small)."""
        for conn in (self.conn, self.pconn):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- predictions -----------------------------------------------------------------------
    def log_predictions(self, rows: Iterable[tuple[str, int, list[float], Any, Any]]) -> None:
        """Log ``(id, version, features, prediction, shadow)`` rows in one transaction; an id
        already in the log raises :class:`JournalError` naming it and nothing is written."""
        stamp = time.time()
        values = [(i, v, json.dumps(f), json.dumps(p), stamp,
                   None if s is None else json.dumps(s)) for i, v, f, p, s in rows]
        try:
            with _Transaction(self.pconn):
                self.pconn.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
                                       values)
        except sqlite3.IntegrityError:
            used = self._existing([v[0] for v in values])
            raise JournalError(f"prediction id(s) {used} are already used; send new ids or "
                               "none (the server makes them)") from None

    def pending(self, ids: Sequence[str]) -> dict[str, Pending]:
        """The logged predictions among ``ids`` that have no label yet."""
        found: dict[str, Pending] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for row in self.pconn.execute(
                    "SELECT id, version, features, prediction, created, shadow FROM predictions "
                    f"WHERE id IN ({marks})", chunk):
                found[row[0]] = Pending(row[0], row[1], json.loads(row[2]), json.loads(row[3]),
                                        row[4], None if row[5] is None else json.loads(row[5]))
        return found

    def labelled(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            out |= {r[0] for r in self.conn.execute(
                f"SELECT prediction_id FROM labels WHERE prediction_id IN ({marks})", chunk)}
        return out

    def purge(self, older_than: float) -> int:
        """Forget predictions made before ``older_than`` (their ids have expired)."""
        with _Transaction(self.pconn):
            return self.pconn.execute("DELETE FROM predictions WHERE created < ?",
                                      (older_than,)).rowcount

    # -- labels ----------------------------------------------------------------------------
    def add_labels(self, rows: Sequence[tuple[str | None, int, list[float], Any, float,
                                              float | None]]) -> int:
        """Log ``(prediction id or None, version, features, label, error, shadow error)`` in
        one fsynced transaction and return how many labels wait for an update. A label given
        twice raises :class:`JournalError` and nothing is written."""
        stamp = time.time()
        values = [(pid, v, json.dumps(f), json.dumps(lab), err, shadow, stamp)
                  for pid, v, f, lab, err, shadow in rows]
        try:
            with self._transaction():
                self.conn.executemany(
                    "INSERT INTO labels (prediction_id, version, features, label, error, "
                    "shadow_error, created) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
        except sqlite3.IntegrityError:
            raise JournalError("a prediction id was labelled by another request at the same "
                               "time; each prediction takes one label") from None
        return self.unused()

    def unused(self) -> int:
        """Labels no update has taken yet."""
        return self.conn.execute("SELECT COUNT(*) FROM labels WHERE used_by IS NULL"
                                 ).fetchone()[0]

    def unused_rows(self) -> list[tuple[int, list[float], Any]]:
        """``(seq, features, label)`` of every label no update has taken, oldest first."""
        return [(s, json.loads(f), json.loads(lab)) for s, f, lab in self.conn.execute(
            "SELECT seq, features, label FROM labels WHERE used_by IS NULL ORDER BY seq")]

    def errors_since(self, seq: int) -> list[tuple[int, float]]:
        """``(seq, error)`` of labels after ``seq``, for the drift detector."""
        return list(self.conn.execute("SELECT seq, error FROM labels WHERE seq > ? ORDER BY seq",
                                      (seq,)))

    def prequential(self) -> dict[int, dict[str, float]]:
        """Per version that served: labels scored, running mean error."""
        return {v: {"labels": n, "error": total / n} for v, n, total in self.conn.execute(
            "SELECT version, COUNT(*), SUM(error) FROM labels GROUP BY version")}

    def shadow_errors(self, since: float) -> tuple[int, float, float]:
        """``(labels, champion error, challenger error)`` over labels scored by both models
        after ``since``."""
        n, champ, chall = self.conn.execute(
            "SELECT COUNT(*), AVG(error), AVG(shadow_error) FROM labels "
            "WHERE shadow_error IS NOT NULL AND created >= ?", (since,)).fetchone()
        return n, champ or 0.0, chall or 0.0

    # -- updates ---------------------------------------------------------------------------
    def start_update(self, trigger: str, first: int, last: int, rows: int) -> int:
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO updates (trigger, started, first_seq, last_seq, rows, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')", (trigger, time.time(), first, last, rows))
        return int(cur.lastrowid)

    def finish_update(self, update: int, status: str, version: int | None, reason: str,
                      take_labels: bool) -> None:
        """Record an update's outcome and, in the same transaction, mark the labels it
        learned (promoted or rejected alike: a rejected batch is not retried)."""
        with self._transaction():
            self.conn.execute("UPDATE updates SET finished=?, status=?, version=?, reason=? "
                              "WHERE id=?", (time.time(), status, version, reason, update))
            if take_labels:
                first, last = self.conn.execute(
                    "SELECT first_seq, last_seq FROM updates WHERE id=?", (update,)).fetchone()
                self.conn.execute("UPDATE labels SET used_by=? WHERE seq BETWEEN ? AND ? "
                                  "AND used_by IS NULL", (update, first, last))

    def updates(self) -> list[dict[str, Any]]:
        cols = ("id", "trigger", "started", "finished", "first_seq", "last_seq", "rows",
                "status", "version", "reason")
        return [dict(zip(cols, row, strict=True)) for row in self.conn.execute(
            f"SELECT {', '.join(cols)} FROM updates ORDER BY id")]

    def last_failure(self) -> float | None:
        """When the latest update finished, if it failed (an error, not a rejection)."""
        row = self.conn.execute("SELECT status, finished FROM updates ORDER BY id DESC LIMIT 1"
                                ).fetchone()
        return row[1] if row is not None and row[0] == "failed" else None

    def last_update_time(self) -> float | None:
        row = self.conn.execute("SELECT MAX(started) FROM updates").fetchone()
        return row[0]

    def interrupted(self) -> list[int]:
        """Updates recorded as running (call while holding the update lock: none is)."""
        return [r[0] for r in self.conn.execute("SELECT id FROM updates WHERE status='running'")]

    # -- small shared state (shadow mode) --------------------------------------------------
    def get_state(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_state(self, key: str, value: Any) -> None:
        with self._transaction():
            if value is None:
                self.conn.execute("DELETE FROM state WHERE key=?", (key,))
            else:
                self.conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                                  (key, json.dumps(value)))

    # -- internals -------------------------------------------------------------------------
    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def _existing(self, ids: list[str]) -> list[str]:
        return sorted(self.pending(ids))[:5]


class GroupCommit:
    """Predictions of the requests a worker handles in the same turn of its event loop, logged
    in one transaction before any of them answers.

    Each ``/predict`` awaits :meth:`log`; the first of a turn schedules the write for the next
    turn (``call_soon``), by when every request that arrived with it has queued its rows too.
    So the guarantee is unchanged (no prediction is answered before its features are
    committed), but under load one commit, and one take of the database's write lock that the
    workers share, serves many requests. If an id in the batch is already used, each request
    is written on its own, so only the one at fault is refused.
    """

    def __init__(self, journal: Journal):
        self.journal = journal
        self.queue: list[tuple[list[tuple[str, int, list[float], Any, Any]], Any]] = []

    async def log(self, rows: list[tuple[str, int, list[float], Any, Any]]) -> None:
        """Log ``rows`` as :meth:`Journal.log_predictions` does, together with the rows of
        the other requests of this turn; returns once they are committed."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.queue.append((rows, done))
        if len(self.queue) == 1:
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        batch, self.queue = self.queue, []
        try:
            self.journal.log_predictions([row for rows, _ in batch for row in rows])
        except JournalError:
            for rows, done in batch:  # one by one: only the request at fault is refused
                try:
                    self.journal.log_predictions(rows)
                except JournalError as exc:
                    _settle(done, exc)
                else:
                    _settle(done, None)
            return
        except Exception as exc:  # noqa: BLE001 - every waiting request fails with it
            for _, done in batch:
                _settle(done, exc)
            return
        for _, done in batch:
            _settle(done, None)


def _settle(done: Any, error: BaseException | None) -> None:
    if done.done():  # the request was cancelled (its client went away)
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` (or ``ROLLBACK`` on error): writers queue up front."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *rest) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _connect(file: Path, synchronous: str, checkpoints: bool, schema: str
             ) -> sqlite3.Connection:
    conn = sqlite3.connect(file, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    if not checkpoints:  # the owner calls checkpoint() where a pause does no harm
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.executescript(schema)
    return conn


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i: i + size]
