"""What one server worker holds: the store, its journal, the served model and the policy.

The worker follows the store rather than telling it: every ``poll`` seconds it reads which
version should serve (the store's current one, or the champion while a challenger is on
trial) and, if that changed, loads it off the event loop and swaps it in. Promotions by the
update process, rollbacks through any worker and ``retain rollback`` from a shell all reach
every worker this way.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from retain.serve.journal import GroupCommit, Journal
from retain.serve.model import ModelSlot, Served
from retain.serve.policy import UpdatePolicy, update_running
from retain.serve.settings import ServeSettings
from retain.serve.shadow import Shadow
from retain.store.registry import Registry
from retain.store.store import Store

PURGE_EVERY = 60.0  # seconds between removals of long-expired predictions


class ServeState:
    """The worker's state; build with :meth:`open`, stop with :meth:`close`."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.store = Store(settings.path)
        with Registry(settings.path):  # refuses a folder that is not a store, by name
            pass
        # predictions log on the event loop without fsync and without the log checkpoints
        # (they fsync); labels fsync, under a lock, in the thread pool, which also runs the
        # checkpoints (see retain.serve.journal)
        self.fast = Journal(settings.path, durable=False, checkpoints=False)
        self.predictions = GroupCommit(self.fast)  # /predict logs through it
        self.durable = Journal(settings.path, durable=True)
        self.write_lock = threading.Lock()
        self.policy = UpdatePolicy(settings, Journal(settings.path, durable=False))
        self.shadow = Shadow(self)
        self.slot = ModelSlot(Served.load(self.store, self.serving_version()))
        self.started = self.purged = time.time()
        self._task: asyncio.Task | None = None

    @property
    def served(self) -> Served:
        return self.slot.served

    def serving_version(self) -> int:
        """The version that should answer predictions now."""
        trial = self.fast.get_state("shadow")
        if trial is not None:
            return int(trial["champion"])
        with Registry(self.settings.path) as registry:
            return registry.current_id()

    async def follow(self) -> None:
        """Keep the served version in step with the store and run the time and drift rules."""
        while True:
            await asyncio.sleep(self.settings.poll)
            try:
                await self.refresh()
                await asyncio.to_thread(self._checkpoint)
                self.policy.tick()
                self.shadow.decide()
                if time.time() - self.purged > PURGE_EVERY:
                    self.purged = time.time()
                    self.fast.purge(self.purged - 2 * self.settings.pending_ttl)
            except Exception as exc:  # noqa: BLE001 - a failed check must not stop serving
                self.last_error = f"{type(exc).__name__}: {exc}"

    async def refresh(self) -> bool:
        """Load the version that should serve (off the event loop) and swap it in."""
        version = self.serving_version()
        changed = False
        if version != self.served.version:
            changed = await asyncio.to_thread(self.slot.refresh, self.store, version)
        await asyncio.to_thread(self.shadow.refresh, self.shadow.trial())
        return changed

    def _checkpoint(self) -> None:
        with self.write_lock:
            self.durable.checkpoint()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.follow())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.policy.close()
        for journal in (self.fast, self.durable, self.policy.journal):
            journal.close()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "version": self.served.version,
                "challenger": self.shadow.version, "pending_labels": self.fast.unused(),
                "update_running": update_running(self.settings.path),
                "uptime_s": round(time.time() - self.started, 1), "worker": os.getpid()}

    last_error: str | None = None
