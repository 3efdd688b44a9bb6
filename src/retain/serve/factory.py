""":func:`create_app`: the service that fits the store, tabular or forecast.

A store of tabular rows gets :func:`retain.serve.app.create_app`'s prediction service; a
forecast store (``retain init --task forecast``) gets
:func:`retain.serve.forecast_app.create_forecast_app`'s.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from retain.serve import app as tabular
from retain.serve.forecast_app import create_forecast_app
from retain.serve.settings import ServeSettings
from retain.store.forecasts import ForecastStore, open_store


def create_app(store: str | Path, settings: ServeSettings | None = None,
               **options: Any) -> FastAPI:
    """The service over the store in folder ``store``; ``options`` are
    :class:`ServeSettings` fields (``token``, ``update_every``, ``shadow``, ...)."""
    settings = replace(settings or ServeSettings(store=str(store)), store=str(store), **options)
    if isinstance(open_store(settings.path), ForecastStore):
        return create_forecast_app(settings)
    return tabular.create_app(store, settings)
