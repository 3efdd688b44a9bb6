"""retain: incremental training of neural networks without forgetting.

The names below are imported on first use, so ``import retain`` (and ``retain --help``, which
imports ``retain.errors``) does not load torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from retain.errors import RetainError, RetainWarning
from retain.version import __version__ as __version__

if TYPE_CHECKING:
    from retain import datasets, metrics, scenarios, strategies
    from retain.learner import Learner, LearnStats
    from retain.metrics import RunResult

__all__ = ["Learner", "LearnStats", "RunResult", "RetainError", "RetainWarning", "datasets",
           "metrics", "scenarios", "strategies"]

_LAZY = {"Learner": "retain.learner", "LearnStats": "retain.learner",
         "RunResult": "retain.metrics"}
_SUBMODULES = ("datasets", "metrics", "scenarios", "strategies")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"retain.{name}")
    else:
        raise AttributeError(f"module 'retain' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
