"""``POST /learn``: labels by prediction id, or labelled rows; acknowledged once fsynced.

Test-then-train: each label first scores the prediction the model made (for a labelled row,
the serving version predicts it now), so the prequential error of a version is measured on
data it had not learned; then the label waits in the journal for the next update. The whole
request is checked before anything is written, and written in one transaction.

A plain ``def``: FastAPI runs it in its thread pool, so the fsync never stalls the event loop
that answers ``/predict``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from retain.serve.checks import BadInput, check_label, rows_to_array, unique
from retain.serve.deps import Authorized, State
from retain.serve.model import Served
from retain.serve.requests import Label, LearnRequest
from retain.serve.routes.predict import check_size
from retain.serve.service import ServeState

router = APIRouter(tags=["labels"])


@router.post("/learn", dependencies=[Authorized])
def learn(body: LearnRequest, state: State) -> dict[str, Any]:
    """Record labels; answers with how many were accepted and how many wait for an update."""
    served = state.served
    if not body.labels and not body.rows:
        raise BadInput("nothing to learn: send 'labels' (by prediction id) or 'rows'")
    check_size(len(body.labels) + len(body.rows), state.settings.max_rows)
    with state.write_lock:
        records = [*_by_id(body.labels, state, served), *_rows(body.rows, state, served)]
        unused = state.durable.add_labels(records)
    started = state.policy.after_labels(unused)
    return {"accepted": len(records), "pending_labels": unused, "update_started": started}


def _by_id(labels: list[Label], state: ServeState, served: Served) -> list[tuple]:
    if not labels:
        return []
    ids = [label.id for label in labels]
    unique(ids, "prediction id")
    values = [check_label(label.label, served.schema, f"label of prediction {label.id!r}")
              for label in labels]
    known = state.durable.pending(ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise BadInput(f"unknown prediction id(s) {unknown[:5]}: never predicted, or expired "
                       "and forgotten", status=404)
    deadline = time.time() - state.settings.pending_ttl
    expired = [i for i in ids if known[i].created < deadline]
    if expired:
        raise BadInput(f"prediction id(s) {expired[:5]} expired: labels are taken up to "
                       f"{state.settings.pending_ttl:g} s after the prediction", status=410)
    done = sorted(state.durable.labelled(ids))
    if done:
        raise BadInput(f"prediction id(s) {done[:5]} already have a label", status=409)
    records = []
    for i, value in zip(ids, values, strict=True):
        p = known[i]
        shadow = None if p.shadow is None else served.error(p.shadow, value)
        records.append((i, p.version, p.features, value, served.error(p.prediction, value),
                        shadow))
    return records


def _rows(rows: list[dict[str, Any]], state: ServeState, served: Served) -> list[tuple]:
    if not rows:
        return []
    schema = served.schema
    if schema.shape is not None:
        raise BadInput("this store learns windows of signals: label the windows you sent to "
                       "/predict by their prediction ids ('labels'), not with 'rows'")
    x = rows_to_array(rows, schema, label=True)
    values = [check_label(row[schema.label], schema, f"row {r}, label column {schema.label!r}")
              for r, row in enumerate(rows)]
    out = served.predict(x)
    shadow = state.shadow.predict(x)
    return [(None, served.version, x[r].tolist(), value, served.error(p["prediction"], value),
             None if shadow is None else served.error(shadow[r], value))
            for r, (p, value) in enumerate(zip(out, values, strict=True))]
