"""Where a finished forecast run's gap comes from: chosen days, one by one.

    python benchmarks/forecast_days.py results/forecast --day 2014-11-09 [--day ...]
        [--a hybrid] [--b mstl] [--every 8]

Reads what ``retain forecast --out DIR`` wrote (``forecasts.csv``, ``results.json``) and the
run's bundled series, and prints, for each ``--day``: every approach's MAE on it and each
covariate's maximum and mean over it; then A's and B's MAE over the fresh-retrain days
(days 0, k, 2k, ...) with and without the chosen days, and over the weekday holidays (weekdays
whose ``WorkDay`` is 0, where the series has that column). A diagnosis of a run's figures:
nothing is refit and nothing is chosen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from forecast_day_bootstrap import run_daily_mae

from retain.forecasting.approaches import Settings
from retain.forecasting.bundled import load


def approaches(out: Path) -> list[str]:
    """The approaches with a forecast column in ``forecasts.csv``, in its order."""
    columns = pd.read_csv(out / "forecasts.csv", nrows=0).columns
    return [c for c in columns[2:] if " lo" not in c and " hi" not in c]


def weekday_holidays(frame: pd.DataFrame, days: pd.Index) -> list[str]:
    """The weekdays among ``days`` (``YYYY-MM-DD``) whose ``WorkDay`` flag is 0."""
    if "WorkDay" not in frame.columns:
        return []
    flag = frame["WorkDay"].groupby(frame.index.strftime("%Y-%m-%d")).first()
    return [d for d in days if pd.Timestamp(d).dayofweek < 5 and flag.get(d) == 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a `retain forecast --out` directory")
    parser.add_argument("--day", action="append", default=[], help="YYYY-MM-DD, repeatable")
    parser.add_argument("--a", default="hybrid")
    parser.add_argument("--b", default="mstl")
    parser.add_argument("--every", type=int, help="default: the run's --retrain-every")
    args = parser.parse_args()
    results = json.loads((args.out / "results.json").read_text())
    config = results["config"]
    every = args.every or config["hyper"].get("retrain_every", Settings.retrain_every)
    daily = run_daily_mae(args.out, approaches(args.out))
    frame = load(config["series"]).frame
    covariates = [c for c in frame.columns if c != config["target"]]
    for day in args.day:
        if day not in daily.index:
            raise SystemExit(f"{day} is not a forecast day of {args.out}: it forecast "
                             f"{daily.index[0]} to {daily.index[-1]}")
        maes = ", ".join(f"{n} {v:.3f}" for n, v in daily.loc[day].items())
        values = frame.loc[day]
        weather = ", ".join(f"{c} max {values[c].max():.1f} mean {values[c].mean():.1f}"
                            for c in covariates)
        print(f"{day} ({pd.Timestamp(day).day_name()}): MAE {maes}; {weather}")
    fresh = daily.index[::every]
    rest = [d for d in fresh if d not in args.day]
    for label, days in ((f"fresh-retrain days (every {every})", list(fresh)),
                        ("... without the days above", rest),
                        ("weekday holidays", weekday_holidays(frame, daily.index))):
        if days:
            a, b = daily.loc[days, args.a].mean(), daily.loc[days, args.b].mean()
            print(f"{label:34s} {len(days):3d} days: {args.a} {a:.4f}, {args.b} {b:.4f}, "
                  f"gain {1 - a / b:+.1%}")


if __name__ == "__main__":
    main()
