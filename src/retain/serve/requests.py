"""The request bodies, as pydantic models: the contract the OpenAPI page at ``/docs`` shows.

Rows stay plain JSON objects here; :mod:`retain.serve.checks` checks them against the store's
columns, which are known only once the store is open, and names the row and column at fault.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

Row = dict[str, Any]
Id = str
Number = StrictInt | StrictFloat  # JSON numbers; true, false and "1.5" are refused
Window = list[list[Number]] | list[Number]  # [channels][time], or [time] for one channel


class PredictRequest(BaseModel):
    """Rows to predict (a store of tables), or windows of signals (a store that learned
    ``.npz`` windows) with the recording of each (optional: adds a vote per recording);
    ``ids`` (one per row or window, optional) name the predictions for ``/learn``."""

    model_config = ConfigDict(extra="forbid")
    rows: list[Row] | None = Field(None, min_length=1, examples=[[{
        "temperature": 21.5, "hour_sin": 0.5, "hour_cos": 0.87}]])
    signals: list[Window] | None = Field(None, min_length=1)
    recordings: list[str] | None = None
    ids: list[Id] | None = None


class Label(BaseModel):
    """The true label (class or value) of an earlier prediction."""

    model_config = ConfigDict(extra="forbid")
    id: Id = Field(min_length=1, max_length=200)
    label: Any


class LearnRequest(BaseModel):
    """Delayed labels by prediction id, and/or complete labelled rows."""

    model_config = ConfigDict(extra="forbid")
    labels: list[Label] = []
    rows: list[Row] = []


class RollbackRequest(BaseModel):
    """The version to restore (default: the serving version's parent)."""

    model_config = ConfigDict(extra="forbid")
    to: int | None = Field(None, ge=1, le=2**63 - 1)  # a version id (SQLite's integer)


Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], raw: bytes) -> Model:
    """``raw`` (a JSON body) as ``model``, refused as FastAPI refuses a body it parses itself
    (the same :class:`RequestValidationError`, so the same 422 messages), for a hot route that
    reads its body without FastAPI's per-request parsing machinery."""
    try:
        data = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", getattr(exc, "start", 0))
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", pos),
                                       "msg": "JSON decode error", "input": {},
                                       "ctx": {"error": str(exc)}}]) from None
    if data is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` that shows ``model`` as the JSON body of a route that parses its
    body with :func:`parse`."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}
