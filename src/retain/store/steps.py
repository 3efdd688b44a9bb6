"""The steps of a store update: read the day's rows and the current version, train a
candidate on them, judge it against the current version. (Committing the outcome belongs to
:class:`~retain.store.store.Store`, which owns the folder.)

An :class:`Update` carries what one step hands the next, so each step reads on one screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.checkpoint import Checkpoint
from retain.errors import RetainError
from retain.learner import Learner
from retain.store.gate import Check, decide, labels_check, rise_check, row_errors
from retain.store.guard import DivergenceError
from retain.store.layout import open_version, rows_file
from retain.store.pool import Pool, concat
from retain.store.registry import Registry, Version, now
from retain.store.regressions import flip_failures, update_flips
from retain.store.tables import (
    HOLDOUTS,
    Data,
    Normalizer,
    Schema,
    Table,
    classes_dict,
    grow_schema,
    read_table,
    version_schema,
)
from retain.store.training import (
    dataset,
    json_float,
    learn,
    position,
    replay_memory,
    rows,
    strategy_label,
)

GATE_DEFAULTS = {"holdout_window": 1, "min_holdout": 20, "significance": 0.05}


@dataclass
class Update:
    """One update in progress: the rows read, the candidate learner and its measures."""

    schema: Schema
    settings: dict[str, Any]
    version: Version  # the candidate's record; status and reason set by the judge
    train: Table  # the day's rows to learn, with rows that left the pool or waited
    today: Table  # the day's rows, all of them
    today_held: Table
    held: Table  # the pooled holdout: the day's held-out rows and the pool's
    pool: Pool  # what the candidate's version keeps held out
    checkpoint: Checkpoint
    learner: Learner
    normalizer: Normalizer
    memory: TensorDataset | None
    before: dict[str, torch.Tensor | None]  # the current version's per-row errors
    known: Schema  # the schema of the current version: the classes it knows
    normalization: dict[str, Any]  # what the candidate's checkpoint keeps with its weights
    train_data: TensorDataset | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    diverged: bool = False

    def record(self, **changes: Any) -> Version:
        return replace(self.version, metrics=self.metrics, **changes)

    def data(self, table: Table) -> TensorDataset:
        return dataset(table, self.normalizer)


def read(store: Path, registry: Registry, data: Data, holdout: str | Data | None,
         force: bool) -> Update:
    """The day's rows checked against the store's schema, split into rows to learn and rows
    to test on (with the pool of earlier held-out rows), and the current version loaded and
    scored on the tests."""
    base = Schema.from_dict(registry.config["schema"])
    settings = {**GATE_DEFAULTS, **registry.config["settings"]}
    current = registry.get()
    checkpoint = open_version(store, current)
    known = version_schema(base, checkpoint.normalization)
    schema = grow_schema(data, known)  # labels the version has not seen are new classes
    today = read_table(data, schema)
    fingerprint = today.fingerprint(base)
    if not force:
        refuse_learned(registry.lineage(current.id), fingerprint.hash)
    new_id = registry.next_id()
    pool = _pool(store, registry, current, today)
    train, today_held = held_out(today, schema, settings, holdout)
    waiting = [] if pool.waiting is None else [pool.waiting]
    if _pooled(settings, holdout):
        aged, kept = pool.age(settings["holdout_window"])
        train, held = concat([*waiting, aged, train]), concat([kept.table, today_held])
        pool = kept.merge(Pool.of(today_held, new_id))
    else:
        train, held, pool = concat([*waiting, train]), today_held, replace(pool, waiting=None)
    learner = checkpoint.learner()
    normalizer = Normalizer.from_dict(checkpoint.normalization)
    normalization = dict(checkpoint.normalization)
    if schema.task == "classification":
        normalization["classes"] = classes_dict(schema)
    version = Version(new_id, current.id, now(), fingerprint.hash, fingerprint.rows,
                      fingerprint.start, fingerprint.end, strategy_label(learner))
    update = Update(schema, settings, version, train, today, today_held, held, pool,
                    checkpoint, learner, normalizer, replay_memory(learner), {}, known,
                    normalization)
    update.before = _row_errors(update)  # the current version, before it grows
    if schema.n_outputs > known.n_outputs:
        learner.grow_classes(schema.n_outputs)
    return update


def train(update: Update) -> None:
    """Learn the rows on top of the current version; a divergence rejects the update."""
    update.train_data = update.data(update.train)
    try:
        update.metrics = learn(update.learner, update.train_data, update.settings)
    except DivergenceError as exc:
        where = position(exc.step, len(update.train), update.settings["batch_size"])
        update.diverged = True
        update.metrics = {"train_rows": len(update.train), "diverged_step": exc.step,
                          "diverged_loss": json_float(exc.loss)}
        update.version = replace(update.version, status="rejected", reason=f"{exc} ({where})")


def judge(update: Update, tolerance: float, max_negative_flips: float | None) -> None:
    """Score the candidate on the same rows as the current version and decide: the pooled
    holdout and the replay memory must not get worse beyond doubt, and the day's labels
    must not look wrong (:mod:`retain.store.gate`)."""
    s, before, after = update.settings, update.before, _row_errors(update)
    sig, least = s["significance"], s["min_holdout"]
    old = _old_rows(update, update.held)
    checks = [rise_check("holdout", _pick(before["holdout"], old), _pick(after["holdout"], old),
                         tolerance, sig, least),
              rise_check("replay memory", before["memory"], after["memory"], tolerance, sig,
                         least),
              _new_classes(update, after["holdout"], ~old),
              _labels(update, after), _chance(update, after)]
    promote, reason = decide(checks)
    flips = update_flips({k: _scores(update, v) for k, v in before.items() if k in SETS},
                         {k: _scores(update, v) for k, v in after.items() if k in SETS},
                         tolerance)
    if (failed := flip_failures(flips, max_negative_flips)) and promote is not False:
        reason, promote = "; ".join(failed), False
    elif failed:
        reason = "; ".join([reason, *failed])
    if promote is None:
        reason += "; its rows wait for the next update"
    update.metrics = {**update.metrics, **_measures(update, before, after), **flips,
                      "tolerance": tolerance, "max_negative_flips": max_negative_flips,
                      "rows_wait": promote is None}
    if promote is None:  # the day's rows wait, and the pool stays as it was
        pool, stay = update.pool, update.pool.generation != update.version.id
        update.pool = Pool(pool.table.rows(np.flatnonzero(stay)), pool.generation[stay],
                           concat([update.train, update.today_held]))
    update.version = replace(update.version, status="promoted" if promote else "rejected",
                             reason=reason, current=bool(promote))


SETS = ("holdout", "memory")


def _old_rows(update: Update, table: Table) -> torch.Tensor:
    """Which rows are of classes the current version knows (all, for regression)."""
    if update.schema.task != "classification":
        return torch.ones(len(table), dtype=torch.bool)
    return torch.from_numpy(np.asarray(table.y) < update.known.n_outputs)


def _pick(errors: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if errors is None or not bool(rows.any()) else errors[rows]


def _new_classes(update: Update, errors: torch.Tensor | None, rows: torch.Tensor
                 ) -> Check | None:
    """The classes the update brings must be learned: the candidate's error on their
    held-out rows below chance (judged on at least ``min_holdout`` rows)."""
    new = _pick(errors, rows)
    if new is None:
        return None
    names = _new_names(update)
    if len(new) < update.settings["min_holdout"]:
        return Check("cannot judge", f"new classes {names}: {len(new)} held-out rows, too few "
                                     f"to judge (at least {update.settings['min_holdout']})")
    error, chance = float(new.mean()), 1.0 - 1.0 / update.schema.n_outputs
    if error < chance:
        return Check("passed", f"new classes {names} error {error:.4f}")
    return Check("failed", f"new classes {names} not learned: error {error:.4f}, chance "
                           f"{chance:.4f}")


def _new_names(update: Update) -> str:
    ids = range(update.known.n_outputs, update.schema.n_outputs)
    names = [update.schema.classes[i] if update.schema.classes else str(i) for i in ids]
    return ", ".join(names)


def _row_errors(update: Update) -> dict[str, torch.Tensor | None]:
    learner = update.learner
    return {"holdout": row_errors(learner, update.data(update.held)),
            "memory": row_errors(learner, update.memory),
            "today": row_errors(learner, update.data(update.today)),
            "today_held": row_errors(learner, update.data(update.today_held))}


def _scores(update: Update, errors: torch.Tensor | None) -> torch.Tensor | None:
    """Per-row errors back as :func:`~retain.store.regressions.row_scores` gives them."""
    if errors is None:
        return None
    return (errors < 0.5) if update.schema.task == "classification" else errors


def _chance_rows(update: Update, table: Table, level: Table | None = None) -> torch.Tensor:
    """Per-row errors of a model that learned nothing but the level of ``level``'s rows."""
    if update.schema.task == "classification":
        return torch.full((len(table),), 1.0 - 1.0 / update.schema.n_outputs,
                          dtype=torch.float64)
    y = update.data(table).tensors[1].double()
    centre = update.data(table if level is None else level).tensors[1].double().mean()
    return (y - centre) ** 2


