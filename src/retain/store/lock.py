"""One writer at a time per store: an exclusive ``flock`` on ``<store>/.lock``.

A second ``retain update`` waits for the first (polling, up to ``wait`` seconds) and then fails
with a message naming the holder, instead of interleaving its writes. The kernel drops the lock
when its holder dies, so a crashed update never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from retain.errors import RetainError

LOCK_FILE = ".lock"
_POLL_SECONDS = 0.05


class StoreLock:
    """Context manager holding the store's write lock.

    >>> import tempfile
    >>> with StoreLock(tempfile.mkdtemp(), wait=0, purpose="demo"):
    ...     pass
    """

    def __init__(self, folder: str | Path, wait: float = 60.0, purpose: str = "update"):
        self.path = Path(folder) / LOCK_FILE
        self.wait = wait
        self.purpose = purpose
        self._file = None

    def __enter__(self) -> StoreLock:
        file = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    file.seek(0)
                    holder = file.read().strip() or "another process"
                    file.close()
                    raise RetainError(
                        f"the store {self.path.parent} is busy: {holder} holds its lock "
                        f"(waited {self.wait:g} s); try again later or wait longer") from None
                time.sleep(_POLL_SECONDS)
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} ({self.purpose}, since "
                   f"{datetime.now(UTC).isoformat(timespec='seconds')})")
        file.flush()
        self._file = file
        return self

    def __exit__(self, *exc) -> None:
        self._file.truncate(0)
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None
