"""``GET /versions``, ``POST /rollback``, ``POST /update``: the store's history and changes.

A rollback goes through the store (its lock, its checks) and is then loaded by this worker at
once; the other workers follow within one poll interval. The reads run on the event loop (the
journal connection they share with ``/predict`` is used from that thread only).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from retain.errors import RetainError
from retain.serve.checks import BadInput
from retain.serve.deps import Authorized, State
from retain.serve.requests import RollbackRequest

router = APIRouter(tags=["versions"])


@router.get("/versions")
async def versions(state: State) -> dict[str, Any]:
    """Every version of the store (oldest first), the one serving, and the server's updates
    with their trigger, outcome and reason."""
    trial = state.fast.get_state("shadow")
    return {"serving": state.served.version, "challenger": None if trial is None
            else trial["challenger"], "versions": [v.to_dict() for v in state.store.history()],
            "updates": state.fast.updates(), "prequential": state.fast.prequential()}


@router.post("/rollback", dependencies=[Authorized])
async def rollback(state: State, body: RollbackRequest | None = None) -> dict[str, Any]:
    """Make an earlier version current (default: the serving version's parent) and serve it."""
    to = body.to if body is not None else None
    try:
        restored = await asyncio.to_thread(_rollback, state, to)
    except RetainError as exc:
        raise BadInput(str(exc), status=409) from None
    await state.refresh()
    return {"version": restored.id, "serving": state.served.version}


def _rollback(state, to: int | None):
    with state.write_lock:
        state.durable.set_state("shadow", None)  # a rollback ends any trial
    if to is None:
        serving = state.served.version
        to = next(v.parent for v in state.store.history() if v.id == serving)
        if to is None:
            raise RetainError(f"version {serving} is the first version; there is nothing "
                              "to roll back to")
    return state.store.rollback(to=to, wait=5)


@router.post("/update", status_code=202, dependencies=[Authorized])
async def update(state: State) -> dict[str, Any]:
    """Start an update on the labels that wait now (it runs in its own process)."""
    waiting = state.fast.unused()
    if waiting < state.settings.min_update_rows:
        raise BadInput(f"{waiting} labels wait; an update needs at least "
                       f"{state.settings.min_update_rows}", status=409)
    started = state.policy.start("requested", asked=True)
    return {"started": started, "pending_labels": waiting,
            "detail": "started" if started else "an update or a shadow trial is running"}