def _labels(update: Update, after: dict[str, torch.Tensor | None]) -> Check | None:
    before = update.before
    least = update.settings["min_holdout"]
    kept = update.held.rows(np.arange(len(update.held) - len(update.today_held)))
    if len(kept) >= least:
        reference, reference_chance = before["holdout"][: len(kept)], _chance_rows(update, kept)
    elif update.memory is not None:
        reference = before["memory"]
        memory = Table(update.memory.tensors[0].numpy(), update.memory.tensors[1].numpy(), None)
        reference_chance = _chance_memory(update, memory)
    else:
        return None
    if after["today_held"] is None:
        return None
    candidate_chance = _chance_rows(update, update.today_held, update.train)
    old = _old_rows(update, update.today)
    return labels_check(_pick(before["today"], old), _pick(_chance_rows(update, update.today),
                                                           old),
                        float(reference.mean()), float(reference_chance.mean()),
                        float(after["today_held"].mean()), float(candidate_chance.mean()),
                        update.settings["significance"], least)


def _chance_memory(update: Update, memory: Table) -> torch.Tensor:
    """Chance errors on the replay memory (already standardised)."""
    if update.schema.task == "classification":
        return torch.full((len(memory),), 1.0 - 1.0 / update.schema.n_outputs,
                          dtype=torch.float64)
    y = torch.from_numpy(memory.y).double()
    return (y - y.mean()) ** 2


