"""The cost of continual evaluation (``eval_every``) and the stability gap it shows.

Split MNIST (class-incremental, 5 experiences), MLP 784-100-100-10, Replay (500), SGD lr 0.1,
batch 10, 1 epoch, one torch thread: ``Learner.run`` without and with ``eval_every=50``,
alternated and repeated, side by side in one process. Both must end with the same accuracy
matrix (evaluation changes nothing in training), so the ratio cannot come from doing less
work. Target: at most 1.10. Then the curve: for each experience, its accuracy when learned,
its lowest point while the next one trains (the gap) and once that one is learned; min-ACC
and WC-ACC (De Lange et al. 2023).

    python benchmarks/eval_every.py [--repeats 3] [--every 50] [--out results/eval-every]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from timing import compare, fmt_ratio, machine, wait_for_quiet
from torch import nn

from retain import Learner, datasets, scenarios
from retain.metrics import RunResult
from retain.strategies import Replay


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 100),
                         nn.ReLU(), nn.Linear(100, 10))


SPENT = {"s": 0.0}  # seconds inside the every-K-steps evaluations, summed


def _timed_points() -> None:
    """Time the evaluations between boundaries inside the run itself: a share of the same
    run's wall time, which a busy machine disturbs less than a ratio of two runs."""
    from retain.run_recorder import RunRecorder

    point = RunRecorder._point

    def timed(self, i: int, steps: int) -> None:
        start = time.perf_counter()
        point(self, i, steps)
        SPENT["s"] += time.perf_counter() - start
    RunRecorder._point = timed


def run(stream, every: int | None, results: dict[str, RunResult], name: str) -> float:
    model = mlp()
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                      strategies=[Replay(capacity=500)], seed=0)
    start = time.perf_counter()
    results[name] = learner.run(stream, epochs=1, batch_size=10, eval_every=every)
    return time.perf_counter() - start


def gap_lines(result: RunResult) -> list[str]:
    """For each experience k: its accuracy when learned, its lowest point while k+1 trains
    (the gap) and its accuracy once k+1 is learned."""
    C, tags, steps = result.curve, np.array(result.curve_training), result.curve_steps
    lines = []
    for k in range(C.shape[1] - 1):
        end = np.flatnonzero(tags == k)[-1]
        nxt = np.flatnonzero(tags == k + 1)
        low = nxt[np.argmin(C[nxt, k])]
        lines.append(f"experience {k}: {C[end, k]:.3f} when learned (step {steps[end]}), "
                     f"lowest {C[low, k]:.3f} at step {steps[low]} while {k + 1} trains, "
                     f"{C[nxt[-1], k]:.3f} once {k + 1} is learned")
    lines.append(f"min-ACC {result.min_acc:.3f}  WC-ACC {result.wc_acc:.3f}  "
                 f"final average accuracy {result.average_accuracy:.3f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--max-wait", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None, help="write the curve PNG here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    train, test = datasets.mnist()
    stream = scenarios.class_incremental(train, test, n_experiences=5)
    load = wait_for_quiet(args.max_load, args.max_wait)
    print(machine(), f"| load at start {load:.2f}")
    results: dict[str, RunResult] = {}
    _timed_points()
    plain, every = "end of experience only", f"eval_every={args.every}"
    timings = compare({plain: lambda: run(stream, None, results, plain),
                       every: lambda: run(stream, args.every, results, every)}, args.repeats)
    same = np.array_equal(results[plain].accuracy_matrix, results[every].accuracy_matrix)
    print(f"load during the runs {timings.load}; same accuracy matrix: {same}")
    for name in (plain, every):
        print(f"  {name:24s} median {timings.median(name):.2f} s  "
              f"({', '.join(f'{s:.2f}' for s in timings.seconds[name])})")
    ratio = timings.ratio(every, plain)
    print(f"wall time ratio {every} / {plain}: {fmt_ratio(ratio)} (target <= 1.10: "
          f"{'met' if ratio[0] <= 1.10 else 'NOT met'})")
    total = sum(timings.seconds[every])
    print(f"{len(results[every].curve_steps)} evaluation points; inside the {every} runs the "
          f"evaluations between boundaries took {SPENT['s']:.2f} s of {total:.2f} s "
          f"({100 * SPENT['s'] / total:.1f}%)")
    for line in gap_lines(results[every]):
        print(" ", line)
    if args.out is not None:
        from retain.report.plots import plot_gap

        args.out.mkdir(parents=True, exist_ok=True)
        path = plot_gap(results[every], f"Split MNIST, Replay 500, every {args.every} steps",
                        args.out / "gap.png")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
