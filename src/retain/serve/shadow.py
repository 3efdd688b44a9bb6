"""Shadow mode: a promoted version first predicts beside the current one on live traffic.

With ``shadow=True`` an update that passes the gate starts a trial instead of taking over: the
store's current version becomes the *challenger*, the version it learned from stays the
*champion* and keeps answering. Both predict every request; each label scores both
(test-then-train). After ``shadow_labels`` labels the challenger takes over if its live error
is no worse than the champion's, otherwise the store rolls back to the champion and the
challenger is recorded as rolled back, with both errors as the reason. No update starts while
a trial runs: the next one learns on top of the winner.
"""

from __future__ import annotations

import fcntl
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from retain.errors import RetainError
from retain.serve.model import ModelSlot, Served
from retain.serve.policy import UPDATE_LOCK

if TYPE_CHECKING:
    import threading

    from retain.serve.journal import Journal
    from retain.serve.settings import ServeSettings
    from retain.store.store import Store


class ShadowHost(Protocol):
    """What a shadow reads of its worker (:class:`retain.serve.service.ServeState`, which
    holds the shadow: typed here so that neither module imports the other)."""

    settings: ServeSettings
    store: Store
    fast: Journal
    durable: Journal
    write_lock: threading.Lock


class Shadow:
    """The challenger of one worker, and the trial's decision."""

    def __init__(self, state: ShadowHost):
        self.state = state
        self.slot: ModelSlot | None = None

    @property
    def version(self) -> int | None:
        return None if self.slot is None else self.slot.served.version

    def trial(self) -> dict[str, Any] | None:
        return self.state.fast.get_state("shadow")

    def refresh(self, trial: dict[str, Any] | None) -> None:
        """Load the challenger of ``trial`` (read from the journal on the event loop), or
        drop it when the trial is over. Runs in a thread: loading takes a while."""
        if trial is None or trial["challenger"] is None:  # none, or its update still runs
            self.slot = None
        elif self.slot is None:
            self.slot = ModelSlot(Served.load(self.state.store, int(trial["challenger"])))
        else:
            self.slot.refresh(self.state.store, int(trial["challenger"]))

    def predict(self, x: np.ndarray) -> list[Any] | None:
        """The challenger's predictions (values or classes only), or ``None`` without one."""
        slot = self.slot
        if slot is None:
            return None
        return [p["prediction"] for p in slot.served.predict(x)]

    def decide(self) -> str | None:
        """End the trial once enough labels scored both models; returns what happened."""
        trial = self.trial()
        if trial is None or trial["challenger"] is None:
            return None
        n, champion, challenger = self.state.fast.shadow_errors(trial["since"])
        if n < self.state.settings.shadow_labels:
            return None
        path = self.state.settings.path
        with open(path / UPDATE_LOCK, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            if self.trial() != trial:  # another worker decided meanwhile
                return None
            return self._settle(trial, n, champion, challenger)

    def _settle(self, trial: dict[str, Any], n: int, champion: float,
                challenger: float) -> str:
        journal = self.state.durable
        words = (f"live error over {n} labels: challenger {challenger:.4f}, champion "
                 f"{champion:.4f}")
        if challenger <= champion:
            outcome, status = f"challenger {trial['challenger']} took over ({words})", "promoted"
        else:
            outcome, status = f"champion {trial['champion']} kept ({words})", "rolled-back"
            try:
                self.state.store.rollback(to=int(trial["champion"]))
            except RetainError as exc:  # e.g. someone rolled back by hand meanwhile
                outcome += f"; the store did not roll back: {exc}"
        with self.state.write_lock:
            journal.finish_update(int(trial["update"]), status, int(trial["challenger"]),
                                  outcome, take_labels=False)
            journal.set_state("shadow", None)
        return outcome
