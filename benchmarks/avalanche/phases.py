"""Where one harness run's train time goes: thread CPU milliseconds per run of retain's
``begin_experience`` (the data checks and the strategies' preparation), its steps, its
end-of-experience hooks (memory upkeep, teacher, Fisher), and the plain loop's ``before_exp``
and ``after_exp``, each side's whole train phase beside them (median over runs, alternating).
The timers cost ~1 µs a call: compare parts, not totals, with ``step_ratio.py``'s figures.

    PYTHONPATH=src:PEERS python benchmarks/avalanche/phases.py --workload w1 --strategy replay
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import torch
from clbench import config
from clbench.adapters import plain
from clbench.data import make_data
from step_ratio import run

from retain import Learner
from retain.strategies import EWC, DERPlusPlus, LwF, Naive, Replay, Strategy

spent: dict[str, float] = {}
#: the strategy classes the harness's retain column builds (retain_adapter.py)
STRATEGIES = {"naive": Naive, "ewc": EWC, "replay": Replay, "lwf": LwF, "der": DERPlusPlus}


def timed(owner: object, name: str, key: str) -> None:
    """Add the thread CPU time of every call of ``owner.name`` to ``spent[key]``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.thread_time() - start
    setattr(owner, name, wrapper)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="w1")
    ap.add_argument("--strategy", default="naive")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    timed(Learner, "begin_experience", "retain begin_experience")
    timed(Learner, "_step", "retain steps")
    strategy = STRATEGIES[args.strategy]
    if strategy.after_experience is not Strategy.after_experience:  # else it is never called
        timed(strategy, "after_experience", "retain after_experience")
    loop = plain.STRATEGIES[args.strategy]
    timed(loop, "before_exp", "plain before_exp")
    timed(loop, "after_exp", "plain after_exp")
    cfg = config.workload_config(args.workload)
    data = make_data(cfg)
    figures: dict[str, list[float]] = {}
    for r in range(args.runs + 1):
        for lib in ("plain", "retain") if r % 2 == 0 else ("retain", "plain"):
            spent.clear()
            _, cpu, _ = run(lib, args.strategy, cfg, data)
            spent[f"{lib} train phase"] = cpu
            if r:  # the first round warms up
                for key, value in spent.items():
                    figures.setdefault(key, []).append(value * 1e3)
    print(f"{cfg['name']} {args.strategy}, {args.runs} runs, load {os.getloadavg()[0]:.2f}")
    for key in sorted(figures):
        print(f"{key:28s} {statistics.median(figures[key]):8.2f} ms")


if __name__ == "__main__":
    main()
