"""docs/vibration.md's "Measured" section: `retain run --scenario vibration-machines` as a user
runs it, on the test draw (seeds 0, 2, 3) and on the validation draw (seed 1) the scenario's
settings were chosen on.

Every row is one `retain run` (a subprocess, one torch thread, its `results.json` read back),
so the figures are what the command prints; the accuracy matrices give the per-type columns.
The raw-window variant has no command-line switch (the scenario fixes the envelope model), so
it runs in-process with the same stream, `VibrationCNN(features="raw")` and the scenario's
settings.

    python benchmarks/vibration_machines.py --part test        # ~2 min on one core
    python benchmarks/vibration_machines.py --part validation  # ~5 min
    python benchmarks/vibration_machines.py --part raw         # ~3 min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FIVE = ["naive", "ewc", "online-ewc", "lwf", "replay"]


def retain_run(*args: str) -> dict[str, dict]:
    """``retain run ARGS`` in a subprocess (one thread); its results per strategy."""
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "retain", "run", *args, "--out", out],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads((Path(out) / "results.json").read_text())["results"]


def strategies(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--strategy", name)]


def test_part() -> None:
    runs = {seed: retain_run("--scenario", "vibration-machines", *strategies(*FIVE),
                             "--seed", str(seed)) for seed in (0, 2, 3)}
    print("retain run --scenario vibration-machines --strategy naive --strategy ewc "
          "--strategy online-ewc --strategy lwf --strategy replay --seed S  (S = 0, 2, 3)\n")
    print("| strategy | final avg accuracy (seed 0) | forgetting (seed 0) | type 1 after types "
          "1 → 5 | forgetting, seeds 0 / 2 / 3 | mean forgetting (vs Naive), mean accuracy |")
    print("|---|---|---|---|---|---|")
    naive = np.mean([runs[s]["naive"]["forgetting"] for s in runs])
    for name in [*FIVE, "joint (upper bound)"]:
        r0 = runs[0][name]
        m = np.asarray(r0["accuracy_matrix"])
        acc = np.mean([runs[s][name]["average_accuracy"] for s in runs])
        if name.startswith("joint"):
            print(f"| {name} | {r0['average_accuracy']:.3f} | — | {m[-1, 0]:.2f} | — | "
                  f"—, {acc:.3f} |")
            continue
        forget = [runs[s][name]["forgetting"] for s in runs]
        change = "" if name == "naive" else f" ({np.mean(forget) / naive - 1:+.0%})"
        print(f"| {name} | {r0['average_accuracy']:.3f} | {r0['forgetting']:.3f} | "
              f"{m[0, 0]:.2f} → {m[-1, 0]:.2f} | {' / '.join(f'{f:.3f}' for f in forget)} | "
              f"{np.mean(forget):.3f}{change}, {acc:.3f} |")
    m = np.asarray(runs[0]["naive"]["accuracy_matrix"])
    print(f"\nnaive, seed 0, trained on type 1 only, on types 1-5: "
          f"{', '.join(f'{a:.2f}' for a in m[0])}")
    print("naive, seed 0, each type when learnt -> at the end: "
          + ", ".join(f"{m[i, i]:.2f} -> {m[-1, i]:.2f}" for i in range(len(m))))
    for name in FIVE:
        diagonal = np.diag(np.asarray(runs[0][name]["accuracy_matrix"]))
        cuts = [1 - runs[s][name]["forgetting"] / runs[s]["naive"]["forgetting"] for s in runs]
        gaps = [runs[s][name]["average_accuracy"]
                - runs[s]["joint (upper bound)"]["average_accuracy"] for s in runs]
        print(f"{name}: seed 0 diagonal {diagonal.min():.2f}-{diagonal.max():.2f}; forgetting "
              f"cut vs naive per seed {' / '.join(f'{c:.0%}' for c in cuts)}; final accuracy "
              f"minus joint's per seed {' / '.join(f'{g:+.3f}' for g in gaps)}")
    four = ["naive", "ewc", "lwf", "replay"]
    cls = retain_run("--scenario", "vibration-machines-class", *strategies(*four))
    print("\nretain run --scenario vibration-machines-class --strategy naive --strategy ewc "
          "--strategy lwf --strategy replay  (seed 0): final avg accuracy / forgetting / train s")
    for name, r in cls.items():
        print(f"  {name}: {r['average_accuracy']:.3f} / {r['forgetting']:.3f} / "
              f"{r['train_time_s']:.1f}")


def validation_part() -> None:
    val = ("--scenario", "vibration-machines", "--seed", "1")
    print("validation draw: retain run --scenario vibration-machines --seed 1 ...\n")
    for epochs in (5, 10, 20):
        for lr in ((3e-3,) if epochs != 10 else (1e-3, 3e-3, 1e-2)):
            r = retain_run(*val, "--experiences", "2", "--epochs", str(epochs), "--lr", str(lr))
            m = np.asarray(r["naive"]["accuracy_matrix"])
            print(f"  --experiences 2 --epochs {epochs} --lr {lr:g}: type 1 after learning it "
                  f"{m[0, 0]:.2f}, type 2 {m[1, 1]:.2f}")
    grids = {
        "ewc": [f"ewc:lambda_={lam}" for lam in (10, 100, 300, 1000, 3000, 10000)]
        + [f"ewc:lambda_={lam},fisher=empirical" for lam in (1000, 10000)],
        "online-ewc": [f"online-ewc:lambda_={lam},gamma={g}" for lam in (100, 300, 1000)
                       for g in (0.9, 1.0)],
        "replay": ["replay:capacity=100", "replay:capacity=200"],
        "lwf": ["lwf:alpha=1", "lwf:alpha=5"],
    }
    naive = retain_run(*val)["naive"]
    print(f"  naive: forgetting {naive['forgetting']:.3f}, average {naive['average_accuracy']:.3f}")
    for specs in grids.values():
        for spec in specs:
            r = next(iter(retain_run(*val, "--strategy", spec).values()))
            print(f"  --strategy {spec}: forgetting {r['forgetting']:.3f}, average "
                  f"{r['average_accuracy']:.3f}")


def raw_part() -> None:
    """Naive, Replay and EWC (λ = 300) on raw windows, validation draw, the scenario's settings."""
    import time

    import torch

    from retain import Learner
    from retain.optim import make_optimizer
    from retain.strategies import make_strategy
    from retain.vibration import VibrationCNN
    from retain.vibration.run_machines import machine_stream

    torch.set_num_threads(1)
    print("raw windows, validation draw (seed 1), Adam lr 3e-3, batch 32, 10 epochs:")
    for features in ("envelope", "raw"):
        for name, params in (("naive", {}), ("replay", {"capacity": 200}),
                             ("ewc", {"lambda_": 300.0})):
            stream = machine_stream(seed=1)
            torch.manual_seed(1)
            model = VibrationCNN(n_classes=4, length=2048, features=features)
            learner = Learner(model, make_optimizer("adam", model.parameters(), lr=3e-3),
                              strategies=[] if name == "naive" else
                              [make_strategy(name, **params)], seed=1)
            start = time.process_time()
            result = learner.run(stream, epochs=10, batch_size=32)
            m = np.asarray(result.accuracy_matrix)
            print(f"  {features:8s} {name:7s} forgetting {result.forgetting:.3f}, average "
                  f"{result.average_accuracy:.3f}, type 1 {m[0, 0]:.2f} -> {m[-1, 0]:.2f}, "
                  f"CPU {time.process_time() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["test", "validation", "raw"], default="test")
    {"test": test_part, "validation": validation_part, "raw": raw_part}[
        parser.parse_args().part]()
