"""``GET /health`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from retain.serve.deps import State

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(state: State) -> dict[str, Any]:
    """The serving version, the challenger on trial, labels waiting, whether an update runs."""
    return state.health()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.text(), media_type=CONTENT_TYPE_LATEST)
