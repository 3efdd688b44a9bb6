"""From run records to a table of mean ± standard deviation over seeds, CSV/JSON files and an
HTML report with bar charts (error bars) and accuracy curves."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from retain.bench.grid import RUN_DEFAULTS, label  # noqa: E402
from retain.bench.log import log_summary  # noqa: E402
from retain.bench.runner import latest, read_records  # noqa: E402
from retain.metrics import RunResult  # noqa: E402
from retain.report import Section, plot_curves, write_html  # noqa: E402

#: the columns of the summary: (record key, heading, scale)
METRICS = (("average_accuracy", "final avg acc (%)", 100.0),
           ("forgetting", "forgetting (%)", 100.0),
           ("bwt", "BWT (%)", 100.0), ("fwt", "FWT (%)", 100.0),
           ("negative_flip_rate", "NFR (%)", 100.0), ("positive_flip_rate", "PFR (%)", 100.0),
           ("wall_s", "wall time (s)", 1.0))


def group_name(run: dict[str, Any]) -> str:
    """What a row of the summary stands for: the run minus its seed."""
    settings = ", ".join(f"{k}={run[k]}" for k in RUN_DEFAULTS if k != "scenario")
    return f"{run['scenario']} | {label(run)} | {settings}"


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of successful runs that differ only by seed: mean and sample
    standard deviation (ddof=1; 0 for a single seed) of every metric."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["status"] == "ok":
            groups.setdefault(group_name(r["run"]), []).append(r)
    rows = []
    for name, members in groups.items():
        run = members[0]["run"]
        row: dict[str, Any] = {"group": name, "scenario": run["scenario"],
                               "strategy": label(run), "seeds": len(members)}
        for key, _, scale in METRICS:
            measured = [v for v in (_metric(m, key) for m in members) if v is not None]
            values = np.array(measured) * scale
            row[key] = float(values.mean()) if measured else None
            row[f"{key}_std"] = (float(values.std(ddof=1)) if len(values) > 1
                                 else 0.0 if measured else None)
        rows.append(row)
    for row, members in zip(rows, groups.values(), strict=True):
        row["name"] = _name(members[0]["run"], [m[0]["run"] for m in groups.values()
                                                if m[0]["run"]["scenario"] == row["scenario"]])
    return rows


def _name(run: dict[str, Any], neighbours: list[dict[str, Any]]) -> str:
    """The strategy label plus the run settings that differ within its scenario."""
    varying = [k for k in RUN_DEFAULTS if len({json.dumps(n[k]) for n in neighbours}) > 1]
    return " ".join([label(run), *(f"{k}={run[k]}" for k in varying)])


def _metric(record: dict[str, Any], key: str) -> float | None:
    """A record's measure; ``None`` when it has none (flip rates of a joint run, or a
    record written before they were measured)."""
    value = record["wall_s"] if key == "wall_s" else record["result"].get(key)
    return None if value is None else float(value)


def mean_result(records: Sequence[dict[str, Any]]) -> RunResult:
    """The seed-averaged accuracy matrix of a group (for curves)."""
    results = [RunResult.from_dict(r["result"]) for r in records]
    return RunResult(np.mean([r.accuracy_matrix for r in results], axis=0),
                     np.mean([r.baseline for r in results], axis=0), metric=results[0].metric)


def format_cell(row: dict[str, Any], key: str) -> str:
    if row[key] is None:
        return "-"
    return f"{row[key]:.2f} ± {row[key + '_std']:.2f}"


def write_outputs(out: Path, title: str = "retain bench",
                  loggers: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Write runs.csv, runs.json, summary.csv, summary.json and index.html into ``out``
    (and the summary table and plots to ``loggers``)."""
    out = Path(out)
    records = list(latest(read_records(out)).values())
    rows = summarise(records)
    _write_runs(out, records)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows(rows)
    _write_report(out, title, records, rows)
    log_summary(loggers, ["scenario", "strategy", "seeds", *[h for _, h, _ in METRICS]],
                [[r["scenario"], r["name"], r["seeds"], *[format_cell(r, k) for k, _, _ in
                                                         METRICS]] for r in rows], out)
    return rows


def _write_runs(out: Path, records: list[dict[str, Any]]) -> None:
    (out / "runs.json").write_text(json.dumps(records, indent=2))
    fields = ["id", "status", "group", "seed", *[k for k, _, _ in METRICS], "error"]
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in records:
            row = {"id": r["id"], "status": r["status"], "group": group_name(r["run"]),
                   "seed": r["run"]["seed"], "error": r.get("error", "")}
            if r["status"] == "ok":
                row.update({k: _metric(r, k) for k, _, _ in METRICS})
            writer.writerow(row)


def _write_report(out: Path, title: str, records: list[dict[str, Any]],
                  rows: list[dict[str, Any]]) -> None:
    sections = [Section("Summary (mean ± std over seeds)",
                        header=["scenario", "strategy", "seeds", *[h for _, h, _ in METRICS]],
                        rows=[[r["scenario"], r["name"], r["seeds"],
                               *[format_cell(r, k) for k, _, _ in METRICS]] for r in rows])]
    for scenario in sorted({r["scenario"] for r in rows}):
        mine = [r for r in rows if r["scenario"] == scenario]
        slug = "".join(c if c.isalnum() else "-" for c in scenario)
        bars = plot_bars(mine, out / f"bars-{slug}.png", f"{scenario}: final average accuracy")
        groups = {r["name"]: [x for x in records if x["status"] == "ok"
                                  and group_name(x["run"]) == r["group"]] for r in mine}
        curves = plot_curves({k: mean_result(v) for k, v in groups.items()},
                             out / f"curves-{slug}.png")
        sections.append(Section(scenario, images=[bars.name, curves.name]))
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        sections.append(Section("Failed runs", header=["id", "strategy", "seed", "error"],
                                rows=[[r["id"], label(r["run"]), r["run"]["seed"], r["error"]]
                                      for r in failed]))
    write_html(out / "index.html", title, sections)


def plot_bars(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Final average accuracy per strategy, with the standard deviation over seeds."""
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(rows), 4))
    x = np.arange(len(rows))
    ax.bar(x, [r["average_accuracy"] for r in rows],
           yerr=[r["average_accuracy_std"] for r in rows], capsize=4, color="#4c72b0")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("final average accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
