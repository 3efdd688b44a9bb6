"""What a daily run measured, as numbers (``results.json``), a CSV of every forecast, plots
and an ``index.html`` page."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from retain.forecasting.backtest.metrics import daily_mae, errors, errors_by_month  # noqa: E402
from retain.forecasting.backtest.protocol import DailyRun  # noqa: E402
from retain.forecasting.backtest.significance import gain_interval  # noqa: E402
from retain.forecasting.intervals import summarize_intervals  # noqa: E402
from retain.report.html import Section, write_html  # noqa: E402


def _retrain_of(run: DailyRun, family: str):
    """The retrain approach of ``family`` (daily retraining of that model), if any."""
    return next((r for r in run.runs.values() if r.kind == "retrain" and r.family == family),
                None)


def reference_cost(run: DailyRun, family: str = "cnn") -> tuple[float, int] | None:
    """Update seconds and samples of retraining ``family``'s model from scratch every day
    (extrapolated when the run retrained less often), or ``None`` without such a run."""
    retrain = _retrain_of(run, family)
    if retrain is None:
        return None
    seconds, samples = retrain.daily_retrain or (retrain.seconds, retrain.samples)
    return float(np.sum(seconds)), int(np.sum(samples))


def summarize(run: DailyRun) -> dict[str, Any]:
    """Errors overall and per month, interval coverage, update compute and its ratio to
    daily retraining, every approach ranked by MAE."""
    times = run.target_times()
    approaches = {}
    for name, r in run.runs.items():
        reference = reference_cost(run, r.family)
        seconds, samples = float(r.seconds.sum()), int(r.samples.sum())
        entry: dict[str, Any] = {
            "kind": r.kind,
            "family": r.family,
            **errors(run.actual, r.forecasts),
            "by_month": errors_by_month(run.actual, r.forecasts, times),
            "intervals": summarize_intervals(run.actual, run.intervals(name)),
            "update_seconds": seconds,
            "update_seconds_per_day": seconds / max(1, len(run.origins) - 1),
            "update_samples": samples,
            "retrain_over_this_seconds": _ratio(reference, 0, seconds),
            "retrain_over_this_samples": _ratio(reference, 1, samples),
            "drift_alarms": [{"day": str(run.origins[d].date()), "detector": name}
                             for d, name in r.alarms],
        }
        if r.daily_retrain is not None:
            entry["daily_retrain_extrapolated"] = {
                "seconds": float(r.daily_retrain[0].sum()),
                "samples": int(r.daily_retrain[1].sum())}
        for key in ("note", "chosen", "validation"):
            if getattr(r, key):
                entry[key] = getattr(r, key)
        approaches[name] = entry
    fresh = fresh_retrain_days(run)
    if fresh is not None:
        for name, r in run.runs.items():
            approaches[name]["mae_on_fresh_retrain_days"] = errors(
                run.actual[fresh], r.forecasts[fresh])["mae"]
    ranked = sorted(approaches, key=lambda n: approaches[n]["mae"])
    for rank, name in enumerate(ranked, 1):
        approaches[name]["rank"] = rank
    daily = {name: daily_mae(run.actual, r.forecasts) for name, r in run.runs.items()}
    acc = acceptance(approaches, daily, fresh)
    best = approaches[acc["best_incremental"]] if acc else None
    reference = reference_cost(run, best["family"] if best else "cnn")
    return {
        "first_day": str(run.origins[0]), "last_day": str(run.origins[-1]),
        "fresh_retrain_days": None if fresh is None else [str(run.origins[d].date())
                                                          for d in fresh],
        "days": len(run.origins),
        "pretrain": {"seconds": run.pretrain_seconds, "samples": run.pretrain_samples},
        # daily retraining of the best daily-updated approach's model
        "daily_retrain_reference": None if reference is None else
        {"seconds": reference[0], "samples": reference[1]},
        "approaches": {n: approaches[n] for n in ranked},
        "winner": ranked[0],
        "acceptance": acc,
    }


def fresh_retrain_days(run: DailyRun) -> np.ndarray | None:
    """Days forecast by a model retrained just before them, when retraining every k > 1
    days. On these days the CNN retrain's forecasts are exactly those of retraining every
    day (same data, recipe and seed), so comparing all approaches on them measures daily
    retraining's accuracy without paying for it; the hybrid's are close, not exact (its
    correction weight is chosen on the forecasts of earlier days, made by older networks)."""
    retrain = next((r for r in run.runs.values() if r.daily_retrain is not None), None)
    if retrain is None:
        return None
    return np.concatenate(([0], np.flatnonzero(retrain.samples[:-1] > 0) + 1))


def _ratio(reference: tuple[float, int] | None, i: int, cost: float) -> float | None:
    return reference[i] / cost if reference is not None and cost > 0 else None


def acceptance(approaches: dict[str, dict[str, Any]],
               daily: dict[str, np.ndarray] | None = None,
               fresh: np.ndarray | None = None) -> dict[str, Any] | None:
    """The best daily-updated approach against the statistical contenders, the baselines
    and daily retraining of its own model.

    With each approach's ``daily`` MAE (and the ``fresh`` days' indices), every gain also
    gets its 95% interval (``..._ci95``:
    :func:`~retain.forecasting.backtest.significance.gain_interval`, days resampled):
    whether the run resolves it, or a different year could reverse it."""
    incremental = {n: a for n, a in approaches.items() if a["kind"] == "incremental"}
    if not incremental:
        return None
    best = min(incremental, key=lambda n: incremental[n]["mae"])
    mine = incremental[best]
    out: dict[str, Any] = {"best_incremental": best, "mae": mine["mae"]}
    fresh_key = "mae_on_fresh_retrain_days"
    for name in ("mstl", "gbm", "seasonal-naive", "frozen"):
        if name in approaches:
            out[f"mae_gain_over_{name}"] = 1 - mine["mae"] / approaches[name]["mae"]
            if daily is not None:
                out[f"mae_gain_over_{name}_ci95"] = list(gain_interval(daily[best],
                                                                       daily[name]))
            if fresh_key in mine:
                out[f"fresh_days_mae_gain_over_{name}"] = (
                    1 - mine[fresh_key] / approaches[name][fresh_key])
                if daily is not None and fresh is not None:
                    out[f"fresh_days_mae_gain_over_{name}_ci95"] = list(gain_interval(
                        daily[best][fresh], daily[name][fresh]))
    if "mstl" in approaches and mine["update_seconds"] > 0:
        out["mstl_refit_over_this_seconds"] = (approaches["mstl"]["update_seconds"]
                                               / mine["update_seconds"])
    retrain = next((a for a in approaches.values() if a["kind"] == "retrain"
                    and a["family"] == mine["family"]), None)
    if retrain is not None:
        out["mae_vs_retrain"] = mine["mae"] / retrain["mae"] - 1
        if fresh_key in retrain:
            out["mae_vs_daily_retrain_on_fresh_days"] = (mine[fresh_key] / retrain[fresh_key]
                                                         - 1)
        out["compute_ratio_seconds"] = mine["retrain_over_this_seconds"]
        out["compute_ratio_samples"] = mine["retrain_over_this_samples"]
    return out


# -- plots -----------------------------------------------------------------------------------
def plot_days(run: DailyRun, days: Sequence[int], names: Sequence[str], path: Path) -> Path:
    """Forecast against actual for a few chosen days."""
    cols = min(2, len(days))
    rows = -(-len(days) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, day in zip(axes.flat, days, strict=False):
        hours = np.arange(run.actual.shape[1]) * run.step / pd.Timedelta("1h")
        ax.plot(hours, run.actual[day], color="k", lw=2, label="actual")
        for name in names:
            ax.plot(hours, run.runs[name].forecasts[day], lw=1.2, label=name)
        ax.set_title(f"forecast issued {run.origins[day]:%a %Y-%m-%d %H:%M}")
        ax.set_xlabel("hours after the origin")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(days):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return _save(fig, path)


def plot_daily_mae(run: DailyRun, path: Path, smooth: int = 7) -> Path:
    """Daily MAE per approach over the stream (rolling mean over ``smooth`` days)."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    for name, r in run.runs.items():
        mae = pd.Series(daily_mae(run.actual, r.forecasts), index=run.origins)
        ax.plot(mae.rolling(smooth, min_periods=1).mean(), lw=1.3, label=name,
                ls="--" if r.kind == "baseline" else "-")
    ax.set_ylabel(f"daily MAE, {smooth}-day rolling mean")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    return _save(fig, path)


