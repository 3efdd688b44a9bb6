"""The steps of a store update: read the day's rows and the current version, train a
candidate on them, judge it against the current version. (Committing the outcome belongs to
:class:`~retain.store.store.Store`, which owns the folder.)

An :class:`Update` carries what one step hands the next, so each step reads on one screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from retain.checkpoint import Checkpoint
from retain.errors import RetainError
from retain.learner import Learner
from retain.store.gate import chance_error, gate
from retain.store.guard import DivergenceError
from retain.store.layout import open_version
from retain.store.registry import Registry, Version, now
from retain.store.regressions import flip_failures, row_scores, update_flips
from retain.store.tables import HOLDOUTS, Data, Normalizer, Schema, Table, read_table
from retain.store.training import (
    dataset,
    errors,
    json_float,
    learn,
    position,
    replay_memory,
    rows,
    strategy_label,
)


@dataclass
class Update:
    """One update in progress: the rows read, the candidate learner and its measures."""

    schema: Schema
    settings: dict[str, Any]
    version: Version  # the candidate's record; status and reason set by the judge
    train: Table
    held: Table
    checkpoint: Checkpoint
    learner: Learner
    held_data: TensorDataset
    memory: TensorDataset | None
    before: dict[str, float | None]
    rows_before: dict[str, torch.Tensor | None]
    train_data: TensorDataset | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    diverged: bool = False

    def record(self, **changes: Any) -> Version:
        return replace(self.version, metrics=self.metrics, **changes)


def read(store: Path, registry: Registry, data: Data, holdout: str | Data | None,
         force: bool) -> Update:
    """The day's rows checked against the store's schema, split into rows to learn and rows
    to test on, and the current version loaded and scored on the tests."""
    schema = Schema.from_dict(registry.config["schema"])
    settings = registry.config["settings"]
    table = read_table(data, schema)
    fingerprint = table.fingerprint(schema)
    current = registry.get()
    if not force:
        refuse_learned(registry.lineage(current.id), fingerprint.hash)
    train, held = held_out(table, schema, settings, holdout)
    checkpoint = open_version(store, current)
    learner = checkpoint.learner()
    normalizer = Normalizer.from_dict(checkpoint.normalization)
    held_data, memory = dataset(held, normalizer), replay_memory(learner)
    version = Version(registry.next_id(), current.id, now(), fingerprint.hash,
                      fingerprint.rows, fingerprint.start, fingerprint.end,
                      strategy_label(learner))
    return Update(schema, settings, version, train, held, checkpoint, learner, held_data,
                  memory, errors(learner, held_data, memory),
                  row_scores(learner, held_data, memory))


def train(update: Update) -> None:
    """Learn the rows on top of the current version; a divergence rejects the update."""
    normalizer = Normalizer.from_dict(update.checkpoint.normalization)
    update.train_data = dataset(update.train, normalizer)
    try:
        update.metrics = learn(update.learner, update.train_data, update.settings)
    except DivergenceError as exc:
        where = position(exc.step, len(update.train), update.settings["batch_size"])
        update.diverged = True
        update.metrics = {"train_rows": len(update.train), "diverged_step": exc.step,
                          "diverged_loss": json_float(exc.loss)}
        update.version = replace(update.version, status="rejected", reason=f"{exc} ({where})")


def judge(update: Update, tolerance: float, max_negative_flips: float | None) -> None:
    """Score the candidate on the same sets as the current version and decide."""
    learner, held, memory = update.learner, update.held_data, update.memory
    after = errors(learner, held, memory)
    chance = chance_error(update.schema, update.train_data, held)
    flips = update_flips(update.rows_before, row_scores(learner, held, memory), tolerance)
    promote, reason = gate(update.before, after, tolerance, chance)
    if failed := flip_failures(flips, max_negative_flips):
        reason = "; ".join(failed if promote else [reason, *failed])
        promote = False
    update.metrics = {**update.metrics, "holdout_rows": len(update.held),
                      "memory_rows": rows(memory), "tolerance": tolerance,
                      "holdout_chance_error": chance, **after,
                      **{f"{k}_before": v for k, v in update.before.items()}, **flips,
                      "max_negative_flips": max_negative_flips}
    update.version = replace(update.version, status="promoted" if promote else "rejected",
                             reason=reason, current=promote)


def held_out(table: Table, schema: Schema, settings: dict[str, Any],
             holdout: str | Data | None) -> tuple[Table, Table]:
    """``(rows to learn, rows to test on)`` for an update."""
    holdout = settings["holdout"] if holdout is None else holdout
    if isinstance(holdout, str) and holdout in HOLDOUTS:
        return table.split(settings["holdout_fraction"], holdout)
    return table, read_table(holdout, schema)


def refuse_learned(lineage: list[Version], data_hash: str) -> None:
    for v in lineage:
        if v.data_hash == data_hash:
            raise RetainError(f"this data ({v.data_rows} rows, {v.data_start} .. {v.data_end}) "
                              f"was already learned by version {v.id}; pass --force "
                              "(force=True) to learn it again")
