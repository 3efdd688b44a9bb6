"""The OpenAPI document of one store's service: each route's real request and every status it
answers, all refusals in one shape.

FastAPI derives a document from the pydantic models, which know nothing of the store: a row is
any JSON object there, so a client (or a generator such as schemathesis) cannot tell a good
request from a bad one. The store's columns, label and classes are known once it is open, so
:func:`openapi` rewrites the bodies of ``/predict`` and ``/learn`` from them, lists the
statuses each route returns (the checks' 4xx of :mod:`retain.serve.checks`, the token's 401 and
403, the body limit's 413) with one error shape, ``{"detail": message}`` (what
:func:`retain.serve.app.refusal` sends), declares the bearer token as a security scheme and
``/metrics`` as Prometheus text.

>>> from retain.store.tables import Schema
>>> row_schema(Schema(("temperature", "hour"), "demand", "regression", 1), label=False)[
...     "required"]
['temperature', 'hour']
>>> label_schema(Schema(("x",), "kind", "classification", 2, classes=("high", "low")))
{'enum': ['high', 'low']}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from retain.serve.checks import MAX_ID
from retain.store.tables import Schema

ERROR = {"title": "Error", "type": "object", "required": ["detail"], "additionalProperties": False,
         "properties": {"detail": {"type": "string", "description": "what was wrong, and how "
                                                                     "to fix it"}}}
FLOAT32 = float(np.finfo(np.float32).max)
NUMBER = {"type": "number", "minimum": -FLOAT32, "maximum": FLOAT32}

NOT_TEXT = "a body that is not text (FastAPI's parser; /predict answers 422)"
#: the refusals of each route besides the validation of its body: status -> when
REFUSED: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/predict"): {409: "a prediction id is already used",
                           413: "more rows than the server takes in one request, or a body "
                                "over its size limit",
                           422: "a row, value or id that does not fit the store"},
    ("post", "/learn"): {400: NOT_TEXT, 401: "no bearer token",
                         403: "a wrong token, or a server without one",
                         404: "an unknown prediction id", 409: "a prediction already labelled",
                         410: "a prediction older than the label TTL",
                         413: "too many labels and rows, or a body over the size limit",
                         422: "a label or row that does not fit the store"},
    ("post", "/rollback"): {400: NOT_TEXT, 401: "no bearer token",
                            403: "a wrong token, or a server without one",
                            409: "no such version, or nothing to roll back to",
                            413: "a body over the size limit", 422: "a malformed body"},
    ("post", "/update"): {401: "no bearer token", 403: "a wrong token, or a server without one",
                          409: "too few labels wait for an update",
                          413: "a body over the size limit"},
}


def openapi(app: FastAPI, schema: Schema, max_rows: int) -> dict[str, Any]:
    """The document of ``app`` serving a store whose columns are ``schema``."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR
    schemas["PredictRequest"] = predict_request(schema, max_rows)
    schemas["LearnRequest"] = learn_request(schema, max_rows)
    schemas["Label"] = {"title": "Label", "type": "object", "required": ["id", "label"],
                        "additionalProperties": False,
                        "properties": {"id": ID, "label": label_schema(schema)}}
    schemas["PredictResponse"] = predict_response(schema)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _operation(operation, REFUSED.get((method, path), {}))
    predict = doc["paths"]["/predict"]["post"]
    predict["requestBody"]["content"]["application/json"]["schema"] = _ref("PredictRequest")
    predict["responses"]["200"]["content"]["application/json"]["schema"] = _ref(
        "PredictResponse")
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]
    metrics["content"] = {"text/plain": {"schema": {"type": "string"}}}
    metrics["description"] = "the server's metrics in the Prometheus text format"
    return doc


ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID}


def row_schema(schema: Schema, label: bool) -> dict[str, Any]:
    """A row: every feature a finite float32 number; the label (required when ``label``), the
    time and the other columns of the first data are allowed; nothing else."""
    others = {c: {} for c in (*schema.ignored, *([schema.time] if schema.time else []))}
    return {"type": "object", "additionalProperties": False,
            "required": [*schema.features, *([schema.label] if label else [])],
            "properties": {**{c: NUMBER for c in schema.features}, **others,
                           schema.label: label_schema(schema) if label else {}}}


