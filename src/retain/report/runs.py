"""The report of ``retain run``/``retain demo``: summary table, curves and one heatmap per
strategy."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from retain.metrics import RunResult
from retain.report.html import Section, write_html
from retain.report.plots import plot_curves, plot_matrix


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-").lower() or "run"


def write_report(out: Path, results: dict[str, RunResult], title: str = "retain run",
                 config: dict | None = None, extra: Sequence[Section] = ()) -> Path:
    """Write PNGs and ``index.html`` for a set of runs into ``out``; returns the page path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metric = next(iter(results.values())).metric
    rows = [(name, r.average_accuracy, r.forgetting, r.bwt, r.fwt, round(sum(r.train_time), 2),
             sum(r.samples_seen)) for name, r in results.items()]
    sections = [Section("Summary", header=("strategy", f"final average {metric}", "forgetting",
                                           "BWT", "FWT", "train s", "samples"), rows=rows)]
    plot_curves(results, out / "curves.png")
    sections.append(Section("Score on the experiences seen so far", images=["curves.png"]))
    for name, r in results.items():
        image = f"matrix-{_slug(name)}.png"
        plot_matrix(r, name, out / image)
        sections.append(Section(f"{name}: accuracy matrix", images=[image],
                                text="Row i: after training experience i; column j: tested on "
                                     "experience j."))
    if config:
        sections.append(Section("Configuration", preformatted=json.dumps(config, indent=2,
                                                                         default=str)))
    return write_html(out / "index.html", title, [*sections, *extra])
