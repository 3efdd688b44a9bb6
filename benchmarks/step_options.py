"""Ways a step could do less than the textbook loop, each measured against it before retain
adopts it (issue 40): the optimizer's ``foreach`` and ``fused`` implementations against its
default, ``zero_grad`` before the forward pass against after it, and a replay step gathering
incoming and memory rows into one preallocated batch against gathering each and concatenating
them.

Every contender trains its own copy of one model on the same batches; their steps alternate in
blocks (A B C, C B A, ...) and each block is timed in the thread's own CPU seconds, which waiting
for a core does not inflate. Ratios are per block, then the median (min-max); the last column is
the largest weight difference from the default after the same steps.

    python benchmarks/step_options.py [--blocks 20] [--block 50]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
import torch.nn.functional as F
from lwf_outputs import WORKLOADS, mlp
from timing import load_average, machine, markdown_table

LR = 0.05


def optimizer_steps(sizes, batch: int, kind: str):
    """``step(i)`` of the plain naive loop with SGD's ``kind`` implementation."""
    model = mlp(sizes)
    options = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    opt = torch.optim.SGD(model.parameters(), lr=LR, **options)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8 * batch, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (8 * batch,), generator=g)

    def step(i: int) -> None:
        rows = slice(i % 8 * batch, i % 8 * batch + batch)
        loss = F.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, model


def zero_grad_steps(sizes, batch: int, kind: str):
    """``step(i)`` of the plain naive loop with ``zero_grad`` after the forward pass
    (``after forward``, retain before this measure) or before it (``first``)."""
    model = mlp(sizes)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8 * batch, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (8 * batch,), generator=g)

    def step(i: int) -> None:
        rows = slice(i % 8 * batch, i % 8 * batch + batch)
        if kind == "first":
            opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[rows]), y[rows])
        if kind != "first":
            opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, model


def replay_steps(sizes, batch: int, kind: str):
    """``step(i)`` of a replay loop: ``batch`` shuffled incoming rows and ``batch`` memory
    rows, concatenated (``cat``) or gathered into one preallocated batch (``preallocated``)."""
    model = mlp(sizes)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16 * batch, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (16 * batch,), generator=g)
    memory_x, memory_y = x[8 * batch :], y[8 * batch :]
    draws = torch.Generator().manual_seed(1)
    bx = torch.empty(2 * batch, sizes[0])
    by = torch.empty(2 * batch, dtype=torch.long)

    def step(i: int) -> None:
        new = torch.randint(0, 8 * batch, (batch,), generator=draws)
        mem = torch.randint(0, 8 * batch, (batch,), generator=draws)
        if kind == "cat":
            xb = torch.cat((x.index_select(0, new), memory_x.index_select(0, mem)))
            yb = torch.cat((y.index_select(0, new), memory_y.index_select(0, mem)))
        else:
            xb, yb = bx, by
            torch.index_select(x, 0, new, out=bx[:batch])
            torch.index_select(memory_x, 0, mem, out=bx[batch:])
            torch.index_select(y, 0, new, out=by[:batch])
            torch.index_select(memory_y, 0, mem, out=by[batch:])
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, model


def compare(name: str, make, kinds: tuple[str, ...], blocks: int, block: int) -> list[str]:
    sides = {kind: make(kind) for kind in kinds}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for step, _ in sides.values():  # warm-up: allocator, lazy imports
        for i in range(block):
            step(i)
    for b in range(blocks):
        for kind in kinds if b % 2 == 0 else kinds[::-1]:
            step = sides[kind][0]
            start = time.thread_time()
            for i in range(b * block, (b + 1) * block):
                step(i)
            times[kind].append((time.thread_time() - start) / block)
    base = [p.detach() for p in sides[kinds[0]][1].parameters()]
    row = [name, f"{1e3 * statistics.median(times[kinds[0]]):.3f}"]
    for kind in kinds[1:]:
        r = [a / b for a, b in zip(times[kind], times[kinds[0]], strict=True)]
        diff = max(float((a - p.detach()).abs().max())
                   for a, p in zip(base, sides[kind][1].parameters(), strict=True))
        row.append(f"{kind}: {statistics.median(r):.3f} ({min(r):.2f}-{max(r):.2f}), "
                   f"diff {diff:.0e}")
    return row + [f"{load_average():.1f}"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block", type=int, default=50, help="steps per timed block")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(machine(), flush=True)
    rows = []
    for name, sizes, batch, _ in WORKLOADS:
        for label, steps, kinds in (("SGD step", optimizer_steps, ("default", "foreach", "fused")),
                                    ("zero_grad", zero_grad_steps, ("after forward", "first")),
                                    ("replay batch", replay_steps, ("cat", "preallocated"))):
            make = functools.partial(steps, sizes, batch)
            rows.append(compare(f"{name}, {label}", make, kinds, args.blocks, args.block))
            print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["workload, step", "textbook ms/step",
                            "option / textbook (min-max), weight diff", "another option",
                            "load"], [r if len(r) == 5 else [*r[:3], "", r[3]] for r in rows])
    print(table)
    return table


if __name__ == "__main__":
    main()
