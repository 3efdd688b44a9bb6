"""``retain serve`` over a forecast store (``retain init --task forecast``): see docs/serve.md.

:func:`retain.serve.create_app` builds this app when the store holds forecasters. It shares the
tabular service's token, body limit, refusals and request metrics, and answers
``GET /forecast``, ``POST /observe``, ``GET /versions``, ``GET /health`` and ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from retain.serve.app import REFUSALS, Guard, refusal
from retain.serve.forecast_service import ForecastState
from retain.serve.metrics import Metrics
from retain.serve.routes import forecast, operations
from retain.serve.settings import ServeSettings


def create_forecast_app(settings: ServeSettings) -> FastAPI:
    """The service over the forecast store ``settings.store`` (one worker)."""
    state = ForecastState(settings)  # reads the store and the journal now: fails before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        yield
        await state.close()

    app = FastAPI(title="retain serve (forecasts)", lifespan=lifespan,
                  description="The next day's forecast from a retain forecast store that "
                              "learns each measured day, with gated updates.")
    app.state.serve = state
    app.state.metrics = Metrics(None, None, collector=ForecastCollector(state))
    for module in (forecast, operations):
        app.include_router(module.router)
    for kind in REFUSALS:
        app.add_exception_handler(kind, _refused)
    app.add_middleware(Guard, limit=settings.max_body_bytes, metrics=app.state.metrics)
    return app


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    return refusal(exc)


class ForecastCollector:
    """Figures read from the store when Prometheus scrapes, so a restart keeps them."""

    def __init__(self, state: ForecastState):
        self.state = state

    def collect(self) -> Iterator[Any]:
        store = self.state.store
        mae = GaugeMetricFamily("retain_serve_forecast_mae", "mean absolute error of the "
                                "days each version forecast while serving, scored before "
                                "they were learnt", labels=["version"])
        days = CounterMetricFamily("retain_serve_forecast_days", "days each version "
                                   "forecast and was scored on", labels=["version"])
        for version, figures in sorted(store.errors_by_version().items()):
            mae.add_metric([str(version)], figures["mae"])
            days.add_metric([str(version)], figures["days"])
        yield mae
        yield days
        yield GaugeMetricFamily("retain_serve_version", "the version serving forecasts",
                                value=self.state.version)
        outcomes = CounterMetricFamily("retain_serve_updates", "versions made by updates, by "
                                       "status (the gate's decision, or rolled-back since)",
                                       labels=["status"])
        counts: dict[str, int] = {}
        for v in store.history():
            if v.parent is not None:
                counts[v.status] = counts.get(v.status, 0) + 1
        for status, n in sorted(counts.items()):
            outcomes.add_metric([status], n)
        yield outcomes
        yield GaugeMetricFamily("retain_serve_pending_rows", "rows observed that the store "
                                "does not hold yet", value=len(self.state.series) -
                                self.state.stored)
        yield CounterMetricFamily("retain_serve_update_failures", "updates that stopped with "
                                  "an error since the server started", value=self.state.failures)
