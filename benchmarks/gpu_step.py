"""The update step on a GPU: plain loop vs retain eager vs the captured step, side by side.

For the small MLP (784-400-400-10, batch 128), the vibration CNN (1 x 2048 windows, batch 64)
and the forecasting CNN (8 channels x 336 steps -> 48, batch 64): per-step milliseconds of a
hand-written loop, ``Learner`` eager, ``Learner(compile="default")`` (inductor) and
``Learner(compile="reduce-overhead")`` (inductor + CUDA graphs), for Naive, Replay and LwF,
optionally under bf16 autocast. Contenders alternate in blocks (A B C D, D C B A, ...); each
figure is the median per-step time over blocks, synchronised at block ends; the ratio column
divides by the plain loop of the same block pair.

    python benchmarks/gpu_step.py [--device cuda] [--bf16] [--blocks 20 --block 50]
    python benchmarks/gpu_step.py --device cpu --blocks 2 --block 3 --modes default  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from timing import markdown_table
from torch import nn

from retain import Learner
from retain.buffers import ReplayBuffer
from retain.models.forecasting import ForecastCNN
from retain.strategies import LwF, Naive, Replay
from retain.strategies.common import frozen_copy
from retain.vibration.model import VibrationCNN


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                         nn.Linear(400, 10))


#: name: (model factory, input shape of one row, classes or None for regression, batch)
MODELS = {
    "mlp": (mlp, (784,), 10, 128),
    "vibration-cnn": (lambda: VibrationCNN(dropout=0.0), (1, 2048), 4, 64),
    "forecast-cnn": (lambda: ForecastCNN(8, 336, 48), (8, 336), None, 64),
}
STRATEGIES = {"naive": lambda: Naive(), "replay": lambda: Replay(capacity=500),
              "lwf": lambda: LwF(alpha=1.0)}


def batches(shape, classes, batch, device, n=16):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.randn(batch, *shape, generator=g)
        y = (torch.randint(0, classes, (batch,), generator=g) if classes
             else torch.randn(batch, 48, generator=g))
        out.append((x.to(device), y.to(device)))
    return out


def plain(model: nn.Module, strategy: str, classes, first) -> callable:
    """The textbook loop for the same math (memory rows concatenated, teacher each step)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = F.cross_entropy if classes else F.mse_loss
    memory = ReplayBuffer(500, device=first[0].device)
    memory.add(x=first[0], y=first[1])
    teacher = frozen_copy(model)

    def step(x, y):
        if strategy == "replay":
            mem = memory.sample(x.shape[0], ("x", "y"))
            out = model(torch.cat((x, mem["x"])))
            loss = loss_fn(out, torch.cat((y, mem["y"])))
        else:
            out = model(x)
            loss = loss_fn(out, y)
        if strategy == "lwf":
            with torch.no_grad():
                target = teacher(x)
            loss = loss + (F.kl_div(F.log_softmax(out / 2, 1), F.softmax(target / 2, 1),
                                    reduction="batchmean") if classes
                           else F.mse_loss(out, target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if strategy == "replay":
            memory.add(x=x, y=y)
    return step


def retain(model: nn.Module, strategy: str, classes, first, compile) -> callable:
    learner = Learner(model, torch.optim.SGD(model.parameters(), lr=0.01),
                      loss=None if classes else nn.MSELoss(),
                      strategies=[STRATEGIES[strategy]()], compile=compile)
    learner.update(*first)  # fills the memory
    for s in learner.strategies:  # a teacher in place, as after one experience
        if isinstance(s, LwF):
            s.teacher.snapshot(learner.model)
            s.old_units = torch.arange(classes or 1, device=first[0].device)
    learner.model.train()
    return learner.step


def measure(name: str, strategy: str, device: str, modes, blocks: int, block: int,
            bf16: bool) -> list[str]:
    factory, shape, classes, batch = MODELS[name]
    data = batches(shape, classes, batch, device)
    contenders = {}
    for label in ("plain", "eager", *modes):
        torch.manual_seed(0)
        model = factory().to(device)
        contenders[label] = (plain(model, strategy, classes, data[0]) if label == "plain" else
                             retain(model, strategy, classes, data[0],
                                    None if label == "eager" else label))
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
                if bf16 else contextlib.nullcontext())

    def timed(step) -> float:
        sync()
        start = time.perf_counter()
        with autocast:
            for i in range(block):
                step(*data[i % len(data)])
        sync()
        return (time.perf_counter() - start) / block

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for step in contenders.values():  # warm-up: compilation, CUDA graph capture, allocator
        for _ in range(3):
            timed(step)
    per: dict[str, list[float]] = {k: [] for k in contenders}
    labels = list(contenders)
    for b in range(blocks):
        for label in labels if b % 2 == 0 else labels[::-1]:
            per[label].append(timed(contenders[label]))
    row = [name, strategy, f"{1e3 * statistics.median(per['plain']):.3f}"]
    for label in labels[1:]:
        ratios = [a / p for a, p in zip(per[label], per["plain"], strict=True)]
        row += [f"{1e3 * statistics.median(per[label]):.3f}",
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"]
    return row


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--modes", default="default,reduce-overhead",
                        help="torch.compile modes of the captured step")
    parser.add_argument("--bf16", action="store_true", help="all contenders under autocast")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    modes = [m for m in args.modes.split(",") if m]
    name = (torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU")
    print(f"{name}, torch {torch.__version__}, bf16 autocast: {args.bf16}", flush=True)
    header = ["model", "strategy", "plain ms"]
    for label in ("eager", *modes):
        header += [f"{label} ms", f"{label}/plain (min-max)"]
    rows = []
    for model in args.models.split(","):
        for strategy in args.strategies.split(","):
            rows.append(measure(model, strategy, args.device, modes, args.blocks, args.block,
                                args.bf16))
            print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(header, rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
