"""What one NumPy call costs inside an update step (why replay draws with a torch generator).

The same plain replay step (MLP 64-256-256-10, batch 32 + 32 memory rows, SGD, one thread)
in variants that differ only in one call: the memory draw by ``torch.randint``; the same plus
one ``np.prod`` whose result is unused (once a step, five times a step, every tenth step);
the draw by retain's ``ReplayBuffer`` through NumPy (how memories drew before). Blocks of 100
steps alternate between variants, 30 blocks; the figure is the median of the thread's CPU time
per step, and each variant's ratio to the first:

    python benchmarks/numpy_in_step.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retain.buffers import ReplayBuffer

D, H, B, MEMORY = 64, 256, 32, 200


def step_with(draw):
    """A plain replay step whose memory rows are ``draw()``'s indices."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.001)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(B, D, generator=g), torch.randint(0, 10, (B,), generator=g)
    mx, my = torch.randn(MEMORY, D, generator=g), torch.randint(0, 10, (MEMORY,), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        idx = draw()
        xb = torch.cat((x, mx.index_select(0, idx)))
        yb = torch.cat((y, my.index_select(0, idx)))
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return step


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    count = [0]

    def torch_draw():
        return torch.randint(0, MEMORY, (B,), generator=g)

    def numpy_calls(k):
        def draw():
            for _ in range(k):
                np.prod((B,))
            return torch_draw()
        return draw

    def every_tenth():
        count[0] += 1
        if count[0] % 10 == 0:
            np.prod((B,))
        return torch_draw()

    legacy = ReplayBuffer(MEMORY)
    legacy.add(x=torch.zeros(MEMORY, 1))
    legacy.draws = None  # the NumPy draw memories made before

    variants = {
        "torch.randint draw": step_with(torch_draw),
        "+ 1 NumPy call": step_with(numpy_calls(1)),
        "+ 5 NumPy calls": step_with(numpy_calls(5)),
        "+ 1 NumPy call every 10th step": step_with(every_tenth),
        "NumPy draw (ReplayBuffer before)": step_with(lambda: legacy.sample_indices(B)),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for block in range(30):
        order = list(variants.items())
        for name, step in order if block % 2 == 0 else reversed(order):
            start = time.thread_time()
            for _ in range(100):
                step()
            times[name].append((time.thread_time() - start) / 100 * 1e6)
    base = statistics.median(times["torch.randint draw"])
    print("| step | µs per step (thread CPU) | / torch draw |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {median / base:.3f} |")


if __name__ == "__main__":
    main()
