"""How sure is a forecast run's "A beats B"? A paired bootstrap over its forecast days.

    python benchmarks/forecast_day_bootstrap.py results/forecast [--a hybrid] [--b mstl]
        [--every 8] [--resamples 10000]

Reads what ``retain forecast --out DIR`` wrote (``forecasts.csv``, ``results.json``), takes
each day's MAE of approaches A (default: the run's best daily-updated approach) and B
(default ``mstl``), and prints A's MAE over B's, minus one, with a 95% interval from
``scipy.stats.bootstrap`` resampling whole days (paired: a resampled day carries both
approaches' errors), over all days, over the fresh-retrain days the report uses (days 0,
k, 2k, ...), and over each of the other k-1 offsets (days 1, k+1, ...), which are samples
of the same size and just as valid. A gain whose interval spans zero is not resolved by the
run; an offset that disagrees with the others says how much of the fresh-day figure is the
choice of days. Reads results only: nothing is refit and nothing is tuned.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from retain.forecasting.approaches import Settings


def daily_mae(out: Path, names: list[str]) -> pd.DataFrame:
    """Each forecast day's MAE of each approach in ``names``, one row per day."""
    frame = pd.read_csv(out / "forecasts.csv", parse_dates=["time"])
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise SystemExit(f"{out / 'forecasts.csv'} has no column(s) {missing}; it has "
                         f"{[c for c in frame.columns if ' lo' not in c and ' hi' not in c]}")
    errors = frame[names].sub(frame["actual"], axis=0).abs()
    return errors.groupby(frame["time"].dt.strftime("%Y-%m-%d")).mean()


def relative_gap(a: np.ndarray, b: np.ndarray, resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """mean(a) / mean(b) - 1 and its 95% paired bootstrap interval (days resampled)."""
    def ratio(x, y, axis=-1):
        return x.mean(axis=axis) / y.mean(axis=axis) - 1

    ci = bootstrap((a, b), ratio, paired=True, vectorized=True, n_resamples=resamples,
                   method="percentile", random_state=np.random.default_rng(seed))
    return float(ratio(a, b)), float(ci.confidence_interval.low), \
        float(ci.confidence_interval.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a `retain forecast --out` directory")
    parser.add_argument("--a", help="default: the run's best daily-updated approach")
    parser.add_argument("--b", default="mstl")
    parser.add_argument("--every", type=int, help="default: the run's --retrain-every")
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    results = json.loads((args.out / "results.json").read_text())
    summary = results["summary"]
    a = args.a or (summary.get("acceptance") or {}).get("best_incremental")
    if a is None:
        raise SystemExit("the run has no daily-updated approach: name one with --a")
    every = args.every or results["config"]["hyper"].get("retrain_every",
                                                         Settings.retrain_every)
    days = daily_mae(args.out, [a, args.b])
    print(f"{a} against {args.b}: MAE ratio - 1 (negative: {a} better), 95% paired "
          f"bootstrap interval over days, {args.resamples} resamples")
    rows = [("all days", np.ones(len(days), bool))]
    position = np.arange(len(days))
    rows += [(f"days {k}, {k + every}, {k + 2 * every}, ..."
              + (" (the fresh-retrain days)" if k == 0 else ""), position % every == k)
             for k in range(every)]
    for label, mask in rows:
        x, y = days[a].to_numpy()[mask], days[args.b].to_numpy()[mask]
        gap, low, high = relative_gap(x, y, args.resamples)
        print(f"  {label:<44} {mask.sum():>4} days  {gap:+7.1%}  [{low:+.1%}, {high:+.1%}]"
              f"  {a} better on {np.mean(x < y):.0%} of days")


if __name__ == "__main__":
    main()
