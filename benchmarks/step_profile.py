"""One update step of retain against the plain loop, timed step by step and profiled per op.

Whole-run timings on a shared 2-core machine drift by more than the difference being looked
for; steps do not. Both sides train the same model (MLP 784-400-400-10, batch 128, SGD, one
torch thread) on the same data, after one consolidated experience (memory filled, teacher in
place), and their steps alternate in blocks (A B, B A, ...), so a load change hits both. The
figure is the median over blocks of the per-step time; ``--profile`` prints torch.profiler's
self CPU time per op for the same number of steps of each side (what a difference is made of).

    python benchmarks/step_profile.py --strategies naive,replay,lwf,der [--profile] [--compile]
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
from retain.scenarios import Experience
from retain.strategies import make_strategy

FEATURES, HIDDEN, CLASSES, BATCH, LR = 784, 400, 10, 128, 0.05


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                         nn.ReLU(), nn.Linear(HIDDEN, CLASSES))


def experience(seed: int, classes: tuple[int, ...], n: int = 2048):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes)[torch.randint(0, len(classes), (n,), generator=g)]
    x = torch.randn(n, FEATURES, generator=g) + 0.1 * y[:, None].float()
    return x, y


def sides(strategy: str, compile_mode: str | None):
    """``{name: step(x, y)}`` of retain and the plain loop, both after one experience."""
    first = experience(1, (0, 1))
    model = mlp()
    kwargs = {} if compile_mode is None else {"compile": compile_mode}
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=LR),
                      strategies=[make_strategy(strategy, **PARAMS[strategy])], **kwargs)
    learner.learn(TensorDataset(*first), batch_size=BATCH)
    learner.begin_experience(Experience(TensorDataset(*experience(2, (2, 3)))))

    plain_model = mlp()
    loop = LOOPS[strategy](plain_model, torch.optim.SGD(plain_model.parameters(), lr=LR),
                           **PARAMS[strategy])
    for i in range(0, first[0].shape[0], BATCH):
        loop.step(first[0][i : i + BATCH], first[1][i : i + BATCH])
    loop.consolidate(*first, torch.Generator().manual_seed(0))
    return {"retain": learner.step, "plain": loop.step}


def timed(step, batches, steps: int) -> float:
    start = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return (time.perf_counter() - start) / steps


def measure(strategy: str, blocks: int, block: int, compile_mode: str | None,
            profile: bool) -> list[str]:
    x, y = experience(3, (2, 3))
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, x.shape[0], BATCH)]
    contenders = sides(strategy, None)
    if compile_mode is not None:
        contenders["compiled"] = sides(strategy, compile_mode)["retain"]
    for step in contenders.values():  # warm-up (compilation, allocator, lazy imports)
        timed(step, batches, 3 * block if compile_mode else block)
    per_step: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for b in range(blocks):
        for name in names if b % 2 == 0 else names[::-1]:
            per_step[name].append(timed(contenders[name], batches, block))
    if profile:
        for name, step in contenders.items():
            with torch.profiler.profile() as prof:
                timed(step, batches, block)
            print(f"\n{strategy}, {name}, {block} steps:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    plain = statistics.median(per_step["plain"])
    row = [strategy, f"{1e3 * plain:.2f}"]
    for name in names[:1] + names[2:]:
        ratios = [a / b for a, b in zip(per_step[name], per_step["plain"], strict=True)]
        row += [f"{1e3 * statistics.median(per_step[name]):.2f}",
                f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"]
    return row + [f"{load_average():.1f}"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="naive,ewc,replay,lwf,der")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block", type=int, default=16, help="steps per timed block")
    parser.add_argument("--compile", default=None, help="also time Learner(compile=MODE)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(machine(), flush=True)
    header = ["strategy", "plain ms/step", "retain ms/step", "retain/plain (min-max)"]
    if args.compile:
        header += [f"compiled ({args.compile}) ms/step", "compiled/plain (min-max)"]
    rows = []
    for strategy in args.strategies.split(","):
        rows.append(measure(strategy, args.blocks, args.block, args.compile, args.profile))
        print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(header + ["load"], rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