def label_schema(schema: Schema) -> dict[str, Any]:
    """A label the store reads: one of its class names, a class id, or a number."""
    if schema.task == "regression":
        return dict(NUMBER)
    if schema.classes:
        return {"enum": list(schema.classes)}
    return {"type": "integer", "minimum": 0, "maximum": schema.n_outputs - 1}


def window_schema(schema: Schema) -> dict[str, Any]:
    """A window of signals: ``[channels][time]`` numbers (``[time]`` for one channel)."""
    channels, length = schema.shape or (0, 0)
    samples = {"type": "array", "items": NUMBER, "minItems": length, "maxItems": length}
    window = {"type": "array", "items": samples, "minItems": channels, "maxItems": channels}
    return {"anyOf": [window, samples]} if channels == 1 else window


def predict_request(schema: Schema, max_rows: int) -> dict[str, Any]:
    if schema.shape is not None:
        return {"title": "PredictRequest", "type": "object", "required": ["signals"],
                "additionalProperties": False,
                "description": "Windows of signals to predict; ``recordings`` (the recording "
                               "of each window, optional) adds a majority vote per recording; "
                               "``ids`` (one per window, optional) name the predictions.",
                "properties": {
                    "signals": {"type": "array", "items": window_schema(schema),
                                "minItems": 1, "maxItems": max_rows},
                    "recordings": {"anyOf": [{"type": "array", "items": {"type": "string"},
                                              "maxItems": max_rows}, {"type": "null"}]},
                    "ids": _ids(max_rows)}}
    rows = {"type": "array", "items": row_schema(schema, label=False), "minItems": 1,
            "maxItems": max_rows, "description": "the rows to predict"}
    return {"title": "PredictRequest", "type": "object", "required": ["rows"],
            "additionalProperties": False,
            "description": "Rows to predict; ``ids`` (one per row, optional, each used once) "
                           "name the predictions for ``/learn``.",
            "properties": {"rows": rows, "ids": _ids(max_rows)}}


def learn_request(schema: Schema, max_rows: int) -> dict[str, Any]:
    labels = {"type": "array", "items": _ref("Label"), "maxItems": max_rows}
    if schema.shape is not None:  # windows are labelled by the ids of their predictions
        return {"title": "LearnRequest", "type": "object", "additionalProperties": False,
                "required": ["labels"], "description": "Labels of predicted windows, by "
                                                       "prediction id.",
                "properties": {"labels": labels}}
    return {"title": "LearnRequest", "type": "object", "additionalProperties": False,
            "description": "Delayed labels by prediction id, and/or complete labelled rows "
                           "(at least one of them).",
            "properties": {"labels": labels, "rows": {
                "type": "array", "items": row_schema(schema, label=True),
                "maxItems": max_rows}}}


def predict_response(schema: Schema) -> dict[str, Any]:
    one: dict[str, Any] = {"id": ID, "prediction": label_schema(schema)}
    if schema.task == "classification":
        names = list(schema.classes) if schema.classes else [
            str(i) for i in range(schema.n_outputs)]
        one["probabilities"] = {"type": "object", "required": names,
                                "properties": {n: {"type": "number"} for n in names}}
    properties: dict[str, Any] = {"version": {"type": "integer"}, "predictions": {
        "type": "array", "items": {"type": "object", "required": list(one), "properties": one}}}
    if schema.shape is not None:  # with recordings: the vote of each
        vote = {"recording": {"type": "string"}, "prediction": label_schema(schema),
                "share": {"type": "number"}, "windows": {"type": "integer"}}
        properties["recordings"] = {"type": "array", "items": {
            "type": "object", "required": list(vote), "properties": vote}}
    return {"title": "PredictResponse", "type": "object", "required": ["version", "predictions"],
            "properties": properties}


def _ids(max_rows: int) -> dict[str, Any]:
    return {"anyOf": [{"type": "array", "items": ID, "uniqueItems": True, "maxItems": max_rows},
                      {"type": "null"}]}


def _operation(operation: dict[str, Any], refused: dict[int, str]) -> None:
    """Every status the route answers, refusals as :data:`ERROR`; the token as security."""
    parameters = [p for p in operation.get("parameters", []) if p["name"] != "authorization"]
    if len(parameters) < len(operation.get("parameters", [])):
        operation["security"] = [{"bearer": []}]
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's list of errors: ours is one message
    for status, why in sorted(refused.items()):
        responses[str(status)] = {"description": why,
                                  "content": {"application/json": {"schema": _ref("Error")}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
