"""What ``torch.optim.SGD.step()`` costs around its arithmetic, and what the learner's lean
update (``retain.sgd_step``) saves of a whole step: the plain loop's step with
``optimizer.step()`` and with the lean update, alternating in blocks, this thread's CPU
microseconds per step (median of blocks), the two updates alone beside them; the weights of
the two loops are compared at the end (equal bit for bit):

    python benchmarks/sgd_step.py [--blocks 20] [--steps 50]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from retain.sgd_step import lean_sgd_step

WORKLOADS = {"MLP 64-256-256-10, batch 32": (64, (256, 256), 10, 32),
             "MLP 784-400-400-10, batch 128": (784, (400, 400), 10, 128)}


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Module:
    layers, width = [], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def per_step_us(fn, steps: int) -> float:
    start = time.thread_time()
    for _ in range(steps):
        fn()
    return (time.thread_time() - start) / steps * 1e6


def measure(name: str, inputs: int, hidden: tuple[int, ...], outputs: int, batch: int,
            blocks: int, steps: int) -> str:
    """One workload's table row."""
    torch.manual_seed(0)
    models = {"sgd": mlp(inputs, hidden, outputs)}
    models["lean"] = copy.deepcopy(models["sgd"])
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01) for k, m in models.items()}
    updates = {"sgd": opts["sgd"].step, "lean": lean_sgd_step(opts["lean"])}
    x, y = torch.randn(batch, inputs), torch.randint(0, outputs, (batch,))

    def step(k: str) -> None:
        opts[k].zero_grad(set_to_none=True)
        F.cross_entropy(models[k](x), y).backward()
        updates[k]()

    times: dict[str, list[float]] = {"sgd": [], "lean": [], "sgd alone": [], "lean alone": []}
    for b in range(blocks + 1):
        for k in ("sgd", "lean") if b % 2 == 0 else ("lean", "sgd"):
            us = per_step_us(lambda k=k: step(k), steps)
            alone = per_step_us(updates[k], steps)
            if b:  # the first block warms up
                times[k].append(us)
                times[f"{k} alone"].append(alone)
    ratios = [a / b for a, b in zip(times["lean"], times["sgd"], strict=True)]
    same = all(torch.equal(a, b) for a, b in zip(models["sgd"].parameters(),
                                                 models["lean"].parameters(), strict=True))
    med = {k: statistics.median(v) for k, v in times.items()}
    return (f"| {name} | {med['sgd alone']:.1f} | {med['lean alone']:.1f} | {med['sgd']:.0f} "
            f"| {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {'yes' if same else 'NO'} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load {os.getloadavg()[0]:.2f}")
    print("| workload | SGD.step() µs | lean µs | whole step with SGD.step() µs | "
          "with lean / with SGD.step() (min-max) | same weights |")
    print("|---|---|---|---|---|---|")
    for name, dims in WORKLOADS.items():
        print(measure(name, *dims, args.blocks, args.steps), flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
