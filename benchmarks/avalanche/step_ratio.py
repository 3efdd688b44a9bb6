"""retain / plain on the peers harness's workloads, in one process, interleaved, with a profile.

The harness (``run.sh``) starts a fresh process per run and needs a quiet machine; on a shared
machine that takes hours. This runs the harness's own ``plain`` column and retain's adapter
in one process, alternating (A B, B A, ...), and prints the median train seconds of each and
their ratio per strategy; ``--profile`` adds torch.profiler's per-op self times for a few
steps of each side (where the difference comes from). No Avalanche is needed:

    PYTHONPATH=src:PEERS python benchmarks/avalanche/step_ratio.py --workload w2 \\
        --strategies replay,lwf --repeats 5 [--profile]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from contextlib import contextmanager

import torch
from clbench import common, config
from clbench.adapters.base import RunContext, Timer
from clbench.adapters.plain import PlainAdapter
from clbench.data import make_data


def _retain_adapter():
    """retain's adapter loaded as a module of the harness (what ``run.sh`` copies in)."""
    name = "clbench.adapters.retain_adapter"
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "retain_adapter.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.RetainAdapter


LIBS = {"plain": PlainAdapter, "retain": _retain_adapter()}


class ThreadTimer(Timer):
    """The harness's timer (wall seconds per phase) that also adds up this thread's CPU
    seconds per phase: with one torch thread, time spent waiting for a core on a shared
    machine is not counted, and evaluation and setup stay out of the train figure."""

    def __init__(self):
        super().__init__()
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, key: str):
        start = time.thread_time()
        try:
            with super().__call__(key):
                yield
        finally:
            self.cpu[key] = self.cpu.get(key, 0.0) + time.thread_time() - start


def run(lib: str, strategy: str, cfg: dict, data, seed: int = 0) -> tuple[float, float, float]:
    """Train seconds (wall), train seconds of this thread's CPU and the final accuracy of one
    run of one column."""
    params = config.STRATEGY_PARAMS[cfg["name"]][strategy]

    def make_model():
        common.seed_everything(seed)
        model = common.make_mlp(cfg["in_dim"], cfg["hidden"], cfg["n_classes"])
        common.seed_everything(seed + 1)
        return model

    ctx = RunContext(workload=cfg["name"], strategy=strategy, seed=seed, cfg=cfg, params=params,
                     make_model=make_model,
                     make_optimizer=lambda ps: common.make_optimizer(ps, cfg),
                     timer=ThreadTimer())
    out = LIBS[lib]().run(ctx, data)
    return ctx.timer.get("train"), ctx.timer.cpu["train"], out.final_acc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="w2")
    ap.add_argument("--strategies", default="naive,ewc,replay,lwf,der")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the harness uses 2; on a shared machine 2 threads "
                         "waiting for each other make timings meaningless)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = config.workload_config(args.workload)
    data = make_data(cfg)
    print(f"workload {cfg['name']}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    print("| strategy | train s plain / retain | retain/plain train (min-max) | "
          "train CPU s plain / retain | retain/plain train CPU (min-max) | "
          "acc plain / retain | load |")
    print("|---|---|---|---|---|---|---|")
    for strategy in args.strategies.split(","):
        wall: dict[str, list[float]] = {"plain": [], "retain": []}
        cpu: dict[str, list[float]] = {"plain": [], "retain": []}
        acc: dict[str, float] = {}
        run("plain", strategy, cfg, data)  # warm-up (allocator, lazy imports)
        for r in range(args.repeats):
            for lib in ("plain", "retain") if r % 2 == 0 else ("retain", "plain"):
                w, c, acc[lib] = run(lib, strategy, cfg, data)
                wall[lib].append(w)
                cpu[lib].append(c)
        cells = []
        for t in (wall, cpu):
            ratios = [a / b for a, b in zip(t["retain"], t["plain"], strict=True)]
            cells += [f"{statistics.median(t['plain']):.2f} / {statistics.median(t['retain']):.2f}",
                      f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"]
        print(f"| {strategy} | {' | '.join(cells)} | {acc['plain']:.4f} / {acc['retain']:.4f} "
              f"| {os.getloadavg()[0]:.1f} |", flush=True)
        if args.profile:
            for lib in LIBS:
                with torch.profiler.profile(record_shapes=False) as prof:
                    run(lib, strategy, cfg, data)
                print(f"\n{lib} {strategy}:")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    print(f"load at end {os.getloadavg()[0]:.2f}, {time.strftime('%H:%M')}")


if __name__ == "__main__":
    main()
