"""Loggers: scalars, tables and plots of runs, bench grids, forecasts and store updates, to
TensorBoard, MLflow or CSV files, written between experiences (never in the update step).

``make_loggers("tensorboard,mlflow,csv", folder, run_name)`` builds them as ``--log`` does;
TensorBoard and MLflow need ``pip install 'retain[log]'`` and say so when it is missing.

>>> import tempfile
>>> [type(log).__name__ for log in make_loggers("csv", tempfile.mkdtemp(), "naive")]
['CSVLogger']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from retain.errors import RetainError
from retain.loggers.base import Logger
from retain.loggers.csv_files import CSVLogger
from retain.loggers.results import log_result

KINDS = ("tensorboard", "mlflow", "csv")


def parse_kinds(spec: str | Sequence[str] | None) -> list[str]:
    """``"tensorboard,csv"`` (or a list of names) -> the names, checked."""
    if not spec:
        return []
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise RetainError(f"unknown logger {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(names))


def make_loggers(spec: str | Sequence[str] | None, folder: str | Path,
                 run_name: str) -> list[Logger]:
    """One logger of each kind in ``spec`` for the run ``run_name``: TensorBoard events in
    ``folder/tensorboard/<run>``, CSV files in ``folder/csv/<run>``, an MLflow run named
    ``run_name`` in ``folder/mlruns`` (or ``MLFLOW_TRACKING_URI``)."""
    folder, slug = Path(folder), _slug(run_name)
    made: list[Logger] = []
    for kind in parse_kinds(spec):
        if kind == "csv":
            made.append(CSVLogger(folder / "csv" / slug))
        elif kind == "tensorboard":
            from retain.loggers.tensorboard_events import TensorBoardLogger

            made.append(TensorBoardLogger(folder / "tensorboard" / slug))
        else:
            from retain.loggers.mlflow_runs import MLflowLogger

            made.append(MLflowLogger(folder, run_name=run_name))
    return made


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "run"


__all__ = ["KINDS", "CSVLogger", "Logger", "log_result", "make_loggers", "parse_kinds"]
