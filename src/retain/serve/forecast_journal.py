"""The forecast server's journal: measured rows posted to ``/observe`` that the store lacks.

One JSON line per request in ``DIR/serve-observed.jsonl``, appended and fsynced before the
request is answered, so an acknowledged row survives a crash (``SIGKILL`` or power cut) of the
server. On start the server reads the lines back and hands the store every row it does not hold
yet; once the store has kept rows (its ``observed/`` folders are written before it learns), the
journal is rewritten without them (atomically: a new file, fsynced, renamed over the old one).
A last line cut short by a crash was never acknowledged: it is ignored and cut off.

>>> import tempfile
>>> journal = RowJournal(tempfile.mkdtemp())
>>> journal.append({"rows": [{"time": "2024-01-01T00:00:00", "load": 1.5}]})
>>> with open(journal.file, "a") as f:
...     _ = f.write('{"rows": [{"ti')   # a crash in the middle of the next write
>>> RowJournal(journal.file.parent).records()
[{'rows': [{'time': '2024-01-01T00:00:00', 'load': 1.5}]}]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from retain.checkpoint.atomic import fsync_dir
from retain.errors import RetainError

JOURNAL_FILE = "serve-observed.jsonl"


class RowJournal:
    """The journal of the store in ``folder`` (created on the first append); one per server."""

    def __init__(self, folder: str | Path):
        self.file = Path(folder) / JOURNAL_FILE
        self._records, good = self._read()
        if self.file.exists() and self.file.stat().st_size > good:
            os.truncate(self.file, good)  # the torn line of a crash: never acknowledged

    def records(self) -> list[dict[str, Any]]:
        """Every request kept, oldest first."""
        return list(self._records)

    def append(self, record: dict[str, Any]) -> None:
        """Add one request's record and make it durable before returning."""
        line = (json.dumps(record, allow_nan=False) + "\n").encode()
        new = not self.file.exists()
        with open(self.file, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if new:
            fsync_dir(self.file.parent)
        self._records.append(record)

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the journal by ``records`` (what the store still lacks), atomically."""
        temp = self.file.with_name(self.file.name + ".new")
        with open(temp, "wb") as f:
            f.write(b"".join((json.dumps(r, allow_nan=False) + "\n").encode() for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.file)
        fsync_dir(self.file.parent)
        self._records = list(records)

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        """The records and the byte length of the whole lines that hold them."""
        if not self.file.exists():
            return [], 0
        lines = self.file.read_bytes().splitlines(keepends=True)
        records, good = [], 0
        for number, line in enumerate(lines, 1):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no line end")
                records.append(json.loads(line))
            except ValueError:
                if number == len(lines):
                    break  # torn by a crash while it was written
                raise RetainError(f"{self.file}, line {number}, is damaged; move the file away "
                                  "to serve without the rows it holds") from None
            good += len(line)
        return records, good
