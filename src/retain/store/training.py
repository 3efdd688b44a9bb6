"""The store's training helpers: building a version's learner, learning a table's rows,
and measuring errors the gate compares."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain.buffers import ReplayBuffer
from retain.checkpoint.recipes import recorded_model
from retain.learner import Learner
from retain.optim import make_optimizer
from retain.store.guard import DivergenceGuard
from retain.store.tables import Normalizer, Schema, Table
from retain.strategies import Strategy, make_strategy


def new_learner(schema: Schema, model: str, model_args: dict[str, Any],
                strategies: Sequence[Strategy | str], optimizer: str, lr: float,
                seed: int) -> Learner:
    """A first version's learner: the model sized to the schema, the strategies, and a
    divergence guard last."""
    from retain.models import MODELS

    accepted = inspect.signature(MODELS[model]).parameters if model in MODELS else {}
    sizes = {"in_features": len(schema.features), "out_features": schema.n_outputs,
             "n_classes": schema.n_outputs}
    if schema.shape is not None:  # signals [channels, time], e.g. the vibration CNN
        sizes.update(in_channels=schema.shape[0], length=schema.shape[1])
    args = {**{k: v for k, v in sizes.items() if k in accepted}, **model_args}
    torch.manual_seed(seed)
    net = recorded_model(model, **args)
    built = [s if isinstance(s, Strategy) else make_strategy(s) for s in strategies]
    loss = nn.CrossEntropyLoss() if schema.task == "classification" else nn.MSELoss()
    return Learner(net, make_optimizer(optimizer, net.parameters(), lr=lr), loss=loss,
                   strategies=[*built, DivergenceGuard()], seed=seed)


def learn(learner: Learner, data: TensorDataset, settings: dict[str, Any]) -> dict[str, Any]:
    """Learn ``data`` with the store's epochs and batch size; the statistics for the history.
    Raises :class:`~retain.store.guard.DivergenceError` when the loss diverges."""
    stats = learner.learn(data, epochs=settings["epochs"], batch_size=settings["batch_size"])
    return {"train_rows": len(data), "steps": stats.steps, "train_loss": stats.last_loss,
            "train_seconds": round(stats.seconds, 3)}


def dataset(table: Table, normalizer: Normalizer) -> TensorDataset:
    """A table's rows as the model reads them (standardised inputs and targets)."""
    return TensorDataset(torch.from_numpy(normalizer.inputs(table.x)),
                         torch.from_numpy(normalizer.targets(table.y)))


def error(learner: Learner, data: TensorDataset) -> float:
    """1 - accuracy, or the MSE of standardised targets."""
    score = learner.evaluate(data)
    return 1.0 - score if learner.task_type == "classification" else score


def errors(learner: Learner, holdout: TensorDataset,
           memory: TensorDataset | None) -> dict[str, float | None]:
    return {"holdout_error": error(learner, holdout),
            "memory_error": None if memory is None else error(learner, memory)}


def replay_memory(learner: Learner) -> TensorDataset | None:
    """A copy of the learner's replay memories (inputs, labels): the stand-in for old data."""
    parts = [s.buffer.contents() for s in learner.strategies
             if isinstance(getattr(s, "buffer", None), ReplayBuffer) and len(s.buffer)]
    if not parts:
        return None
    return TensorDataset(torch.cat([p["x"] for p in parts]), torch.cat([p["y"] for p in parts]))


def position(step: int, rows: int, batch_size: int) -> str:
    """Where a step falls in an update, for messages.

    >>> position(7, 100, 32)
    'epoch 2, batch 3 of 4'
    """
    per_epoch = math.ceil(rows / batch_size)
    epoch, batch = divmod(step - 1, per_epoch)
    return f"epoch {epoch + 1}, batch {batch + 1} of {per_epoch}"


def strategy_label(learner: Learner) -> str:
    """The strategies of a version as the history shows them (the guard left out)."""
    return "+".join(s.name for s in learner.strategies if not isinstance(s, DivergenceGuard))


def rows(data: TensorDataset | None) -> int:
    return 0 if data is None else len(data)


def json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
