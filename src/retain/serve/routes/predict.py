"""``POST /predict``: rows (or windows of signals) in, predictions out, each logged with its id
and features; windows named by recording also get a vote per recording.

The handler runs on the event loop (no thread hand-off): checking a few rows and one forward
pass of a small model take well under a millisecond, less than a thread switch would cost.
It is the hot route, so it reads its body itself (:func:`retain.serve.requests.parse`: the same
checks and 422 messages as FastAPI's body parsing, at a fraction of its cost per request).
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from retain.serve.checks import MAX_ID, BadInput, rows_to_array, signals_to_array, unique
from retain.serve.requests import PredictRequest, body_schema, parse
from retain.serve.service import ServeState
from retain.store.store import vote
from retain.store.tables import Schema

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
    items = _items(body, served.schema)
    check_size(len(items), state.settings.max_rows)
    ids = body.ids if body.ids is not None else [uuid.uuid4().hex for _ in items]
    if len(ids) != len(items):
        raise BadInput(f"{len(ids)} ids for {len(items)} rows: give one id per row, or none")
    unique(ids, "prediction id")
    bad = [i for i in ids if not 0 < len(i) <= MAX_ID]
    if bad:
        raise BadInput(f"prediction id {bad[0]!r} must have 1 to {MAX_ID} characters")
    x = (rows_to_array(body.rows, served.schema) if body.signals is None
         else signals_to_array(body.signals, served.schema))
    out = served.predict(x)
    shadow = state.shadow.predict(x)
    await state.predictions.log([  # committed before the answer; one commit per loop turn
        (pid, served.version, row.tolist(), p["prediction"], None if shadow is None else s)
        for pid, row, p, s in zip(ids, x, out, shadow or [None] * len(ids), strict=True)])
    answer = {"version": served.version,
              "predictions": [{"id": pid, **p} for pid, p in zip(ids, out, strict=True)]}
    if body.recordings is not None:
        answer["recordings"] = votes(body.recordings, out, served.schema)
    return answer


def _items(body: PredictRequest, schema: Schema) -> list[Any]:
    """The rows or windows of the request, whichever the store learns."""
    if (body.rows is None) == (body.signals is None):
        raise BadInput("send 'rows' (a store of tables) or 'signals' (a store of windows of "
                       "signals), one of them")
    if body.rows is not None and schema.shape is not None:
        raise BadInput(f"this store learns windows of signals: send 'signals', each window "
                       f"[channels][time] = {list(schema.shape)}, not 'rows'")
    items = body.rows if body.rows is not None else body.signals
    if body.recordings is not None and (body.signals is None or
                                        len(body.recordings) != len(items)):
        raise BadInput("'recordings' names the recording of each window of 'signals': give "
                       f"one per window ({len(items)}), or none")
    return items


def votes(recordings: list[str], out: list[dict[str, Any]], schema: Schema
          ) -> list[dict[str, Any]]:
    """One answer per recording: the class most of its windows got (ties: the first in class
    order), its share and the number of windows — :func:`retain.store.store.vote`."""
    windows = pd.DataFrame({"recording": recordings,
                            "prediction": [p["prediction"] for p in out]})
    return [{"recording": r.recording, "prediction": r.prediction, "share": float(r.share),
             "windows": int(r.windows)} for r in vote(windows, schema).itertuples()]


def check_size(rows: int, limit: int) -> None:
    if rows > limit:
        raise BadInput(f"{rows} rows is more than this server takes in one request ({limit}); "
                       "split the request", status=413)
