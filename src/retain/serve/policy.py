"""When to update: every N labels, every T seconds, or on a drift alarm; and where: in a
separate process (:mod:`retain.serve.updater`), so ``/predict`` never waits for training.

One update runs at a time. Labels arriving in a burst while one runs wait in the journal; the
count rule is checked on every ``/learn`` *and* every ``poll`` seconds, so when the running
update ends — promoted, rejected or failed — the next starts within one poll if ``update_every``
labels wait. A rejected update takes its labels (they are not retried) and holds nothing back;
only a *failed* one (an error: its labels still wait) backs off for ``retry_after`` seconds.

Every worker runs the same policy over the shared journal; the update process holds a lock of
its own (``DIR/serve-update.lock``), so however many workers fire at once, one update runs.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from retain.serve.journal import Journal
from retain.serve.settings import ServeSettings

UPDATE_LOCK = "serve-update.lock"


def update_running(store: Path) -> bool:
    """Whether an update process holds the serve update lock now."""
    lock = store / UPDATE_LOCK
    if not lock.exists():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


class UpdatePolicy:
    """Decides after each label and each tick whether to start an update."""

    def __init__(self, settings: ServeSettings, journal: Journal):
        self.settings = settings
        self.journal = journal
        self.started = time.time()
        self.child: subprocess.Popen | None = None
        self.monitor = None
        self.seen = 0  # last label seq fed to the drift monitor
        self.alarm: str | None = None
        # /learn calls after_labels from the thread pool, the poll loop calls tick
        self.lock = threading.RLock()
        if settings.drift:
            from retain.drift import DriftMonitor

            # ADWIN alone: Page-Hinkley's defaults are set for one value a day, not 0/1 errors
            self.monitor = DriftMonitor(["adwin"])

    def after_labels(self, unused: int) -> bool:
        """The count rule, on each ``/learn``: ``update_every`` labels wait."""
        every = self.settings.update_every
        if every is not None and unused >= max(every, self.settings.min_update_rows):
            return self.start(f"{unused} labels")
        return False

    def tick(self) -> bool:
        """The time and drift rules (called every ``poll`` seconds)."""
        with self.lock:
            return self._tick()

    def _tick(self) -> bool:
        self.reap()
        self._feed_drift()
        unused = self.journal.unused()
        if unused < self.settings.min_update_rows:
            return False
        if self.alarm is not None:
            started = self.start(f"drift alarm ({self.alarm})")
            self.alarm = None if started else self.alarm
            return started
        # the count rule again: labels that came while an update ran (a burst) were not let
        # start one; once it ends they start the next without waiting for another label
        if self.after_labels(unused):
            return True
        interval = self.settings.update_interval
        last = self.journal.last_update_time() or self.started
        if interval is not None and time.time() - last >= interval:
            return self.start(f"{interval:g} s since the last update")
        return False

    def start(self, trigger: str, asked: bool = False) -> bool:
        """Start the update process unless one runs; ``True`` if started. Unless ``asked``
        (``POST /update``), not within ``retry_after`` seconds of a failed update."""
        with self.lock:
            return False if not asked and self.backing_off() else self._start(trigger)

    def backing_off(self) -> bool:
        """Whether the latest update failed less than ``retry_after`` seconds ago."""
        failed = self.journal.last_failure()
        return failed is not None and time.time() - failed < self.settings.retry_after

    def _start(self, trigger: str) -> bool:
        self.reap()
        if self.child is not None or update_running(self.settings.path):
            return False
        if self.journal.get_state("shadow") is not None:  # a challenger is on trial
            return False
        self.child = subprocess.Popen(
            [sys.executable, "-m", "retain.serve.updater", self.settings.to_json(), trigger],
            stdin=subprocess.DEVNULL, start_new_session=True, env=_child_env())
        return True

    def reap(self) -> None:
        if self.child is not None and self.child.poll() is not None:
            self.child = None

    def close(self) -> None:
        """Wait briefly for a running update (it finishes on its own if the server stops)."""
        if self.child is not None:
            try:
                self.child.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass

    def _feed_drift(self) -> None:
        if self.monitor is None:
            return
        for seq, error in self.journal.errors_since(self.seen):
            self.seen = seq
            fired = self.monitor.update(error)
            if fired:
                self.alarm = "+".join(fired)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the update process serves no metrics
    return env
