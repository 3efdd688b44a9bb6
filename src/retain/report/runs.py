"""The report of ``retain run``/``retain demo``: summary table, curves and one heatmap per
strategy."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from retain.metrics import RunResult
from retain.report.html import Section, write_html
from retain.report.plots import plot_curves, plot_gap, plot_matrix


def slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-").lower() or "run"


def write_report(out: Path, results: dict[str, RunResult], title: str = "retain run",
                 config: dict | None = None, extra: Sequence[Section] = ()) -> Path:
    """Write PNGs and ``index.html`` for a set of runs into ``out``; returns the page path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metric = next(iter(results.values())).metric
    rows = [(name, r.average_accuracy, r.forgetting, r.bwt, r.fwt, *_update_measures(r),
             round(sum(r.train_time), 2), sum(r.samples_seen)) for name, r in results.items()]
    sections = [Section("Summary", header=("strategy", f"final average {metric}", "forgetting",
                                           "BWT", "FWT", "NFR", "PFR", "NFI", "min-ACC",
                                           "WC-ACC", "train s", "samples"), rows=rows),
                _flips_section(results)]
    plot_curves(results, out / "curves.png")
    sections.append(Section("Score on the experiences seen so far", images=["curves.png"]))
    for name, r in results.items():
        image = f"matrix-{slug(name)}.png"
        plot_matrix(r, name, out / image)
        sections.append(Section(f"{name}: accuracy matrix", images=[image],
                                text="Row i: after training experience i; column j: tested on "
                                     "experience j."))
        if r.curve is not None:
            image = f"gap-{slug(name)}.png"
            plot_gap(r, f"{name}: every {r.eval_every} steps", out / image)
            sections.append(Section(f"{name}: the stability gap", images=[image],
                                    text=f"min-ACC {_text(r.min_acc)}, WC-ACC "
                                         f"{_text(r.wc_acc)} (De Lange et al. 2023)."))
    if config:
        sections.append(Section("Configuration", preformatted=json.dumps(config, indent=2,
                                                                         default=str)))
    return write_html(out / "index.html", title, [*sections, *extra])


def _update_measures(r: RunResult) -> list[str]:
    return [_text(v) for v in (r.negative_flip_rate, r.positive_flip_rate,
                               r.negative_flip_impact, r.min_acc, r.wc_acc)]


def _text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _flips_section(results: dict[str, RunResult]) -> Section:
    """Each experience's update against the model before it, on the test sets seen so far
    (experience 0 against the untrained model)."""
    rows = [(name, i, *(_text(f.get(k)) for k in ("negative_flip_rate", "positive_flip_rate",
                                                   "negative_flip_impact")), f.get("rows"))
            for name, r in results.items() for i, f in enumerate(r.flips)]
    return Section("Update regressions per experience",
                   header=("strategy", "experience", "negative flip rate", "positive flip rate",
                           "negative flip impact", "test rows"), rows=rows,
                   text="Flips of each update against the model before it, on the test sets "
                        "seen so far; experience 0 is compared with the untrained model.")
