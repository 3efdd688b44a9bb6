"""The daily forecaster in production, on elecdemand (half-hourly Victorian demand, 2014,
bundled): what one day costs and what the store keeps.

A forecast store is created on the first ``--history`` days (the default hybrid, every
choice made on those days), then fed one measured day at a time for ``--days`` days:

- *compute*: seconds of ``ForecastStore.update`` (score, learn, gate, save) and of
  ``ForecastStore.predict`` (load, catch up, forecast) inside one process;
- *wall*: the same two as the commands a cron job runs (``retain update`` / ``retain
  predict``, new processes: Python and torch start-up included), on the last days;
- *size*: one version on disk, and a year of daily versions, extrapolated from the
  measured sizes (each version holds the learner, its replay memory and the history so far,
  so sizes grow with the history: fitted as a + b * day).

    python benchmarks/forecast_store.py --history 70 --days 14 --cli-days 2
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import load_average, machine

from retain.forecasting import elecdemand
from retain.forecasting.experiment import Experiment
from retain.store.forecasts import ForecastStore

DAY = 48  # half-hours


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=70, help="days to fit on")
    parser.add_argument("--days", type=int, default=14, help="days fed through the API")
    parser.add_argument("--cli-days", type=int, default=2, help="more days fed by commands")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="Experiment.quick() settings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame = elecdemand().frame.reset_index()
    root = Path(tempfile.mkdtemp())
    store = ForecastStore(root / "store")
    print(f"{machine()}; load {load_average()}; torch threads {args.threads}")
    start = time.perf_counter()
    store.init(frame.iloc[:args.history * DAY], time="time", label="Demand",
               covariates=["Temperature", "WorkDay"], known_future=["WorkDay"],
               experiment=Experiment.quick() if args.quick else None)
    print(f"init on {args.history} days: {time.perf_counter() - start:.1f} s")
    update_s, predict_s, sizes, maes, naive, statuses = [], [], [], [], [], []
    for d in range(args.history, args.history + args.days):
        rows = frame.iloc[d * DAY:(d + 1) * DAY]
        t = time.perf_counter()
        [version] = store.update(rows)
        update_s.append(time.perf_counter() - t)
        future = frame.iloc[(d + 1) * DAY:(d + 2) * DAY][["time", "WorkDay"]]
        t = time.perf_counter()
        store.predict(future)
        predict_s.append(time.perf_counter() - t)
        sizes.append(folder_bytes(store.path / "versions" / f"{version.id:06d}"))
        maes.append(version.metrics["mae"])
        naive.append(version.metrics["snaive_mae"])
        statuses.append(version.status)
        if version.status != "promoted":
            print(f"  day {d}: version {version.id} {version.status}: {version.reason}")
    wall_update, wall_predict = [], []
    for d in range(args.history + args.days, args.history + args.days + args.cli_days):
        day_file, future_file = root / f"day-{d}.csv", root / f"future-{d}.csv"
        frame.iloc[d * DAY:(d + 1) * DAY].to_csv(day_file, index=False)
        frame.iloc[(d + 1) * DAY:(d + 2) * DAY][["time", "WorkDay"]].to_csv(future_file,
                                                                          index=False)
        for command, times in ((["update", "--data", day_file], wall_update),
                               (["predict", "--data", future_file], wall_predict)):
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "retain.cli", command[0], "--store",
                                   str(store.path), *map(str, command[1:])],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if done.returncode not in (0, 1):
                raise SystemExit(done.stderr)
    day = np.arange(len(sizes)) + args.history
    b, a = np.polyfit(day, sizes, 1)
    year = sum(a + b * (args.history + k) for k in range(365))
    print(f"\nper day over {args.days} days (median [min, max]):")
    for name, values in (("update compute", update_s), ("predict compute", predict_s)):
        print(f"  {name:16s} {np.median(values):6.2f} s [{min(values):.2f}, {max(values):.2f}]")
    for name, values in (("retain update", wall_update), ("retain predict", wall_predict)):
        if values:
            print(f"  {name:16s} {np.median(values):6.2f} s wall (new process, "
                  f"{len(values)} days)")
    print(f"  forecast MAE {np.mean(maes):.4f} GW, seasonal-naive {np.mean(naive):.4f} GW; "
          f"{statuses.count('promoted')} of {len(statuses)} days promoted")
    print(f"size of one version: {sizes[-1] / 2**20:.2f} MiB (day {day[-1]}); "
          f"growth {b / 1024:.1f} KiB per day of history")
    print(f"a year of daily versions: {year / 2**30:.2f} GiB (extrapolated)")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
