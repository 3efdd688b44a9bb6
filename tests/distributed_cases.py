"""Runs under ``torchrun --nproc-per-node 2`` for tests/test_distributed.py (gloo on CPU).

Every case builds the same learner as :func:`build` builds in one process, trains it on
:func:`stream`, and rank by rank writes what the test compares (weights, memories, gradients,
error messages) to ``OUT/<case>.rank<r>.pt``. Usage: ``torchrun ... distributed_cases.py OUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from retain import Learner
from retain.distributed import close, init
from retain.errors import RetainError
from retain.strategies import make_strategy
from retain.strategies.base import Strategy

#: experience sizes: even steps, an uneven last step (37 = 4 x 8 + 5: 3 rows on rank 0, 2 on
#: rank 1, each rank's loss weighted by its share) and a last step of 2 rows
SIZES = (40, 37, 34)
BATCH = 4  # per rank; one process uses 2 x BATCH
WEIGHT_CASES = {
    "naive": "naive", "ewc": "ewc:lambda_=5", "online-ewc": "online-ewc:lambda_=5,gamma=0.9",
    "lwf": "lwf:alpha=1", "si": "si:c=0.1", "mas": "mas:lambda_=0.5",
}
MEMORY_CASES = {"replay": "replay:capacity=20", "derpp": "derpp:capacity=20",
                "er-ace": "er-ace:capacity=20",
                "class-balanced": "replay:capacity=20,policy=class-balanced",
                "experience-balanced": "replay:capacity=20,policy=experience-balanced"}


class Rows(Dataset):
    """A dataset that is not tensor-backed: batches come through a DataLoader."""

    def __init__(self, data: TensorDataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def stream() -> list[TensorDataset]:
    g = torch.Generator().manual_seed(7)
    return [TensorDataset(torch.randn(n, 6, generator=g),
                          torch.randint(2 * i, 2 * i + 2, (n,), generator=g))
            for i, n in enumerate(SIZES)]


def strategy(spec: str) -> Strategy:
    name, _, args = spec.partition(":")
    params = dict(a.split("=") for a in args.split(",") if a)
    params = {k: int(v) if k in ("capacity", "sample_size", "epochs") else
              v if k == "policy" else float(v) for k, v in params.items()}
    return make_strategy(name, **params)


def build(specs: list[str] | str, extra: list[Strategy] = ()) -> Learner:
    specs = [specs] if isinstance(specs, str) else specs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 6))
    return Learner(model, torch.optim.SGD(model.parameters(), lr=0.1),
                   strategies=[*map(strategy, specs), *extra], seed=3)


def train(learner: Learner, batch_size: int, experiences=None) -> Learner:
    data = stream()
    for i in experiences if experiences is not None else range(len(data)):
        learner.learn(data[i], batch_size=batch_size)
    return learner


def weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.model.state_dict().items()}


def memory(learner: Learner) -> dict[str, torch.Tensor]:
    buffer = learner.strategies[0].buffer
    return {k: v.clone() for k, v in buffer.contents().items()}


class GradientLog(Strategy):
    """Records the gradients the optimizer is about to apply (after A-GEM's projection)."""

    name = "gradient-log"
    distributed = True

    def __init__(self) -> None:
        super().__init__()
        self.log: list[list[torch.Tensor]] = []

    def after_backward(self, learner, batch) -> None:
        self.log.append([p.grad.clone() for p in learner.model.parameters()])


def refused(make) -> str:
    try:
        make()
    except RetainError as exc:
        return str(exc)
    return "no error"


def run_cases(out: Path, rank: int) -> None:
    def save(case: str, value) -> None:
        torch.save(value, out / f"{case}.rank{rank}.pt")

    for case, spec in WEIGHT_CASES.items():
        save(case, weights(train(build(spec), BATCH)))
    learner = build("naive")
    for data in stream():
        learner.learn(Rows(data), batch_size=BATCH)
    save("dataset", weights(learner))
    for case, spec in MEMORY_CASES.items():
        learner = train(build(spec), BATCH)
        save(case, {"weights": weights(learner), "memory": memory(learner)})
    log = GradientLog()
    learner = train(build("agem:capacity=20,sample_size=4", [log]), BATCH)
    save("agem", {"weights": weights(learner), "grads": log.log})
    for spec in ("gdumb:capacity=12,epochs=1", "icarl:capacity=12"):
        learner = train(build(spec), BATCH)
        save(spec.split(":")[0], {"weights": weights(learner),
                                  "memory": dict(learner.strategies[0].memory)})
    resume(out, save)
    save("errors", {
        "hyperparameters": refused(lambda: build(f"ewc:lambda_={1 + rank}")),
        "strategy": refused(lambda: build("naive", [Strategy()])),
        "world": refused(lambda: build("naive").learn(TensorDataset(*stream()[0][:1]),
                                                       batch_size=BATCH)),
    })


def resume(out: Path, save) -> None:
    """Train, checkpoint after the first experience, go on; then resume from the checkpoint."""
    spec = ["derpp:capacity=20", "ewc:lambda_=5"]
    learner = train(build(spec), BATCH, [0])
    learner.save(out / "checkpoint")
    straight = weights(train(learner, BATCH, [1, 2]))
    resumed = train(Learner.load(out / "checkpoint", model=build(spec).model), BATCH, [1, 2])
    save("resume", {"straight": straight, "resumed": weights(resumed),
                    "memory": memory(resumed)})


if __name__ == "__main__":
    world = init(backend="gloo", timeout_s=60)
    torch.set_num_threads(1)
    try:
        run_cases(Path(sys.argv[1]), world.rank)
    finally:
        close()
