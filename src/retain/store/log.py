"""What a store update logs: the candidate's measures at step = its version id (so one
TensorBoard folder per store shows the errors and flip rates version after version), its
decision as a table, and the store's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retain.store.registry import Version


def log_version(loggers: Sequence[Any], version: Version, settings: dict[str, Any]) -> None:
    numbers = {k: v for k, v in version.metrics.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    for log in loggers:
        log.log_params({**settings, "strategy": version.strategy})
        log.log_scalars({**numbers, "promoted": float(version.status == "promoted")},
                        step=version.id)
        log.log_table(f"version_{version.id}", ["version", "parent", "status", "reason"],
                      [[version.id, version.parent, version.status, version.reason]])
        log.flush()
