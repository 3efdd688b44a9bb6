"""How much the hybrid's fixed defaults matter, measured on validation slices only.

    python benchmarks/hybrid_sensitivity.py [--series elecdemand,weather-jfk,...]
        [--validate 21] [--out results/hybrid_sensitivity]

The hybrid chooses its base window, seasons, ETS cadence, loss and learning rate by
validation inside every run; a few settings stay fixed (the correction's width, the days its
weight is re-chosen on, the replay memory, the candidate learning rates and update epochs,
the number of networks averaged).
This runs ``retain forecast --validate N`` (the last N days of the pre-training period
forecast test-then-train, no forecast day touched) for the default and for one change of
each fixed setting, on each series, and prints every MAE as a ratio to the default's.

Two rows change only the seed (network initialisation and replay sampling): their spread is
the yardstick. A variant that moves the MAE less than the seeds do is noise, and one that
helps some series and hurts others is no better default. Only ``synthetic-level`` of the
synthetic series is run by default: their changes start after the pre-training period, so
their validation slices are the same series.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retain.forecasting import Experiment, run_experiment
from retain.forecasting.backtest.report import summarize
from retain.forecasting.bundled import DATASETS, load

SERIES = ("elecdemand", "weather-jfk", "synthetic-level", "calls")

#: one change of a fixed setting each (fields of ``Settings``); ``seed`` changes the seed
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "seed 1": {"seed": 1},
    "seed 2": {"seed": 2},
    "one correction network": {"hybrid_members": 1},
    "correction width 8": {"hybrid_width": 8},
    "correction width 32": {"hybrid_width": 32},
    "weight over 7 days": {"hybrid_blend_days": 7},
    "weight over 28 days": {"hybrid_blend_days": 28},
    "replay memory 1000": {"replay_capacity": 1000},
    "replay memory 5000": {"replay_capacity": 5000},
    "update epochs 1|2|4": {"hybrid_update_epochs": (1, 2, 4)},
    "learning rates x3": {"hybrid_lrs": (3e-4, 1e-3, 3e-3)},
    "learning rates /3": {"hybrid_lrs": (3e-5, 1e-4, 3e-4)},
}


def hybrid_mae(series_name: str, experiment: Experiment, change: dict[str, Any]) -> float:
    """The hybrid's validation MAE on one series with ``change`` applied."""
    change = dict(change)
    seed = change.pop("seed", experiment.seed)
    run, _ = run_experiment(load(series_name), replace(
        experiment, seed=seed, hyper={**experiment.hyper, **change}))
    return float(summarize(run)["approaches"]["hybrid"]["mae"])


def sensitivity(series: list[str], experiment: Experiment,
                variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """MAE by variant and series; ``variants`` must hold ``"default"``."""
    return {name: {s: hybrid_mae(s, experiment, change) for s in series}
            for name, change in variants.items()}


def ratios(maes: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each MAE over the default's on the same series, and their geometric mean."""
    default = maes["default"]
    out = {}
    for name, by_series in maes.items():
        r = {s: mae / default[s] for s, mae in by_series.items()}
        out[name] = {**r, "geomean": float(np.exp(np.mean(np.log(list(r.values())))))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default=",".join(SERIES),
                        help=f"comma-separated, from {', '.join(DATASETS)}")
    parser.add_argument("--validate", type=int, default=21,
                        help="validation days at the end of the pre-training period")
    parser.add_argument("--out", type=Path, default=Path("results/hybrid_sensitivity"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    series = args.series.split(",")
    experiment = Experiment(approaches=("hybrid",), validate_days=args.validate,
                            detectors=())
    start = time.perf_counter()
    maes = sensitivity(series, experiment, VARIANTS)
    table = ratios(maes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sensitivity.json").write_text(json.dumps(
        {"validate_days": args.validate, "mae": maes, "ratio_to_default": table}, indent=2))
    print(f"hybrid validation MAE over the default's (last {args.validate} pre-training "
          f"days; {time.perf_counter() - start:.0f} s)")
    print(f"{'variant':22s} " + " ".join(f"{s:>16s}" for s in series) + f" {'geomean':>8s}")
    print(f"{'default (MAE)':22s} " + " ".join(f"{maes['default'][s]:16.4f}" for s in series))
    for name, r in table.items():
        print(f"{name:22s} " + " ".join(f"{r[s]:16.3f}" for s in series)
              + f" {r['geomean']:8.3f}")
    seeds = [r["geomean"] for n, r in table.items() if n == "default" or n.startswith("seed")]
    print(f"seed spread of the geometric mean: {min(seeds):.3f} to {max(seeds):.3f}")


if __name__ == "__main__":
    main()
