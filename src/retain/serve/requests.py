"""The request bodies, as pydantic models: the contract the OpenAPI page at ``/docs`` shows.

Rows stay plain JSON objects here; :mod:`retain.serve.checks` checks them against the store's
columns, which are known only once the store is open, and names the row and column at fault.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Row = dict[str, Any]
Id = str


class PredictRequest(BaseModel):
    """Rows to predict; ``ids`` (one per row, optional) name the predictions for ``/learn``."""

    model_config = ConfigDict(extra="forbid")
    rows: list[Row] = Field(min_length=1, examples=[[{"temperature": 21.5, "hour_sin": 0.5,
                                                       "hour_cos": 0.87}]])
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
    to: int | None = None