def plot_compute(run: DailyRun, path: Path) -> Path:
    """Cumulative update wall seconds per approach, log scale."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, r in run.runs.items():
        if r.seconds.sum() > 0:
            ax.step(run.origins, _positive(np.cumsum(r.seconds)), where="post", lw=1.5,
                    label=name)
        if r.daily_retrain is not None:
            ax.step(run.origins, _positive(np.cumsum(r.daily_retrain[0])), where="post",
                    ls="--", color="k", label=f"{name} daily (extrapolated)")
    ax.set_yscale("log")
    ax.set_ylabel("cumulative update seconds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros as gaps: a log axis has no place for them."""
    return np.where(values > 0, values, np.nan)


def _save(fig, path: Path) -> Path:
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- files -----------------------------------------------------------------------------------
def default_days(run: DailyRun, count: int = 4) -> list[int]:
    """Days spread over the stream, so the plot shows more than one season."""
    n = len(run.origins)
    return sorted({int(q * (n - 1)) for q in np.linspace(0.05, 0.95, min(count, n))})


def write_report(out: Path, run: DailyRun, summary: dict[str, Any], config: dict[str, Any],
                 days: Sequence[int] | None = None) -> Path:
    """Write results.json, forecasts.csv, the PNGs and index.html into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": config, "summary": summary,
               "daily_mae": {n: daily_mae(run.actual, r.forecasts).tolist()
                             for n, r in run.runs.items()},
               "days": [str(t) for t in run.origins]}
    _atomic_text(out / "results.json", json.dumps(payload, indent=2, default=str))
    columns = {"actual": run.actual.ravel()}
    for name, r in run.runs.items():
        columns[name] = r.forecasts.ravel()
        for level, (lower, upper) in run.intervals(name).items():
            columns[f"{name} lo{level}"], columns[f"{name} hi{level}"] = (lower.ravel(),
                                                                          upper.ravel())
    frame = pd.DataFrame(columns, index=pd.Index(run.target_times(), name="time"))
    _atomic_text(out / "forecasts.csv", frame.to_csv(float_format="%.5g"))
    chosen = list(days) if days is not None else default_days(run)
    shown = _shown(run, summary)
    plot_days(run, chosen, shown, out / "forecast_days.png")
    plot_daily_mae(run, out / "daily_mae.png")
    plot_compute(run, out / "compute.png")
    return write_html(out / "index.html", "retain forecast", _sections(run, summary, config))


def _shown(run: DailyRun, summary: dict[str, Any]) -> list[str]:
    """The approaches worth a line in the per-day plot: baselines, statistical contenders
    and the best incremental one."""
    best = (summary["acceptance"] or {}).get("best_incremental")
    return [n for n, r in run.runs.items()
            if r.kind in ("baseline", "statistical") or n == best][:6]


def _sections(run: DailyRun, summary: dict[str, Any], config: dict[str, Any]) -> list[Section]:
    header, table = summary_table(summary)
    months = sorted(next(iter(summary["approaches"].values()))["by_month"])
    by_month = [[n, *(a["by_month"][m]["mae"] for m in months)]
                for n, a in summary["approaches"].items()]
    notes = [f"{n}: {a['note']}" for n, a in summary["approaches"].items() if "note" in a]
    return [
        Section("Summary", text=f"{summary['days']} forecast days from {summary['first_day']} "
                f"to {summary['last_day']}; every forecast is issued before its day is "
                f"learned. {TABLE_NOTE} " + " ".join(notes), header=header, rows=table),
        Section("Best incremental approach", text=acceptance_text(summary["acceptance"])),
        Section("Settings chosen on the pre-training period", preformatted=json.dumps(
            {n: {"chosen": a.get("chosen"), "validation": a.get("validation")}
             for n, a in summary["approaches"].items() if "chosen" in a}, indent=2)),
        Section("MAE per month", header=["approach", *months], rows=by_month),
        Section("Forecast against actual on chosen days", images=["forecast_days.png"]),
        Section("Daily MAE over the stream", images=["daily_mae.png"]),
        Section("Cumulative update compute", images=["compute.png"]),
        Section("Configuration", preformatted=json.dumps(config, indent=2, default=str)),
    ]


TABLE_NOTE = ("Ranked by MAE. MAE fresh: MAE on the days forecast by a just-retrained "
              "model, i.e. what retraining every day would score there. cover 80/95: share "
              "of actual values inside the conformal intervals. update s/day: wall seconds "
              "of the updates (refits for statistical models) per day. retrain/this: daily "
              "retraining's update seconds over this approach's (same model family). "
              "alarms: drift alarms on the approach's daily error.")


def summary_table(summary: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the summary table (HTML and terminal), best MAE first."""
    fresh = summary.get("fresh_retrain_days")
    header = ["#", "approach", "kind", "MAE", "RMSE", "MAPE%", "cover 80", "cover 95",
              "update s/day", "samples", "retrain/this", "alarms"]
    if fresh:
        header.insert(6, "MAE fresh")
    rows = []
    for name, a in summary["approaches"].items():
        ratio = a["retrain_over_this_seconds"]
        cover = [a["intervals"][level]["coverage"] for level in ("80", "95")]
        row = [a["rank"], name, a["kind"], a["mae"], a["rmse"], round(a["mape"], 2),
               *(f"{c:.0%}" if c == c else "-" for c in cover),
               round(a["update_seconds_per_day"], 3), a["update_samples"],
               "-" if ratio is None else f"{ratio:.0f}x", len(a["drift_alarms"])]
        if fresh:
            row.insert(6, a["mae_on_fresh_retrain_days"])
        rows.append(row)
    return header, rows


