"""MLflow runs (``pip install 'retain[log]'``, which brings ``mlflow-skinny``): scalars as
metrics, parameters as params, tables as CSV artifacts, figures as image artifacts.

The default is a local file store, ``file:<folder>/mlruns`` (``mlflow ui --backend-store-uri
<folder>/mlruns`` shows it), or ``MLFLOW_TRACKING_URI`` when set. MLflow keeps its file store
in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE=true``; this logger sets that variable
(if unset) only when it writes to a file store.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from retain.extras import require
from retain.loggers.base import Logger, Table


class MLflowLogger(Logger):
    """One MLflow run, in ``experiment`` (default ``retain``), named ``run_name``."""

    def __init__(self, folder: str | Path = ".", experiment: str = "retain",
                 run_name: str | None = None, tracking_uri: str | None = None):
        super().__init__()
        mlflow = require("mlflow", "log")
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (
            Path(folder).resolve() / "mlruns").as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = uri
        self._client = mlflow.MlflowClient(tracking_uri=uri)
        found = self._client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self._client.create_experiment(
            experiment)
        self.run_id = self._client.create_run(experiment_id, run_name=run_name).info.run_id
        self._entities = mlflow.entities

    def _write(self, scalars: list[tuple[int, str, float]], params: dict[str, Any],
               tables: list[Table], figures: list[tuple[str, Path]]) -> None:
        metrics = [self._entities.Metric(_key(name), value, 0, step)
                   for step, name, value in scalars]
        values = [self._entities.Param(_key(k), json.dumps(v, default=str)[:6000])
                  for k, v in params.items()]
        for start in range(0, len(metrics), 1000):  # MLflow's limits per batch
            self._client.log_batch(self.run_id, metrics=metrics[start:start + 1000])
        for start in range(0, len(values), 100):
            self._client.log_batch(self.run_id, params=values[start:start + 100])
        for name, header, rows in tables:
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(header)
            writer.writerows(rows)
            self._client.log_text(self.run_id, text.getvalue(), f"tables/{_key(name)}.csv")
        for _, path in figures:
            self._client.log_artifact(self.run_id, str(path), "figures")

    def _close(self) -> None:
        self._client.set_terminated(self.run_id)


def _key(name: str) -> str:
    """MLflow keys allow letters, digits and ``_-. /``."""
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in name)
