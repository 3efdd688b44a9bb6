"""1 process against 2 DDP processes (gloo, CPU): throughput, scaling and where the time goes.

Workloads: the MLP 784-400-400-10 at batch 128 (synthetic MNIST-shaped rows) and the
vibration CNN (``retain.vibration.VibrationCNN``, 2048-sample windows, batch 32). For each,
Naive and Replay run as

- ``1 x B``: one process, batch B (the reference);
- ``2 x B/2``: two ranks, the same global batch B, so the same math (strong scaling);
- ``2 x B``: two ranks of batch B each, global batch 2B (weak scaling).

Throughput is samples per second of one ``Learner.learn`` pass after a warm-up pass; the
1-process and the 2-process jobs alternate (A B A B ..., ``--repeats`` each) and each figure is
the median, so that a load change on a shared machine hits both sides. Speedup is against
``1 x B``, efficiency is speedup / 2 (the ceiling on 2 cores is 2x).
Where the time goes, measured inside the 2-rank job: the gradient all-reduce alone (one flat
tensor the size of the model, as DDP's buckets send), the replay insertion alone (a step's
rows offered to a full 500-row memory: only the rows it keeps are gathered) next to a gather
of all the step's rows (what a memory still filling up costs), and the per-step compute of
one rank with DDP's synchronisation turned off (``no_sync``). Every process uses one
torch thread. Run: ``python benchmarks/distributed_scaling.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain import Learner
from retain.distributed import close, init
from retain.strategies import make_strategy

WORKLOADS = {"mlp": 128, "cnn": 32}  # workload -> the reference batch B
STRATEGIES = ("naive", "replay")


def model(workload: str) -> nn.Module:
    torch.manual_seed(0)
    if workload == "mlp":
        return nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                             nn.Linear(400, 10))
    from retain.vibration import VibrationCNN

    return VibrationCNN(n_classes=4, length=2048)


def data(workload: str, n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    if workload == "mlp":
        return TensorDataset(torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,),
                                                                            generator=g))
    return TensorDataset(torch.randn(n, 1, 2048, generator=g), torch.randint(0, 4, (n,),
                                                                         generator=g))


def learner(workload: str, strategy: str) -> Learner:
    net = model(workload)
    params = {"capacity": 500} if strategy == "replay" else {}
    return Learner(net, torch.optim.SGD(net.parameters(), lr=0.01),
                   strategies=[make_strategy(strategy, **params)], seed=0)


def throughput(workload: str, strategy: str, batch: int, n: int) -> float:
    """Samples per second of one learn() pass, after a warm-up pass."""
    lr, stream = learner(workload, strategy), data(workload, n)
    lr.learn(TensorDataset(*stream[: min(n, 4 * batch * lr.world.size)]), batch_size=batch)
    lr.world.barrier()
    start = time.perf_counter()
    lr.learn(stream, batch_size=batch)
    return n / (time.perf_counter() - start)


def where_time_goes(workload: str, batch: int, reps: int) -> dict[str, float]:
    """Milliseconds per step: DDP's gradient all-reduce alone, the replay insertion into a
    full memory and a gather of all rows, and one rank's step with DDP's synchronisation off
    (compute only)."""
    import torch.distributed as dist

    from retain.buffers import ReplayBuffer

    lr = learner(workload, "naive")
    n_params = sum(p.numel() for p in lr.model.parameters())
    flat = torch.zeros(n_params)
    x, y = data(workload, batch)[:]
    world = lr.world
    world.counts = (batch,) * world.size
    memory = ReplayBuffer(500)
    for _ in range(-(-20 * 500 // (batch * world.size))):  # full, 20 x capacity seen
        memory.add_from_ranks({"x": x, "y": y}, world)

    def per_step(fn) -> float:
        fn()
        world.barrier()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1000 * (time.perf_counter() - start) / reps

    def step() -> None:
        with lr._forward.no_sync():
            lr.optimizer.zero_grad()
            lr.loss_fn(lr._forward(x), y).backward()
            lr.optimizer.step()

    return {"allreduce_ms": per_step(lambda: dist.all_reduce(flat)),
            "insert_ms": per_step(lambda: memory.add_from_ranks({"x": x, "y": y}, world)),
            "gather_ms": per_step(lambda: world.gather({"x": x, "y": y})),
            "compute_ms": per_step(step), "params": n_params}


def worker(out: Path, n: dict[str, int], configs: list[tuple]) -> None:
    world = init(backend="gloo")
    torch.set_num_threads(1)
    rows = []
    try:
        for workload, strategy, batch in configs:
            rows.append({"workload": workload, "strategy": strategy, "ranks": world.size,
                         "batch": batch, "samples_per_s": throughput(
                             workload, strategy, batch, n[workload])})
        if world.size > 1:
            for workload, b in WORKLOADS.items():
                rows.append({"workload": workload, "ranks": world.size, "batch": b // 2,
                             **where_time_goes(workload, b // 2, 30)})
        if world.main:
            out.write_text(json.dumps(rows))
    finally:
        close()


def launch(ranks: int, out: Path, args: argparse.Namespace, configs: list[tuple]) -> list:
    script = [str(Path(__file__).resolve()), "--worker", str(out), "--samples-mlp",
              str(args.samples_mlp), "--samples-cnn", str(args.samples_cnn), "--configs",
              json.dumps(configs)]
    prefix = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(ranks)] if ranks > 1 else [sys.executable])
    subprocess.run(prefix + script, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.read_text())


def report(one: list, two: list, load: float) -> None:
    print(f"load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after "
          f"({os.cpu_count()} cores)")
    print("| workload | strategy | processes x batch | global batch | samples/s | speedup | "
          "efficiency |")
    print("|---|---|---|---|---|---|---|")
    base = {(r["workload"], r["strategy"]): r["samples_per_s"] for r in one}
    for r in sorted(one + [r for r in two if "strategy" in r],
                    key=lambda r: (r["workload"], r["strategy"], r["ranks"], r["batch"])):
        ref = base[(r["workload"], r["strategy"])]
        speedup = r["samples_per_s"] / ref
        print(f"| {r['workload']} | {r['strategy']} | {r['ranks']} x {r['batch']} | "
              f"{r['ranks'] * r['batch']} | {r['samples_per_s']:.0f} | {speedup:.2f}x | "
              f"{speedup / r['ranks']:.0%} |")
    print("\nwhere a 2-rank step's time goes (ms per step, per rank):")
    print("| workload | batch per rank | parameters | compute (no_sync) | gradient all-reduce | "
          "replay insert, full memory | gather of all rows |")
    print("|---|---|---|---|---|---|---|")
    for r in (r for r in two if "compute_ms" in r):
        print(f"| {r['workload']} | {r['batch']} | {r['params']:,} | {r['compute_ms']:.2f} | "
              f"{r['allreduce_ms']:.2f} | {r['insert_ms']:.2f} | {r['gather_ms']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: plumbing only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples-mlp", type=int, default=12800)
    parser.add_argument("--samples-cnn", type=int, default=1280)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--configs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.samples_mlp, args.samples_cnn, args.repeats = 1024, 128, 1
    n = {"mlp": args.samples_mlp, "cnn": args.samples_cnn}
    if args.worker is not None:
        worker(args.worker, n, [tuple(c) for c in json.loads(args.configs)])
        return
    load = os.getloadavg()[0]
    single = [(w, s, b) for w, b in WORKLOADS.items() for s in STRATEGIES]
    double = [(w, s, bb) for w, b in WORKLOADS.items() for s in STRATEGIES
              for bb in (b // 2, b)]
    ones, twos = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternate: a load change hits both sides
            ones.append(launch(1, Path(tmp) / "one.json", args, single))
            twos.append(launch(2, Path(tmp) / "two.json", args, double))
    report(_median(ones), _median(twos), load)


def _median(runs: list[list[dict]]) -> list[dict]:
    """Row by row, the median of every figure over the repeats."""
    return [{k: statistics.median(r[k] for r in rows) if isinstance(v, float) else v
             for k, v in rows[0].items()} for rows in zip(*runs, strict=True)]


if __name__ == "__main__":
    main()
