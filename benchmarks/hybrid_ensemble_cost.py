"""What the hybrid's correction ensemble costs per update step, side by side.

    python benchmarks/hybrid_ensemble_cost.py [--steps 300] [--rounds 3]

One update step (forward, L1 loss, backward, Adam) on a batch the size of the hybrid's daily
update with replay (16 new windows + 16 from memory) and elecdemand's shapes (12 channels,
a lookback of 96 half-hours, a horizon of 48), for:

- one network (``members=1``);
- K members packed into one network (``CorrectionEnsemble(members=K)``, grouped
  convolutions), as the hybrid trains them;
- K separate one-member networks stepped one after another (what packing saves).

Rounds alternate the variants so that machine noise hits them alike; the median step time
of each is printed with its ratio to one network's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from retain.forecasting.correction import CorrectionEnsemble

CHANNELS, LOOKBACK, HORIZON, BATCH = 12, 96, 48, 32


def step_ms(models: list[nn.Module], steps: int) -> float:
    """Milliseconds per update step of ``models`` (each on the same batch, L1 loss)."""
    params = [p for m in models for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-4)
    x = torch.randn(BATCH, CHANNELS, LOOKBACK)
    targets = [torch.randn(BATCH, m.members, HORIZON) for m in models]
    loss_fn = nn.L1Loss()
    for i in range(steps + steps // 5):  # the first fifth warms up
        if i == steps // 5:
            start = time.perf_counter()
        loss = sum(loss_fn(m(x), y) for m, y in zip(models, targets, strict=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1e3


def variants(members: tuple[int, ...]) -> dict[str, list[nn.Module]]:
    torch.manual_seed(0)
    out = {"1 network": [CorrectionEnsemble(CHANNELS, LOOKBACK, HORIZON, members=1)]}
    for k in members:
        out[f"{k} packed"] = [CorrectionEnsemble(CHANNELS, LOOKBACK, HORIZON, members=k)]
        out[f"{k} separate"] = [CorrectionEnsemble(CHANNELS, LOOKBACK, HORIZON, members=1)
                                for _ in range(k)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", default="3,5")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `retain forecast` runs these networks
    models = variants(tuple(int(k) for k in args.members.split(",")))
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, m in models.items():
            times[name].append(step_ms(m, args.steps))
    one = statistics.median(times["1 network"])
    print(f"update step, batch {BATCH}, {CHANNELS} channels x {LOOKBACK} steps -> {HORIZON}; "
          f"median of {args.rounds} rounds of {args.steps} steps, one thread")
    for name, t in times.items():
        print(f"  {name:12s} {statistics.median(t):7.3f} ms   {statistics.median(t) / one:5.2f}x "
              "one network")


if __name__ == "__main__":
    main()
