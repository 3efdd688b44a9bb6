"""Raw windows against the envelope spectrum on the ``vibration-machines`` stream: how much each
``VibrationCNN`` forgets, and what it costs, under the scenario's own settings.

Why: the scenario learns from the envelope spectrum (``features="envelope"``), and
``retain run`` cannot switch the model's features, so this script runs the scenario's protocol
(``retain.scenarios.build_scenario``, Adam lr 3e-3, batch 32, 10 epochs, EWC λ = 300, Replay 200
windows) with both models side by side, on the settings draw (``--seed 1``) by default. The
envelope rows equal ``retain run --scenario vibration-machines --seed 1`` with the same
strategies, which checks that the protocol is the scenario's. Prints final average accuracy,
forgetting, the first machine type's accuracy after it and at the end, and the CPU seconds of
each run (one thread).

    python benchmarks/vibration_raw.py [--seed 1] [--strategies naive,ewc,replay]
"""

from __future__ import annotations

import argparse
import time

import torch

from retain import Learner
from retain.scenarios.catalog import build_model, build_scenario
from retain.strategies import make_strategy
from retain.vibration import VibrationCNN

SETTINGS = {"naive": {}, "ewc": {"lambda_": 300.0}, "replay": {"capacity": 200}}
EPOCHS, BATCH, LR = 10, 32, 3e-3  # retain.vibration.run_machines.RUN_DEFAULTS


def model_for(stream, features: str, seed: int) -> torch.nn.Module:
    if features == "envelope":  # exactly what `retain run` builds for the scenario
        return build_model(stream, seed=seed)
    torch.manual_seed(seed)
    return VibrationCNN(n_classes=stream.n_classes, length=2048, features=features)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strategies", default="naive,ewc,replay")
    args = ap.parse_args()
    torch.set_num_threads(1)
    stream = build_scenario("vibration-machines", seed=args.seed)
    print("| features | strategy | final avg accuracy | forgetting | type 1: after it → at the end "
          "| CPU s |\n|---|---|---|---|---|---|")
    for features in ("envelope", "raw"):
        for name in args.strategies.split(","):
            model = model_for(stream, features, args.seed)
            strategies = [] if name == "naive" else [make_strategy(name, **SETTINGS[name])]
            learner = Learner(model, torch.optim.Adam(model.parameters(), lr=LR),
                              strategies=strategies, seed=args.seed)
            start = time.process_time()
            result = learner.run(stream, epochs=EPOCHS, batch_size=BATCH)
            cpu = time.process_time() - start
            m = result.accuracy_matrix
            print(f"| {features} | {name} | {result.average_accuracy:.3f} | "
                  f"{result.forgetting:.3f} | {m[0][0]:.2f} → {m[-1][0]:.2f} | {cpu:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
