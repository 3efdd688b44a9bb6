"""The store's version history: one SQLite database (stdlib ``sqlite3``, WAL mode).

One row per version: id, parent, creation time, the fingerprint of the data it learned from,
its strategies, metrics (JSON), status and the reason for it. Status moves
``candidate -> promoted | rejected`` and ``promoted -> rolled-back`` (and back by a rollback to
it); ``meta.current`` names the version that serves predictions. Every change of status and of
``current`` happens in one transaction, so a crash leaves the old state or the new one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retain.checkpoint.atomic import TEMP_PREFIX, fsync_dir
from retain.errors import RetainError

REGISTRY_FILE = "registry.sqlite"
STORE_FORMAT = "retain-store"
STORE_FORMAT_VERSION = 1
STATUSES = ("candidate", "promoted", "rejected", "rolled-back")

_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES versions(id),
    created TEXT NOT NULL,
    data_hash TEXT, data_rows INTEGER, data_start TEXT, data_end TEXT,
    strategy TEXT NOT NULL,
    metrics TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    reason TEXT NOT NULL
);
"""
_COLUMNS = ("id", "parent", "created", "data_hash", "data_rows", "data_start", "data_end",
            "strategy", "metrics", "status", "reason")


@dataclass(frozen=True)
class Version:
    """One row of the history."""

    id: int
    parent: int | None
    created: str
    data_hash: str | None
    data_rows: int | None
    data_start: str | None
    data_end: str | None
    strategy: str
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "candidate"
    reason: str = ""
    current: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    """Read and change the history of the store in folder ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        file = self.folder / REGISTRY_FILE
        if not file.is_file():
            raise RetainError(f"{self.folder} is not a retain store (it has no {REGISTRY_FILE}); "
                              "create one with `retain init`")
        try:
            self.conn = _connect(file, mode="rw")
            meta = dict(self.conn.execute("SELECT key, value FROM meta"))
            self.conn.execute("SELECT id FROM versions LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise RetainError(f"{self.folder} is not a retain store: {file.name} is not a store "
                              f"registry ({exc})") from None
        if meta.get("format") != STORE_FORMAT:
            raise RetainError(f"{self.folder} is not a retain store ({file.name} lacks its mark)")
        if int(meta.get("format_version", 0)) > STORE_FORMAT_VERSION:
            raise RetainError(f"{self.folder} was made by a newer retain (store format "
                              f"{meta['format_version']}); upgrade retain to use it")
        self.config: dict[str, Any] = json.loads(meta["config"])

    @staticmethod
    def create(folder: Path, config: dict[str, Any], first: Version) -> None:
        """Write a new registry holding ``first`` as the current version, atomically (built
        under a temporary name, then renamed into place)."""
        temp = folder / f"{TEMP_PREFIX}{REGISTRY_FILE}"
        temp.unlink(missing_ok=True)
        conn = _connect(temp, mode="rwc")
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("format", STORE_FORMAT), ("format_version", str(STORE_FORMAT_VERSION)),
                ("config", json.dumps(config)), ("current", str(first.id))])
            _insert(conn, first)
        conn.close()
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.rename(temp, folder / REGISTRY_FILE)
        fsync_dir(folder)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def current_id(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='current'").fetchone()[0])

    def versions(self) -> list[Version]:
        current = self.current_id()
        rows = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM versions ORDER BY id")
        return [_version(row, current) for row in rows]

    def get(self, version: int | None = None) -> Version:
        """A version by id (default: the current one)."""
        current = self.current_id()
        wanted = current if version is None else int(version)
        row = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM versions WHERE id=?",
                                (wanted,)).fetchone()
        if row is None:
            raise RetainError(f"the store has no version {wanted}; see `retain history`")
        return _version(row, current)

    def lineage(self, version: int) -> list[Version]:
        """``version`` and its ancestors, newest first."""
        chain = [self.get(version)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain

    def next_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM versions")
                   .fetchone()[0])

    def ids(self) -> set[int]:
        return {row[0] for row in self.conn.execute("SELECT id FROM versions")}

    # -- changing --------------------------------------------------------------------------
    def add(self, version: Version) -> None:
        with self.conn:
            _insert(self.conn, version)

    def decide(self, version: int, status: str, reason: str, metrics: dict[str, Any]) -> None:
        """Set a candidate's status; a promoted one becomes current in the same transaction."""
        with self.conn:
            self.conn.execute("UPDATE versions SET status=?, reason=?, metrics=? WHERE id=?",
                              (status, reason, json.dumps(metrics), version))
            if status == "promoted":
                self._set_current(version)

    def reject_undecided(self) -> None:
        """Candidates left by a writer that died before the gate decided (call under the
        store lock, when no writer is running)."""
        with self.conn:
            self.conn.execute("UPDATE versions SET status='rejected', reason=? "
                              "WHERE status='candidate'",
                              ("the update was interrupted before the gate decided",))

    def rollback(self, from_id: int, to_id: int) -> None:
        """``from_id`` becomes rolled-back and ``to_id`` current; reasons keep their history."""
        append = "UPDATE versions SET status=?, reason=reason || '; ' || ? WHERE id=?"
        with self.conn:
            self.conn.execute(append, ("rolled-back", f"rolled back to {to_id} at {now()}",
                                       from_id))
            self.conn.execute(append, ("promoted", f"restored from {from_id} at {now()}", to_id))
            self._set_current(to_id)

    def _set_current(self, version: int) -> None:
        self.conn.execute("UPDATE meta SET value=? WHERE key='current'", (str(version),))


def _connect(file: Path, mode: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode={mode}", uri=True, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _insert(conn: sqlite3.Connection, v: Version) -> None:
    values = {**asdict(v), "metrics": json.dumps(v.metrics)}
    conn.execute(f"INSERT INTO versions ({', '.join(_COLUMNS)}) VALUES "
                 f"({', '.join('?' * len(_COLUMNS))})", [values[c] for c in _COLUMNS])


def _version(row: tuple, current: int) -> Version:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["metrics"] = json.loads(values["metrics"])
    return Version(**values, current=values["id"] == current)
