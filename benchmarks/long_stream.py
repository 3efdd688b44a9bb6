"""Section 3: cost stays flat over a long stream.

Trains ``--experiences`` experiences (default 50) through Replay, DER++ and online EWC and
reports, per strategy: the median time per step in the first and in the last experiences,
peak RSS after the first and after the last experience, and the replay memory's insertion and
sampling time per sample with an empty-ish and a long-filled buffer.

The per-experience times come from one pass down the stream, so a change in the machine's
load during the stream shows up as growth. The verdict is therefore a side-by-side figure:
copies of the learner as it was after experience 6 and as it is after the last one learn the
same new experience, alternating, ``--repeats`` times (median of the paired ratios).

    python benchmarks/long_stream.py --experiences 50 --steps 200
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from timing import compare, fmt_ratio, load_average, markdown_table, rss_mb
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner
from retain.buffers import ReplayBuffer
from retain.strategies import make_strategy

STRATEGIES = {
    "replay": {"capacity": 2000},
    "derpp": {"capacity": 2000},
    "online-ewc": {"lambda_": 10.0, "fisher_samples": 128},
}
BATCH, FEATURES, CLASSES = 32, 64, 10


def experience(i: int, steps: int) -> TensorDataset:
    g = torch.Generator().manual_seed(i)
    return TensorDataset(torch.randn(steps * BATCH, FEATURES, generator=g),
                         torch.randint(0, CLASSES, (steps * BATCH,), generator=g))


def stream_cost(strategy: str, experiences: int, steps: int, repeats: int) -> list[str]:
    """Per-step time (``LearnStats.seconds / steps``, consolidation included): median of
    experiences 2-6 (the first with a full memory and a penalty) against the median of the
    last five, and the two states side by side; RSS after the first and after the last
    experience."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 256), nn.ReLU(), nn.Linear(256, CLASSES))
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01),
                      strategies=[make_strategy(strategy, **STRATEGIES[strategy])])
    per_step, rss = [], []
    for i in range(experiences):
        stats = learner.learn(experience(i, steps), batch_size=BATCH)
        per_step.append(stats.seconds / stats.steps)
        rss.append(rss_mb())
        if i == 5:
            early_learner = copy.deepcopy(learner)
    early, late = statistics.median(per_step[1:6]), statistics.median(per_step[-5:])
    probe = experience(10**6, steps)  # new to both

    def step_time(state: Learner):
        def run() -> float:
            fresh = copy.deepcopy(state)  # outside the timed part; the state stays as it was
            stats = fresh.learn(probe, batch_size=BATCH)
            return stats.seconds / stats.steps
        return run

    paired = compare({"late": step_time(learner), "early": step_time(early_learner)}, repeats)
    return [strategy, str(experiences), f"{early * 1e6:.0f}", f"{late * 1e6:.0f}",
            f"{late / early:.3f}", fmt_ratio(paired.ratio("late", "early")), paired.load,
            f"{rss[0]:.0f}", f"{rss[-1]:.0f}", f"{rss[-1] / rss[0]:.3f}"]


def buffer_cost(capacity: int, seen: int, rows: int = 64, trials: int = 200) -> tuple[float, float]:
    """Microseconds per sample to insert and to sample, after ``seen`` samples went by."""
    buffer = ReplayBuffer(capacity)
    x, y = torch.randn(rows, FEATURES), torch.randint(0, CLASSES, (rows,))
    buffer.add(x=torch.randn(capacity, FEATURES), y=torch.randint(0, CLASSES, (capacity,)))
    buffer.seen = seen
    start = time.perf_counter()
    for _ in range(trials):
        buffer.add(x=x, y=y)
    insert = (time.perf_counter() - start) / (trials * rows)
    start = time.perf_counter()
    for _ in range(trials):
        buffer.sample(rows)
    sample = (time.perf_counter() - start) / (trials * rows)
    return insert * 1e6, sample * 1e6


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiences", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200, help="update steps per experience")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternating pairs of the early and the late learner")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = load_average()
    rows = [stream_cost(s, args.experiences, args.steps, args.repeats) for s in STRATEGIES]
    header = ["strategy", "experiences", "µs/step exp. 2-6", "µs/step last 5", "ratio",
              "after last / after 6th, side by side (min-max)", "load", "RSS MB after 1st",
              "after last", "ratio"]
    table = markdown_table(header, rows)
    buf_rows = []
    for seen in (10_000, 1_000_000, 100_000_000):
        insert, sample = buffer_cost(2000, seen)
        buf_rows.append([f"{seen:,}", f"{insert:.2f}", f"{sample:.2f}"])
    table += "\n\nReplay memory (capacity 2,000), µs per sample:\n\n" + markdown_table(
        ["samples already seen", "insert", "sample"], buf_rows)
    table += f"\n\nload: {load_before:.1f} before, {load_average():.1f} after"
    print(table)
    return table


if __name__ == "__main__":
    main()
