"""One correction network or several: the hybrid's validation MAE as a mean over seeds.

    python benchmarks/hybrid_members.py [--members 1,3] [--seeds 0,1,2]
        [--series elecdemand,weather-jfk,synthetic-level,calls] [--validate 21]

How the number of networks the hybrid averages (``Settings.hybrid_members``) was chosen:
``retain forecast --data S --validate 21 --approaches hybrid --hybrid-members M --seed N``
(the last 21 pre-training days forecast test-then-train; no forecast day touched) for every
series, member count and seed. One seed cannot resolve a difference of a few percent (the
sensitivity table's seed rows move a series by up to 4%), so each cell is a mean over seeds,
with the seeds' spread, (max - min) / mean, beside it; the last row is each count's mean over
the first one's, and their geometric mean over series.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hybrid_sensitivity import SERIES, hybrid_mae

from retain.forecasting import Experiment


def seed_means(series: list[str], members: list[int], seeds: list[int],
               experiment: Experiment) -> dict[int, dict[str, list[float]]]:
    """Every run's validation MAE: ``maes[members][series]`` in the order of ``seeds``."""
    return {m: {s: [hybrid_mae(s, experiment, {"hybrid_members": m, "seed": n})
                    for n in seeds] for s in series} for m in members}


def summary(maes: dict[int, dict[str, list[float]]]) -> dict[int, dict[str, dict[str, float]]]:
    """Per member count and series: the seeds' mean, their spread ((max - min) / mean) and the
    mean over the first count's mean; ``"geomean"`` holds the ratios' geometric mean."""
    first = next(iter(maes.values()))
    out: dict[int, dict[str, dict[str, float]]] = {}
    for m, by_series in maes.items():
        cells = {}
        for s, runs in by_series.items():
            r = np.asarray(runs, dtype=float)
            cells[s] = {"mean": float(r.mean()), "spread": float((r.max() - r.min()) / r.mean()),
                        "ratio": float(r.mean() / np.mean(first[s]))}
        ratios = [c["ratio"] for c in cells.values()]
        out[m] = {**cells, "geomean": {"ratio": float(np.exp(np.mean(np.log(ratios))))}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,3", help="comma-separated member counts")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--validate", type=int, default=21,
                        help="validation days at the end of the pre-training period")
    parser.add_argument("--out", type=Path, default=Path("results/hybrid_members"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    series, members = args.series.split(","), [int(m) for m in args.members.split(",")]
    seeds = [int(n) for n in args.seeds.split(",")]
    experiment = Experiment(approaches=("hybrid",), validate_days=args.validate, detectors=())
    start = time.perf_counter()
    maes = seed_means(series, members, seeds, experiment)
    table = summary(maes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "members.json").write_text(json.dumps(
        {"validate_days": args.validate, "seeds": seeds, "mae": maes,
         "summary": table}, indent=2))
    print(f"hybrid validation MAE, mean over seeds {args.seeds} (spread: (max - min) / mean), "
          f"last {args.validate} pre-training days; {time.perf_counter() - start:.0f} s")
    print(f"{'networks':>8s} " + " ".join(f"{s:>20s}" for s in series) + f" {'geomean':>8s}")
    for m in members:
        print(f"{m:8d} " + " ".join(
            f"{table[m][s]['mean']:.4f} ({table[m][s]['spread']:5.1%})".rjust(20) for s in series))
    for m in members[1:]:
        print(f"{f'{m} / {members[0]}':>8s} "
              + " ".join(f"{table[m][s]['ratio']:20.3f}" for s in series)
              + f" {table[m]['geomean']['ratio']:8.3f}")


if __name__ == "__main__":
    main()
