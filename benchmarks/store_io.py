"""Checkpoint save and load times for the MNIST MLP (784-100-100-10) with an EWC Fisher and a
replay memory, at three memory sizes: the 500-row case must stay under 0.2 s each way, and the
time should grow linearly with the bytes saved (no per-tensor or per-row overhead): the
ms/MB column should stay flat, apart from a fixed cost that dominates tiny checkpoints and
memory bandwidth once the state outgrows the CPU caches.

Save is the whole :func:`retain.store.save_learner` (encode, write, fsync, rename); load is
:func:`retain.store.open_checkpoint` (read, verify sizes and sha256) plus rebuilding the learner.

    python benchmarks/store_io.py [--sizes 500,5000,25000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import compare, load_average, machine, markdown_table
from torch.utils.data import TensorDataset

from retain import Learner
from retain.checkpoint.recipes import recorded_model
from retain.store import open_checkpoint, save_learner
from retain.strategies import EWC, Replay

BUDGET_S = 0.2


def mnist_learner(memory_rows: int) -> Learner:
    """The MLP after one experience (so EWC holds its Fisher), its memory filled to
    ``memory_rows`` MNIST-shaped rows."""
    torch.manual_seed(0)
    model = recorded_model("mlp", in_features=784, out_features=10, hidden=(100, 100))
    replay = Replay(capacity=memory_rows)
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                      strategies=[EWC(lambda_=100.0, fisher_samples=200), replay])
    x = torch.rand(1000, 1, 28, 28)
    learner.learn(TensorDataset(x, torch.randint(0, 10, (1000,))), batch_size=100)
    free = memory_rows - len(replay.buffer)
    if free > 0:
        replay.buffer.add(x=torch.rand(free, 1, 28, 28), y=torch.randint(0, 10, (free,)))
    return learner


def measure(learner: Learner, folder: Path, repeats: int) -> tuple[dict, float]:
    target = folder / "ckpt"

    def save() -> float:
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        save_learner(learner, target)
        return time.perf_counter() - start

    def load() -> float:
        start = time.perf_counter()
        open_checkpoint(target).learner()
        return time.perf_counter() - start

    save()
    timings = compare({"save": save, "load": load}, repeats)
    size_mb = sum(p.stat().st_size for p in target.iterdir()) / 2**20
    return {name: timings.seconds[name] for name in ("save", "load")}, size_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000,25000", help="replay memory rows")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine(), f"load {load_average():.1f}")
    rows, sizes, medians = [], [], {"save": [], "load": []}
    with tempfile.TemporaryDirectory() as tmp:
        for memory_rows in (int(s) for s in args.sizes.split(",")):
            seconds, size_mb = measure(mnist_learner(memory_rows), Path(tmp), args.repeats)
            sizes.append(size_mb)
            cells = [f"{memory_rows}", f"{size_mb:.1f}"]
            for name in ("save", "load"):
                median = float(np.median(seconds[name]))
                medians[name].append(median)
                cells += [f"{median * 1000:.0f} ({min(seconds[name]) * 1000:.0f}-"
                          f"{max(seconds[name]) * 1000:.0f})", f"{median * 1000 / size_mb:.1f}"]
            rows.append(cells)
    print(markdown_table(["memory rows", "MB", "save ms (min-max)", "save ms/MB",
                          "load ms (min-max)", "load ms/MB"], rows))
    for name in ("save", "load"):
        verdict = "within" if medians[name][0] < BUDGET_S else "OVER"
        print(f"{name} at {args.sizes.split(',')[0]} rows: {medians[name][0] * 1000:.0f} ms, "
              f"{verdict} the {BUDGET_S * 1000:.0f} ms budget")


if __name__ == "__main__":
    main()
