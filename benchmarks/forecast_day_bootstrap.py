"""How sure is a forecast run's "A beats B"? Its gain with a 95% interval, per set of days.

    python benchmarks/forecast_day_bootstrap.py results/forecast [--a hybrid] [--b mstl]
        [--every 8]

Reads what ``retain forecast --out DIR`` wrote (``forecasts.csv``, ``results.json``), takes
each day's MAE of approaches A (default: the run's best daily-updated approach) and B
(default ``mstl``), and prints A's gain over B (``1 - MAE_A / MAE_B``: positive, A better)
with its 95% paired bootstrap interval
(:func:`retain.forecasting.backtest.significance.gain_interval`, whole days resampled), over all
days, over the fresh-retrain days the report uses (days 0, k, 2k, ...), and over each of the
other k-1 offsets (days 1, k+1, ...), samples of the same size and just as valid. A gain whose
interval spans zero is not resolved by the run; an offset that disagrees with the others says
how much of the fresh-day figure is the choice of days. Reads results only: nothing is refit and
nothing is tuned.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from retain.forecasting.approaches import Settings
from retain.forecasting.backtest.significance import gain_interval


def run_daily_mae(out: Path, names: list[str]) -> pd.DataFrame:
    """Each forecast day's MAE of each approach in ``names``, one row per day."""
    frame = pd.read_csv(out / "forecasts.csv", parse_dates=["time"])
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise SystemExit(f"{out / 'forecasts.csv'} has no column(s) {missing}; it has "
                         f"{[c for c in frame.columns if ' lo' not in c and ' hi' not in c]}")
    errors = frame[names].sub(frame["actual"], axis=0).abs()
    return errors.groupby(frame["time"].dt.strftime("%Y-%m-%d")).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a `retain forecast --out` directory")
    parser.add_argument("--a", help="default: the run's best daily-updated approach")
    parser.add_argument("--b", default="mstl")
    parser.add_argument("--every", type=int, help="default: the run's --retrain-every")
    args = parser.parse_args()
    for name in ("results.json", "forecasts.csv"):
        if not (args.out / name).is_file():
            raise SystemExit(f"{args.out} has no {name}: give the --out directory of a "
                             f"finished `retain forecast` run")
    results = json.loads((args.out / "results.json").read_text())
    a = args.a or (results["summary"].get("acceptance") or {}).get("best_incremental")
    if a is None:
        raise SystemExit("the run has no daily-updated approach: name one with --a")
    every = args.every or results["config"]["hyper"].get("retrain_every",
                                                         Settings.retrain_every)
    days = run_daily_mae(args.out, [a, args.b])
    print(f"{a}'s gain over {args.b} (1 - MAE ratio; positive: {a} better), 95% paired "
          f"bootstrap interval over days")
    position = np.arange(len(days))
    rows = [("all days", np.ones(len(days), bool))]
    rows += [(f"days {k}, {k + every}, {k + 2 * every}, ..."
              + (" (the fresh-retrain days)" if k == 0 else ""), position % every == k)
             for k in range(every)]
    for label, mask in rows:
        x, y = days[a].to_numpy()[mask], days[args.b].to_numpy()[mask]
        low, high = gain_interval(x, y)
        print(f"  {label:<44} {mask.sum():>4} days  {1 - x.mean() / y.mean():+7.1%}  "
              f"[{low:+.1%}, {high:+.1%}]  {a} better on {np.mean(x < y):.0%} of days")


if __name__ == "__main__":
    main()
