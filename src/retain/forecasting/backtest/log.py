"""What a forecasting run logs: each approach's 7-day MAE as the days go by (buffered,
written every ``every`` days), then the summary table, the measures of every approach and
the report's plots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ProgressFn = Callable[[int, int, Any, dict], None]


def logging_progress(loggers: Sequence[Any], progress: ProgressFn | None,
                     every: int = 7) -> ProgressFn | None:
    """``progress`` that also logs ``mae_7day/<approach>`` at step = day."""
    if not loggers:
        return progress

    def step(day: int, n: int, when: Any, windowed: dict) -> None:
        for log in loggers:
            log.log_scalars({f"mae_7day/{k}": v for k, v in windowed.items()}, step=day)
            if (day + 1) % every == 0 or day + 1 == n:
                log.flush()
        if progress is not None:
            progress(day, n, when, windowed)
    return step


def log_forecast(loggers: Sequence[Any], summary: dict[str, Any], config: dict[str, Any],
                 out: Path) -> None:
    from retain.forecasting.backtest.report import summary_table

    header, rows = summary_table(summary)
    keys = ("mae", "rmse", "mape", "update_seconds_per_day")
    scalars = {f"{name}/{k}": a.get(k) for name, a in summary["approaches"].items()
               for k in keys if isinstance(a.get(k), int | float)}
    for log in loggers:
        log.log_params(config)
        log.log_scalars(scalars, step=summary["days"])
        log.log_table("summary", header, rows)
        for image in sorted(Path(out).glob("*.png")):
            log.log_figure(image.stem, image)
        log.flush()
