"""Where retain's and Avalanche's Replay accuracies differ on the harness's throughput workload.

Runs retain and four hand-written loops on the same data, initial weights and data order, one
difference at a time, and prints each variant's final accuracy over seeds with the paired
differences:

- ``retain``: ``Replay(capacity=1000, update="experience", seed=seed)``, memory rows = incoming rows
  (96 in the last step of an experience of 12,000 at batch 128);
- ``plain-retain``: a plain loop doing retain's math (must equal ``retain`` to the bit);
- ``reservoir``: the same loop, always 128 memory rows (Avalanche's ``batch_size_mem``);
- ``balanced``: Avalanche's ``ExperienceBalancedBuffer`` (``capacity // k`` random rows of each
  of the ``k`` past experiences), memory rows drawn independently;
- ``balanced-cycle``: the same memory read in shuffled passes, as Avalanche's replay loader;
- ``retain-balanced``: retain's ``Replay(capacity=1000, batch_size=128, update="experience",
  policy="experience-balanced")``, the library doing what ``balanced`` does by hand (its own
  random draws, so equal in distribution, not to the bit).

Every variant keeps and draws its memory with the run's seed: the harness's data are the same
at every seed, so a memory seeded alike in every run would be one draw repeated, and its
luck would read as a difference between policies.

Needs the peers harness (its synthetic data and model)::

    PYTHONPATH=src:PEERS python benchmarks/avalanche/replay_accuracy.py --seeds 0-9
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from clbench import common, config
from clbench.data import make_data
from torch.utils.data import TensorDataset

from retain import Learner
from retain.buffers import ReplayBuffer
from retain.strategies import Replay

CAPACITY, BATCH = 1000, 128
VARIANTS = ("balanced-cycle", "balanced", "retain-balanced", "reservoir", "plain-retain",
            "retain")


def run(variant: str, seed: int, data, cfg) -> tuple[float, float]:
    """Final accuracy and the sum of the final weights (to check bitwise equality)."""
    common.seed_everything(seed)
    model = common.make_mlp(cfg["in_dim"], cfg["hidden"], cfg["n_classes"])
    common.seed_everything(seed + 1)
    opt = common.make_optimizer(model.parameters(), cfg)
    generator = torch.Generator().manual_seed(seed + 1)  # the learner's data order
    if variant.startswith("retain"):
        replay = (Replay(CAPACITY, update="experience", seed=seed) if variant == "retain" else
                  Replay(CAPACITY, batch_size=BATCH, update="experience",
                         policy="experience-balanced", seed=seed))
        learner = Learner(model, opt, strategies=[replay], seed=seed + 1)
        for x, y in data.train:
            learner.learn(TensorDataset(x, y), batch_size=BATCH)
    else:
        memory = ReplayBuffer(CAPACITY, seed=seed)  # each seed its own memory, as retain's
        groups: list[tuple[torch.Tensor, torch.Tensor]] = []
        for x, y in data.train:
            perm = torch.randperm(len(y), generator=generator)
            xs, ys = x.index_select(0, perm), y.index_select(0, perm)
            if groups:
                mx, my = torch.cat([g[0] for g in groups]), torch.cat([g[1] for g in groups])
                order, pos = torch.randperm(len(my)), 0
            for i in range(0, len(y), BATCH):
                xb, yb = xs[i : i + BATCH], ys[i : i + BATCH]
                if variant.startswith("balanced") and groups:
                    if variant == "balanced-cycle":
                        if pos >= len(my):
                            order, pos = torch.randperm(len(my)), 0
                        j, pos = order[pos : pos + BATCH], pos + BATCH
                    else:
                        j = torch.randint(0, len(my), (BATCH,))
                    xb, yb = torch.cat([xb, mx[j]]), torch.cat([yb, my[j]])
                elif not variant.startswith("balanced") and memory.size:
                    m = memory.sample(len(yb) if variant == "plain-retain" else BATCH)
                    xb, yb = torch.cat([xb, m["x"]]), torch.cat([yb, m["y"]])
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            if variant.startswith("balanced"):
                k = len(groups) + 1
                keep = [CAPACITY // k + (i < CAPACITY % k) for i in range(k)]
                pick = torch.randperm(len(y))[: keep[-1]]
                groups = [(gx[:n], gy[:n]) for (gx, gy), n in
                          zip([*groups, (x[pick], y[pick])], keep, strict=True)]
            else:
                for j in range(0, len(y), 1024):  # as retain offers it: 1,024 rows at a time
                    memory.add(x=x[j : j + 1024], y=y[j : j + 1024])
    weights = float(sum(p.detach().double().sum() for p in model.parameters()))
    return common.accuracy_row(model, data.test, cfg["eval_batch_size"])[1], weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-9 or 0,3,5")
    args = parser.parse_args()
    if "-" in args.seeds:
        lo, hi = map(int, args.seeds.split("-"))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    cfg = config.workload_config("throughput")
    data = make_data(cfg)
    acc: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in seeds:
        results = {v: run(v, seed, data, cfg) for v in VARIANTS}
        for v, (a, _) in results.items():
            acc[v].append(a)
        same = results["retain"][1] == results["plain-retain"][1]
        print(f"seed {seed}: " + ", ".join(f"{v} {a:.4f}" for v, (a, _) in results.items())
              + f"; retain == plain-retain weights: {same}", flush=True)
    print("\n| variant | final accuracy, mean ± sd |\n|---|---|")
    for v in VARIANTS:
        sd = statistics.stdev(acc[v]) if len(acc[v]) > 1 else 0.0
        print(f"| {v} | {statistics.mean(acc[v]):.4f} ± {sd:.4f} |")
    print("\n| step | difference, points (SE) | seeds where positive |\n|---|---|---|")
    for a, b in zip(VARIANTS, VARIANTS[1:], strict=False):
        diffs = [100 * (p - q) for p, q in zip(acc[a], acc[b], strict=True)]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
        print(f"| {a} − {b} | {statistics.mean(diffs):+.2f} ({se:.2f}) | "
              f"{sum(d > 0 for d in diffs)}/{len(diffs)} |")


if __name__ == "__main__":
    main()
