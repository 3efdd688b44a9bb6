"""Section 1b: the work of one update step, counted rather than timed, so the figures hold on
a busy machine: aten operators (forward, backward, optimizer, strategy math) and Python calls
per step of ``Learner.learn`` and of the hand-written loop in ``plain_loops.py``.

Per-step counts are the difference between a 20-step and a 10-step experience over 10, taken
after one consolidated experience (memories filled, penalties and teachers in place).

    python benchmarks/step_counts.py
"""

from __future__ import annotations

import argparse
import sys

import torch
from plain_loops import LOOPS, PARAMS
from timing import markdown_table
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import TensorDataset

from retain import Learner
from retain.strategies import make_strategy

BATCH, FEATURES, CLASSES = 10, 20, 10


class _AtenCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def aten_ops(fn) -> int:
    with _AtenCounter() as counter:
        fn()
    return counter.ops


def python_calls(fn) -> int:
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def data(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(steps)
    return (torch.randn(steps * BATCH, FEATURES, generator=g),
            torch.randint(0, CLASSES, (steps * BATCH,), generator=g))


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def retain_runner(strategy: str):
    m = model()
    learner = Learner(m, torch.optim.SGD(m.parameters(), lr=0.01),
                      strategies=[make_strategy(strategy, **PARAMS[strategy])])
    learner.learn(TensorDataset(*data(60)), batch_size=BATCH)
    return lambda steps: learner.learn(TensorDataset(*data(steps)), batch_size=BATCH)


def plain_runner(strategy: str):
    m = model()
    loop = LOOPS[strategy](m, torch.optim.SGD(m.parameters(), lr=0.01), **PARAMS[strategy])
    generator = torch.Generator().manual_seed(0)

    def run(steps: int) -> None:
        x, y = data(steps)
        perm = torch.randperm(x.shape[0], generator=generator)
        x, y = x[perm], y[perm]
        for i in range(0, x.shape[0], BATCH):
            loop.step(x[i : i + BATCH], y[i : i + BATCH])

    run(60)
    loop.consolidate(*data(60), generator)
    return run


def per_step(count, run) -> float:
    return (count(lambda: run(20)) - count(lambda: run(10))) / 10


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(PARAMS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for strategy in args.strategies.split(","):
        ops = [per_step(aten_ops, runner(strategy)) for runner in (retain_runner, plain_runner)]
        calls = [per_step(python_calls, runner(strategy))
                 for runner in (retain_runner, plain_runner)]
        rows.append([strategy, f"{ops[0]:.0f}", f"{ops[1]:.0f}", f"{ops[0] - ops[1]:+.0f}",
                     f"{calls[0]:.0f}", f"{calls[1]:.0f}", f"{calls[0] - calls[1]:+.0f}"])
    table = markdown_table(["strategy", "aten ops retain", "plain", "Δ", "Python calls retain",
                            "plain", "Δ"], rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