def acceptance_text(acc: dict[str, Any] | None) -> str:
    if not acc:
        return "no incremental approach in this run"
    parts = [f"best daily-updated approach {acc['best_incremental']}: MAE {acc['mae']:.4f}"]
    for name in ("mstl", "seasonal-naive", "gbm", "frozen"):
        key = f"mae_gain_over_{name}"
        if key in acc:
            text = f"{acc[key]:+.1%}{_interval(acc, key)} lower MAE than {name}"
            if f"fresh_days_{key}" in acc:
                text += (f" ({acc[f'fresh_days_{key}']:+.1%}"
                         f"{_interval(acc, f'fresh_days_{key}')} on the fresh-retrain days)")
            parts.append(text)
    if "mstl_refit_over_this_seconds" in acc:
        parts.append(f"{acc['mstl_refit_over_this_seconds']:.1f}x less update time than "
                     f"mstl's daily refits")
    if "mae_vs_retrain" in acc:
        parts.append(f"{acc['mae_vs_retrain']:+.1%} MAE against retraining its model")
    if "mae_vs_daily_retrain_on_fresh_days" in acc:
        parts.append(f"{acc['mae_vs_daily_retrain_on_fresh_days']:+.1%} on the days a fresh "
                     f"retrain forecast (≈ daily retraining)")
    if acc.get("compute_ratio_seconds"):
        parts.append(f"{acc['compute_ratio_seconds']:.0f}x less update time than daily "
                     f"retraining ({acc['compute_ratio_samples']:.0f}x fewer samples)")
    return "; ".join(parts)


def _interval(acc: dict[str, Any], key: str) -> str:
    """`` [95%: +3.2% to +11.5%]`` when the run's acceptance has the gain's interval."""
    low, high = acc.get(f"{key}_ci95") or (float("nan"),) * 2
    return "" if low != low else f" [95%: {low:+.1%} to {high:+.1%}]"


def _atomic_text(path: Path, text: str) -> None:
    """Write next to the target, then rename: an interrupted run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
