"""The FastAPI app: :func:`create_app` to embed it, :func:`app_from_env` for uvicorn workers.

Over a store with one version, in process (``uvicorn.run(app, port=8000)`` serves it):

>>> import tempfile, numpy as np, pandas as pd
>>> from fastapi.testclient import TestClient
>>> from retain.serve import create_app
>>> from retain.store import Store
>>> x = np.random.default_rng(0).normal(size=(100, 2))
>>> rows = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "up": (x.sum(axis=1) > 0).astype(int)})
>>> folder = Path(tempfile.mkdtemp()) / "store"
>>> _ = Store(folder).init(rows, label="up", lr=0.01, epochs=10)
>>> app = create_app(folder, token="a-long-random-token-1234")
>>> with TestClient(app) as client:
...     answer = client.post("/predict", json={"rows": [{"x1": 2.0, "x2": 1.0}]}).json()
>>> answer["version"], answer["predictions"][0]["prediction"]
(1, 1)
"""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from retain.errors import RetainError
from retain.serve.checks import BadInput
from retain.serve.journal import JournalError
from retain.serve.metrics import Metrics
from retain.serve.routes import learn, operations, predict, versions
from retain.serve.service import ServeState
from retain.serve.settings import SETTINGS_ENV, ServeSettings


def create_app(store: str | Path, settings: ServeSettings | None = None,
               **options: Any) -> FastAPI:
    """The service over the store in folder ``store``; ``options`` are
    :class:`ServeSettings` fields (``token``, ``update_every``, ``shadow``, ...)."""
    settings = replace(settings or ServeSettings(store=str(store)), store=str(store), **options)
    state = ServeState(settings)  # opens the store now: a bad folder fails before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        yield
        await state.close()

    app = FastAPI(title="retain serve", lifespan=lifespan,
                  description="Predictions from a retain store that keeps learning from "
                              "delayed labels, with gated updates and rollback.")
    app.state.serve = state
    app.state.metrics = Metrics(state.fast, lambda: state.served.version)
    for module in (predict, learn, versions, operations):
        app.include_router(module.router)
    _errors(app)
    route = next(r for r in predict.router.routes if getattr(r, "path", None) == "/predict")
    app.add_middleware(FastPredict, state=state, route=route)
    app.add_middleware(Guard, limit=settings.max_body_bytes, metrics=app.state.metrics)
    return app


def app_from_env() -> FastAPI:
    """The app of a ``retain serve --workers N`` worker (settings in ``$RETAIN_SERVE_SETTINGS``)."""
    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    torch.set_num_threads(1)  # one worker per core: intra-op threads would only contend
    return create_app(settings.store, settings)


def _errors(app: FastAPI) -> None:
    """Every refusal is ``{"detail": message}`` with a 4xx status."""
    for kind in REFUSALS:
        app.add_exception_handler(kind, _handler)


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    return refusal(exc)


def refusal(exc: Exception) -> JSONResponse:
    """The 4xx answer to a refused request (``exc`` one of :data:`REFUSALS`)."""
    if isinstance(exc, RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)
    status = exc.status if isinstance(exc, BadInput) else (
        409 if isinstance(exc, JournalError) else 422)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def _path(scope: dict) -> str:
    """The path the router matches (without the prefix of a mount)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


REFUSALS: tuple[type[Exception], ...] = (BadInput, JournalError, RetainError,
                                         RequestValidationError)


class FastPredict:
    """ASGI middleware: answers ``POST /predict`` itself, with the route's own code
    (:func:`retain.serve.routes.predict.answer`) and the app's refusals, skipping the router,
    dependency and exception layers that would cost more CPU than the prediction. Inside
    :class:`Guard`, which still limits the body and records the request."""

    def __init__(self, app: Any, state: ServeState, route: Any):
        self.app, self.state, self.route = app, state, route

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _path(scope) != "/predict":
            return await self.app(scope, receive, send)
        scope["route"] = self.route  # what the router would set: the metrics' route label
        raw, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            response: Any = JSONResponse(await predict.answer(self.state, raw))
        except REFUSALS as exc:
            response = refusal(exc)
        await response(scope, receive, send)


class TooLarge(HTTPException):
    """A body over the limit; an HTTPException so that FastAPI's body parser passes it on."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than this server takes "
                              f"({limit} bytes)")


class Guard:
    """ASGI middleware: refuses bodies over ``limit`` bytes (413, before the app parses them)
    and records each request's route, status and latency."""

    def __init__(self, app: Any, limit: int, metrics: Metrics):
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]
        declared = dict(scope["headers"]).get(b"content-length")
        try:
            if declared is not None and int(declared) > self.limit:
                raise TooLarge(self.limit)
            await self.app(scope, self._counting(receive), self._status(send, status))
        except TooLarge as exc:  # declared too large: refused before the body is read
            status[0] = 413
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)
        route = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.observe(route, status[0], started)

    def _counting(self, receive: Any) -> Any:
        seen = [0]

        async def counted() -> dict:
            message = await receive()
            seen[0] += len(message.get("body", b""))
            if seen[0] > self.limit:
                raise TooLarge(self.limit)
            return message
        return counted

    @staticmethod
    def _status(send: Any, status: list[int]) -> Any:
        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        return sending
