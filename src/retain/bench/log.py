"""What a bench grid logs: each finished run's summary as it comes in, then the table of
means ± std over seeds and the report's plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retain.bench.grid import label


def log_record(loggers: Sequence[Any], record: dict[str, Any], n: int) -> None:
    """A finished run's measures under ``<strategy>/seed<seed>/...`` at step ``n`` (its
    place in the order runs finished); a failed run logs nothing."""
    if not loggers or record.get("status") != "ok":
        return
    run, result = record["run"], record["result"]
    prefix = f"{run['scenario']}/{label(run)}/seed{run['seed']}"
    keys = ("average_accuracy", "forgetting", "bwt", "fwt", "negative_flip_rate",
            "positive_flip_rate", "negative_flip_impact")
    scalars = {f"{prefix}/{k}": result.get(k) for k in keys}
    scalars[f"{prefix}/wall_s"] = record.get("wall_s")
    for log in loggers:
        log.log_scalars(scalars, step=n)
        log.flush()


def log_summary(loggers: Sequence[Any], header: Sequence[str], rows: Sequence[Sequence[Any]],
                out: Path) -> None:
    """The summary table and every PNG of the report."""
    for log in loggers:
        log.log_table("summary", header, rows)
        for image in sorted(Path(out).glob("*.png")):
            log.log_figure(image.stem, image)
        log.flush()
