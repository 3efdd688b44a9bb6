"""Do the simulated machine types really differ? docs/vibration.md's "Tasks really differ"
table: a `VibrationCNN` trained on one machine type only (Adam lr 3e-3, batch 32; `raw` 12
epochs, `envelope` 15), tested on every type of ``make_dataset(9, n_per_class=128, seed=0)``
(96 training and 32 test windows per class and type; chance is 0.25). One torch thread;
a few minutes on a 2-core machine.

    python benchmarks/vibration_transfer.py [--features raw,envelope] [--types 9]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import TensorDataset

EPOCHS = {"raw": 12, "envelope": 15}


def train(features: str, train: TensorDataset, seed: int = 0) -> torch.nn.Module:
    from retain.vibration import VibrationCNN

    torch.manual_seed(seed)
    model = VibrationCNN(n_classes=4, length=2048, features=features)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = train.tensors[0], train.tensors[1]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS[features]):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


@torch.inference_mode()
def accuracy(model: torch.nn.Module, test: TensorDataset) -> float:
    x, y = test.tensors[0], test.tensors[1]
    return float((model(x).argmax(1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="raw,envelope")
    ap.add_argument("--types", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from retain.vibration import make_dataset

    data = make_dataset(args.types, n_per_class=128, seed=0)
    kinds = args.features.split(",")
    print("| trained on | " + " | ".join(f"`{k}`, {EPOCHS[k]} epochs: same type | `{k}`: "
                                         "other types" for k in kinds) + " |")
    print("|---|" + "---|---|" * len(kinds))
    for i, machine in enumerate(data.machines):
        cells = []
        for kind in kinds:
            model = train(kind, data.for_machine(i)[0])
            scores = [accuracy(model, data.for_machine(j)[1]) for j in range(len(data.machines))]
            others = [s for j, s in enumerate(scores) if j != i]
            cells += [f"{scores[i]:.2f}", f"{min(others):.2f}–{max(others):.2f}"]
        print(f"| {i} {machine.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
