"""``GET /forecast``, ``POST /observe``, ``GET /versions``: a forecast store over HTTP.

``/forecast`` answers from what the server keeps (computed once per version, rows known and
future values), on the event loop; ``/observe`` is a plain ``def``, run in FastAPI's thread
pool, so its fsync never stalls the loop that answers forecasts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from retain.serve.deps import Authorized
from retain.serve.forecast_service import ForecastState
from retain.serve.routes.predict import check_size

router = APIRouter(tags=["forecasts"])
Row = dict[str, Any]


async def get_state(request: Request) -> ForecastState:
    return request.app.state.serve


State = Annotated[ForecastState, Depends(get_state)]


class ObserveRequest(BaseModel):
    """Newly measured rows (the time, the label and every covariate), and/or the known-future
    covariates over the coming horizon (the time and those columns)."""

    model_config = ConfigDict(extra="forbid")
    rows: list[Row] = Field(default=[], examples=[[{"time": "2024-02-10T00:00:00",
                                                     "load": 4.6, "temperature": 11.5}]])
    future: list[Row] = []


@router.get("/forecast")
async def forecast(state: State, version: int | None = None) -> dict[str, Any]:
    """The next horizon after the last completed day observed (time, forecast, 80% and 95%
    bounds), from the serving version (or ``version``), as ``retain predict`` gives it."""
    return await state.forecast(version)


@router.post("/observe", dependencies=[Authorized])
def observe(body: ObserveRequest, state: State) -> dict[str, Any]:
    """Keep measured rows (fsynced before the answer); a completed day starts the update."""
    check_size(len(body.rows) + len(body.future), state.settings.max_rows)
    return state.observe(body.rows, body.future)


@router.get("/versions")
def versions(state: State) -> dict[str, Any]:
    """Every version (oldest first), the one serving, and each version's forecast error."""
    return {"serving": state.version, "versions": [v.to_dict() for v in state.store.history()],
            "errors": state.store.errors_by_version()}