def _chance(update: Update, after: dict[str, torch.Tensor | None]) -> Check | None:
    """The day's held-out rows predicted no better than chance (judged on enough rows)."""
    errors = after["today_held"]
    if errors is None or len(errors) < update.settings["min_holdout"]:
        return None
    chance = float(_chance_rows(update, update.today_held, update.train).mean())
    error = float(errors.mean())
    if error < chance:
        return Check("passed", "")
    return Check("failed", f"holdout error {error:.4f} is no better than chance "
                           f"({chance:.4f}): shuffled, constant or unrelated labels?")


def _measures(update: Update, before: dict[str, torch.Tensor | None],
              after: dict[str, torch.Tensor | None]) -> dict[str, Any]:
    def mean(errors: torch.Tensor | None) -> float | None:
        return None if errors is None else float(errors.mean())

    chance = float(_chance_rows(update, update.held, update.train).mean())
    return {"holdout_rows": len(update.held), "today_holdout_rows": len(update.today_held),
            "memory_rows": rows(update.memory), "holdout_chance_error": chance,
            "holdout_error": mean(after["holdout"]), "memory_error": mean(after["memory"]),
            "holdout_error_before": mean(before["holdout"]),
            "memory_error_before": mean(before["memory"]),
            "today_error_before": mean(before["today"]),
            "new_classes": list(range(update.known.n_outputs, update.schema.n_outputs))}


def _pooled(settings: dict[str, Any], holdout: str | Data | None) -> bool:
    holdout = settings["holdout"] if holdout is None else holdout
    return isinstance(holdout, str) and holdout in HOLDOUTS


def _pool(store: Path, registry: Registry, current: Version, like: Table) -> Pool:
    """The current version's pool, or the pool and waiting rows of an update after it that
    could not be judged."""
    latest = registry.get(registry.next_id() - 1)
    if latest.id > current.id and latest.metrics.get("rows_wait"):
        return Pool.load(rows_file(store, latest.id), like)
    return replace(Pool.load(rows_file(store, current.id), like), waiting=None)


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
