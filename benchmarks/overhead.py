"""Section 1: retain's Learner against a hand-written loop doing the same math.

Both sides start from the same weights, see the same data order and (for replay strategies)
draw the same memory rows, so their final weights must agree; the script prints how far apart
they end up next to the time ratio, so a ratio can never come from doing less work.

    python benchmarks/overhead.py --repeats 5 [--samples 2000] [--strategies naive,ewc]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from plain_loops import PARAMS, train_plain
from timing import compare, fmt_ratio, load_average, markdown_table
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner, datasets, scenarios
from retain.scenarios import Experience
from retain.strategies import make_strategy

MODEL_SEED, DATA_SEED = 0, 0


@dataclass(frozen=True)
class Workload:
    name: str
    hidden: int
    batch_size: int
    lr: float


WORKLOADS = (
    Workload("784-100-100-10, batch 10", 100, 10, 0.01),
    Workload("784-400-400-10, batch 128", 400, 128, 0.05),
)


def mlp(hidden: int) -> nn.Module:
    torch.manual_seed(MODEL_SEED)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def split_mnist(samples: int | None) -> list[Experience]:
    """Split MNIST (5 experiences of 2 classes), optionally the first ``samples`` of each."""
    train, test = datasets.mnist()
    stream = scenarios.class_incremental(train, test, n_experiences=5)
    if samples is None:
        return list(stream)
    return [Experience(TensorDataset(*(t[:samples] for t in e.train.tensors)), e.test,
                       name=e.name) for e in stream]


def train_retain(strategy: str, model: nn.Module, optimizer, stream: list[Experience],
                 batch_size: int, seed: int) -> float:
    learner = Learner(model, optimizer, strategies=[make_strategy(strategy, **PARAMS[strategy])],
                      seed=seed)
    start = time.perf_counter()
    for experience in stream:
        learner.learn(experience, batch_size=batch_size)
    return time.perf_counter() - start


def max_weight_difference(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(),
                                                          strict=True))


def measure(strategy: str, workload: Workload, stream: list[Experience], repeats: int):
    """Timings of both sides and the largest weight difference after one run of each."""
    tensors = [(e.train.tensors[0], e.train.tensors[1]) for e in stream]
    finals: dict[str, nn.Module] = {}

    def side(name, train, data):
        def run() -> float:
            model = mlp(workload.hidden)
            optimizer = torch.optim.SGD(model.parameters(), lr=workload.lr)
            seconds = train(strategy, model, optimizer, data, workload.batch_size, DATA_SEED)
            finals[name] = model
            return seconds
        return run

    timings = compare({"retain": side("retain", train_retain, stream),
                       "plain": side("plain", train_plain, tensors)}, repeats)
    return timings, max_weight_difference(finals["retain"], finals["plain"])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=None,
                        help="train on the first N samples of each experience (quick runs)")
    parser.add_argument("--strategies", default=",".join(PARAMS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    stream = split_mnist(args.samples)
    rows = []
    for workload in WORKLOADS:
        for strategy in args.strategies.split(","):
            timings, diff = measure(strategy, workload, stream, args.repeats)
            row = [workload.name, strategy, f"{timings.median('retain'):.3f}",
                   f"{timings.median('plain'):.3f}",
                   fmt_ratio(timings.ratio("retain", "plain")), f"{diff:.1e}", timings.load]
            print(" | ".join(row), flush=True)
            rows.append(row)
    header = ["workload", "strategy", "retain s", "plain s", "retain/plain (min-max)",
              "max |Δw|", "load"]
    table = markdown_table(header, rows)
    print(table)
    print(f"load at end: {load_average():.2f}")
    return table


if __name__ == "__main__":
    main()
