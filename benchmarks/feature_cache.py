"""A frozen backbone's features computed once per experience (``retain.backbone``) against
recomputing them at every step, epoch, replayed sample and evaluation: MNIST classes 5-9 in
two experiences ([5, 6] then [7, 8, 9]), a frozen CNN, a linear head trained with Replay.
Both contenders run the same learner from the same weights; the figures are side by side in
one run (median of --repeats, alternating).

    python benchmarks/feature_cache.py --samples 4000 --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
from pretrained_nets import mnist_backbone, subset
from timing import compare, fmt_ratio, load_average, machine, markdown_table, peak_rss_mb
from torch import nn

from retain import Learner
from retain.backbone import cache_stream, freeze
from retain.datasets.mnist import mnist
from retain.scenarios.experience import make_stream
from retain.strategies import Replay

TASKS = ([5, 6], [7, 8, 9])


def stream(samples: int):
    train, test = mnist()
    return make_stream([(subset(train, c, samples, seed=i), subset(test, c, samples // 4))
                        for i, c in enumerate(TASKS)], "split-mnist 5-9")


def run(backbone, data, cached: bool, epochs: int, batch_size: int) -> tuple[float, list]:
    torch.manual_seed(1)
    head = nn.Linear(128, 10)
    start = time.perf_counter()
    if cached:
        data, model = cache_stream(backbone, data), head
    else:
        model = nn.Sequential(backbone, head)
    learner = Learner(model, torch.optim.SGD(head.parameters(), lr=0.05),
                      strategies=[Replay(capacity=200)], seed=0)
    result = learner.run(data, epochs=epochs, batch_size=batch_size)
    return time.perf_counter() - start, result.accuracy_matrix[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000, help="training samples per task")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    backbone = freeze(mnist_backbone())
    data = stream(args.samples)
    accuracy = {}

    def contender(cached):
        def go():
            seconds, accuracy[cached] = run(backbone, data, cached, args.epochs,
                                            args.batch_size)
            return seconds
        return go

    timings = compare({"recomputed": contender(False), "cached": contender(True)},
                      args.repeats)
    rows = [[name, f"{timings.median(name):.2f}",
             fmt_ratio(timings.ratio(name, "recomputed")),
             " ".join(f"{a:.3f}" for a in accuracy[name == "cached"])]
            for name in ("recomputed", "cached")]
    print(machine())
    print(f"{len(TASKS)} experiences x {args.samples} samples, {args.epochs} epochs, batch "
          f"{args.batch_size}, Replay(200); load {timings.load}; peak RSS "
          f"{peak_rss_mb():.0f} MB; load now {load_average():.1f}")
    print(markdown_table(["features", "seconds (median)", "time vs recomputed",
                          "final accuracy per experience"], rows))


if __name__ == "__main__":
    main()
