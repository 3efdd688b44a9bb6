"""``POST /predict``: rows in, predictions out, each logged with its id and features.

The handler runs on the event loop (no thread hand-off): checking a few rows and one forward
pass of a small model take well under a millisecond, less than a thread switch would cost.
It is the hot route, so it reads its body itself (:func:`retain.serve.requests.parse`: the same
checks and 422 messages as FastAPI's body parsing, at a fraction of its cost per request).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from retain.serve.checks import MAX_ID, BadInput, rows_to_array, unique
from retain.serve.requests import PredictRequest, body_schema, parse
from retain.serve.service import ServeState

router = APIRouter(tags=["predictions"])


@router.post("/predict", openapi_extra=body_schema(PredictRequest))
async def predict(request: Request) -> JSONResponse:
    """Predict every row with the serving version; the response names that version and gives
    a prediction id per row (the client's, or a new one) to send the label with later."""
    return JSONResponse(await answer(request.app.state.serve, await request.body()))


async def answer(state: ServeState, raw: bytes) -> dict[str, Any]:
    """The answer to the ``/predict`` body ``raw``, its predictions logged; refusals raise
    (:class:`BadInput`, :class:`~retain.serve.journal.JournalError`, a validation error).
    Shared by the route and the app's fast path (:class:`retain.serve.app.FastPredict`)."""
    body = parse(PredictRequest, raw)
    served = state.served  # one version for the whole request, even if a swap happens now
    check_size(len(body.rows), state.settings.max_rows)
    ids = body.ids if body.ids is not None else [uuid.uuid4().hex for _ in body.rows]
    if len(ids) != len(body.rows):
        raise BadInput(f"{len(ids)} ids for {len(body.rows)} rows: give one id per row, or none")
    unique(ids, "prediction id")
    bad = [i for i in ids if not 0 < len(i) <= MAX_ID]
    if bad:
        raise BadInput(f"prediction id {bad[0]!r} must have 1 to {MAX_ID} characters")
    x = rows_to_array(body.rows, served.schema)
    out = served.predict(x)
    shadow = state.shadow.predict(x)
    await state.predictions.log([  # committed before the answer; one commit per loop turn
        (pid, served.version, row.tolist(), p["prediction"], None if shadow is None else s)
        for pid, row, p, s in zip(ids, x, out, shadow or [None] * len(ids), strict=True)])
    return {"version": served.version,
            "predictions": [{"id": pid, **p} for pid, p in zip(ids, out, strict=True)]}


def check_size(rows: int, limit: int) -> None:
    if rows > limit:
        raise BadInput(f"{rows} rows is more than this server takes in one request ({limit}); "
                       "split the request", status=413)
