"""Every forecasting approach on every development series, under the daily protocol.

    python benchmarks/forecast_series.py [--series elecdemand,calls,...] [--days N]
        [--retrain-every K] [--approaches a,b,...] [--out results/forecast_series]

Runs ``retain forecast``'s default comparison (seasonal-naive, mstl, gbm, replay, hybrid,
hybrid-retrain) with every default on each series, one at a time with one torch thread,
and prints per series the ranked MAE, the fresh-retrain-day MAE, the interval coverage and
the update seconds per day, then the acceptance checks of the best daily-updated approach:
MAE below mstl and seasonal-naive (all days and fresh-retrain days), update cost below
mstl's refits and 20x below daily retraining, MAE within 3% of daily retraining, coverage
within 5 points of 80/95. Writes each series' summary to ``--out/NAME.json``.

``--retrain-every 1`` retrains the reference every day instead of extrapolating it from a
retrain every 8 days: the comparison with daily retraining is then measured over every day,
and the fresh-retrain-day comparisons are made on the days the default run would retrain
on (days 0, 8, 16, ...), which are the same days.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from retain.forecasting import Experiment, run_experiment
from retain.forecasting.approaches import Settings
from retain.forecasting.backtest.metrics import daily_mae
from retain.forecasting.backtest.report import acceptance, acceptance_text, summarize
from retain.forecasting.bundled import DATASETS, load
from retain.forecasting.experiment import DEFAULT_APPROACHES

SERIES = ("elecdemand", "calls", "weather-jfk", "synthetic-level", "synthetic-trend",
          "synthetic-profile")


def every_kth_day(run, summary: dict, k: int) -> None:
    """Each approach's MAE on days 0, k, 2k, ... (a default run's fresh-retrain days), and
    the best daily-updated approach's gains there, into ``summary``."""
    days = np.arange(0, len(run.origins), k)
    daily = {name: daily_mae(run.actual, r.forecasts) for name, r in run.runs.items()}
    for name, errors in daily.items():  # every day has H steps: the mean of its days' MAE
        summary["approaches"][name]["mae_on_fresh_retrain_days"] = float(errors[days].mean())
    summary["acceptance"] = acceptance(summary["approaches"], daily, days)
    summary["fresh_retrain_days"] = [str(run.origins[d].date()) for d in days]


def checks(summary: dict) -> dict[str, bool]:
    acc, approaches = summary["acceptance"], summary["approaches"]
    best = approaches[acc["best_incremental"]]
    out = {}
    for name in ("mstl", "seasonal-naive"):
        out[f"beats {name}"] = acc[f"mae_gain_over_{name}"] > 0
        if f"fresh_days_mae_gain_over_{name}" in acc:
            out[f"beats {name} (fresh days)"] = acc[f"fresh_days_mae_gain_over_{name}"] > 0
    out["cheaper than mstl"] = acc.get("mstl_refit_over_this_seconds", 0) > 1
    out["20x cheaper than daily retrain"] = (acc.get("compute_ratio_seconds") or 0) >= 20
    if summary.get("retrain_every") == 1 and "mae_vs_retrain" in acc:
        out["within 3% of daily retrain (every day)"] = acc["mae_vs_retrain"] <= 0.03
    elif "mae_vs_daily_retrain_on_fresh_days" in acc:
        out["within 3% of daily retrain"] = acc["mae_vs_daily_retrain_on_fresh_days"] <= 0.03
    for level in ("80", "95"):
        out[f"coverage {level} within 5"] = abs(
            best["intervals"][level]["coverage"] * 100 - int(level)) <= 5
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default=",".join(SERIES),
                        help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--days", type=int, default=None, help="forecast at most N days")
    parser.add_argument("--retrain-every", type=int, default=Settings.retrain_every,
                        help="days between the retraining reference's retrains (1: daily)")
    parser.add_argument("--approaches", default=",".join(DEFAULT_APPROACHES))
    parser.add_argument("--out", type=Path, default=Path("results/forecast_series"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.series.split(","):
        start = time.perf_counter()
        experiment = Experiment(days=args.days, approaches=tuple(args.approaches.split(",")),
                                hyper={"retrain_every": args.retrain_every})
        run, _ = run_experiment(load(name), experiment, workers=2)
        summary = summarize(run)
        summary["retrain_every"] = args.retrain_every
        if args.retrain_every == 1:
            every_kth_day(run, summary, Settings.retrain_every)
        summary["wall_seconds"] = time.perf_counter() - start
        (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str))
        print(f"\n## {name}: {summary['days']} days from {summary['first_day'][:10]}, "
              f"{summary['wall_seconds']:.0f} s")
        print(f"{'approach':16s} {'MAE':>8s} {'fresh':>8s} {'cov80':>6s} {'cov95':>6s} "
              f"{'s/day':>7s}")
        for approach, a in summary["approaches"].items():
            cov = [a["intervals"][lv]["coverage"] for lv in ("80", "95")]
            print(f"{approach:16s} {a['mae']:8.4f} {a.get('mae_on_fresh_retrain_days', 0):8.4f} "
                  f"{cov[0]:6.1%} {cov[1]:6.1%} {a['update_seconds_per_day']:7.3f}")
        acc = summary["acceptance"]
        print(f"best daily-updated: {acc['best_incremental']}; gain over mstl "
              f"{acc.get('mae_gain_over_mstl', float('nan')):+.1%}, over seasonal-naive "
              f"{acc.get('mae_gain_over_seasonal-naive', float('nan')):+.1%}; vs retrain "
              f"every {args.retrain_every} days {acc.get('mae_vs_retrain', float('nan')):+.1%} "
              f"(fresh days {acc.get('mae_vs_daily_retrain_on_fresh_days', float('nan')):+.1%}); "
              f"mstl/this cost {acc.get('mstl_refit_over_this_seconds', float('nan')):.1f}x; "
              f"daily retrain/this {acc.get('compute_ratio_seconds') or float('nan'):.0f}x")
        print(acceptance_text(acc))
        for check, ok in checks(summary).items():
            print(f"  [{'x' if ok else ' '}] {check}")


if __name__ == "__main__":
    main()
