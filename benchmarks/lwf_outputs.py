"""LwF over several epochs: the teacher's outputs read once the first epoch is over, against the
teacher every step (retain with the reading turned off) and the plain loop, side by side.

Each contender learns one experience with LwF after a first experience (teacher in place), on
the same model, data and shuffling; the three alternate run by run (A B C, C B A, ...) and
each run is timed in the thread's own CPU seconds, which waiting for a core does not inflate.
Ratios are per run, then the median (min-max). Same-weights check: the largest difference
between the retain runs with and without the reading.

    python benchmarks/lwf_outputs.py [--runs 7] [--epochs 1,5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from plain_loops import LOOPS, PARAMS
from timing import load_average, machine, markdown_table
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner
from retain.strategies import LwF

#: (name, layer sizes, batch size, rows an experience): the peers harness's two workloads
WORKLOADS = (("split-digits MLP", (64, 256, 256, 10), 32, 1200),
             ("throughput MLP", (784, 400, 400, 10), 128, 4096))
LR = 0.05


def mlp(sizes: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def experience(seed: int, classes: tuple[int, ...], n: int, features: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes)[torch.randint(0, len(classes), (n,), generator=g)]
    return torch.randn(n, features, generator=g) + 0.1 * y[:, None].float(), y


def retain_run(sizes, batch, first, second, epochs, live: bool):
    model = mlp(sizes)
    lwf = LwF(**PARAMS["lwf"])
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=LR), strategies=[lwf])
    learner.learn(TensorDataset(*first), batch_size=batch)
    if live:  # the teacher every step, as before
        lwf.extend_batch = lambda learner, batch: setattr(lwf, "_new", None)
        learner.strategies = [lwf]
    data = TensorDataset(*second)

    def run() -> list[torch.Tensor]:
        learner.learn(data, epochs=epochs, batch_size=batch)
        return [p.detach() for p in model.parameters()]
    return run


def plain_run(sizes, batch, first, second, epochs):
    model = mlp(sizes)
    loop = LOOPS["lwf"](model, torch.optim.SGD(model.parameters(), lr=LR), **PARAMS["lwf"])
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(first[0].shape[0], generator=g)
    for i in range(0, first[0].shape[0], batch):
        idx = perm[i : i + batch]
        loop.step(first[0][idx], first[1][idx])
    loop.consolidate(*first, g)
    x, y = second

    def run() -> None:
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0], generator=g)
            for i in range(0, x.shape[0], batch):
                idx = perm[i : i + batch]
                loop.step(x[idx], y[idx])
    return run


def measure(name: str, sizes, batch: int, n: int, epochs: int, runs: int) -> list[str]:
    first = experience(1, (0, 1), n, sizes[0])
    second = experience(2, (2, 3), n, sizes[0])
    contenders = {"plain": plain_run(sizes, batch, first, second, epochs),
                  "teacher every step": retain_run(sizes, batch, first, second, epochs, True),
                  "outputs read": retain_run(sizes, batch, first, second, epochs, False)}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    weights = {}
    for r in range(runs):
        for k in names if r % 2 == 0 else names[::-1]:
            start = time.thread_time()
            weights[k] = contenders[k]()
            times[k].append(time.thread_time() - start)
    diff = max(float((a - b).abs().max()) for a, b in
               zip(weights["outputs read"], weights["teacher every step"], strict=True))

    def ratio(a: str, b: str) -> str:
        r = [x / y for x, y in zip(times[a], times[b], strict=True)]
        return f"{statistics.median(r):.3f} ({min(r):.2f}-{max(r):.2f})"
    return [name, str(epochs), f"{statistics.median(times['plain']):.3f}",
            ratio("teacher every step", "plain"), ratio("outputs read", "plain"),
            ratio("outputs read", "teacher every step"), f"{diff:.1e}", f"{load_average():.1f}"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--epochs", default="1,5")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(machine(), flush=True)
    rows = []
    for name, sizes, batch, n in WORKLOADS:
        for epochs in (int(e) for e in args.epochs.split(",")):
            rows.append(measure(name, sizes, batch, n, epochs, args.runs))
            print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["workload", "epochs", "plain s", "every step / plain",
                            "read / plain", "read / every step", "max weight diff", "load"],
                           rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
