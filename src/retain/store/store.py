"""A folder of versioned learners with a gated daily update.

Layout::

    DIR/registry.sqlite     the history (see :mod:`retain.store.registry`)
    DIR/versions/000001/    one checkpoint folder per version (see :mod:`retain.checkpoint`)
    DIR/.lock               taken by every writer (see :mod:`retain.store.lock`)

An update loads the current version, learns the new rows with its strategies, and scores the
candidate and the current version on the same evaluation sets: a holdout of new data that is
kept out of training (the most recent rows, or a file) and the current version's replay memory
as a stand-in for old data. The candidate is promoted only if neither error rose by more than
the tolerance; otherwise it is kept, marked rejected, with the reason. Checkpoints are written
before the registry names them and never modified after, so a crash at any point leaves the
last good version intact; leftovers of a crash are removed by the next writer.
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.torch
import torch
from torch import nn
from torch.utils.data import TensorDataset

from retain.buffers import ReplayBuffer
from retain.checkpoint import Checkpoint, open_checkpoint, save_learner
from retain.checkpoint.atomic import TEMP_PREFIX, write_file
from retain.checkpoint.recipes import recorded_model
from retain.distributed import World
from retain.distributed import current as current_world
from retain.errors import RetainError
from retain.learner import Learner
from retain.optim import make_optimizer
from retain.store.guard import DivergenceError, DivergenceGuard
from retain.store.lock import LOCK_FILE, StoreLock
from retain.store.log import log_version
from retain.store.registry import REGISTRY_FILE, Registry, Version, now
from retain.store.regressions import check_limit, flip_failures, row_scores, update_flips
from retain.store.tables import (
    HOLDOUTS,
    Data,
    Normalizer,
    Schema,
    Table,
    read_frame,
    read_table,
)
from retain.strategies import Strategy, make_strategy

VERSIONS = "versions"
DEFAULT_WAIT = 60.0


class Store:
    """A model store in folder ``path``: ``init`` once, then ``update`` with each day's data.

    Data is a DataFrame or a CSV/Parquet path; here a day's rows are classed by their sign:

    >>> import tempfile
    >>> def day(seed, n=200):
    ...     x = np.random.default_rng(seed).normal(size=(n, 2))
    ...     kind = np.where(x.sum(axis=1) > 0, "high", "low")
    ...     return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "kind": kind})
    >>> store = Store(Path(tempfile.mkdtemp()) / "my-store")
    >>> store.init(day(0), label="kind", epochs=10).status
    'promoted'
    >>> [store.update(day(d)).status for d in (1, 2)]
    ['promoted', 'promoted']
    >>> [v.id for v in store.history() if v.current]
    [3]
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- creating ----------------------------------------------------------------------------
    def init(self, data: Data, *, label: str = "label", time: str | None = None,
             features: Sequence[str] | None = None, task: str | None = None,
             model: str = "mlp", model_args: dict[str, Any] | None = None,
             strategies: Sequence[Strategy | str] = ("replay",), optimizer: str = "adam",
             lr: float = 1e-3, epochs: int = 5, batch_size: int = 32,
             holdout: str = "recent", holdout_fraction: float = 0.2, seed: int = 0) -> Version:
        """Create the store and train its first version on ``data`` (promoted).

        ``task`` is inferred from the label column (integers or text: classification; real
        numbers: regression) unless given. Inputs (and regression targets) are standardised
        with statistics of this first data set, kept with every version. ``holdout`` and
        ``holdout_fraction`` set how updates keep rows out to test on (see :meth:`update`);
        ``epochs`` and ``batch_size`` apply to every update too.
        """
        self._check_new_folder()
        frame, source = read_frame(data)
        schema = Schema.infer(frame, label, time, list(features) if features else None, task,
                              source)
        table = read_table(frame, schema)
        settings = {"epochs": int(epochs), "batch_size": int(batch_size),
                    "holdout": holdout, "holdout_fraction": float(holdout_fraction)}
        train, held = table.split(holdout_fraction, holdout)
        normalizer = Normalizer.fit(train, schema)
        learner = _new_learner(schema, model, model_args or {}, strategies, optimizer, lr, seed)
        try:
            stats = _learn(learner, _dataset(train, normalizer), settings)
        except DivergenceError as exc:
            raise RetainError(f"the first version did not train: {exc}; lower the learning "
                              "rate or check the data") from None
        metrics = {**stats, "holdout_rows": len(held),
                   "holdout_error": _error(learner, _dataset(held, normalizer))}
        fingerprint = table.fingerprint(schema)
        first = Version(1, None, now(), fingerprint.hash, fingerprint.rows, fingerprint.start,
                        fingerprint.end, _label(learner), metrics, "promoted", "first version",
                        current=True)
        self.path.mkdir(parents=True, exist_ok=True)
        with StoreLock(self.path, wait=0, purpose="init"):
            self._check_new_folder()
            self._clean(set())
            save_learner(learner, self._folder(1), normalization=normalizer.to_dict())
            Registry.create(self.path, {"schema": schema.to_dict(), "settings": settings}, first)
        return first

    # -- the daily update --------------------------------------------------------------------
    def update(self, data: Data, *, holdout: str | Data | None = None, tolerance: float = 0.02,
               force: bool = False, wait: float = DEFAULT_WAIT,
               max_negative_flips: float | None = None, loggers: Sequence = ()) -> Version:
        """Learn ``data`` on top of the current version and promote the result only if it
        passes the gate. Returns the new version (promoted or rejected, with the reason).

        ``holdout`` is ``"recent"`` (the most recent rows of ``data``, kept out of training),
        ``"random"`` (a random sample of them: better when each file spans a cycle, such as a
        day of half-hourly demand, whose last hours are unlike the rest) or a file/DataFrame of
        rows to evaluate on; the default is the store's setting (``init(holdout=...)``).
        ``tolerance`` is how much either error may rise (errors are 1 - accuracy, or MSE of
        standardised targets). Data already learned by the current version or its ancestors is
        refused unless ``force``. ``wait`` is how long to wait for another writer to finish.
        The candidate's flip rates against the current version on both sets are recorded
        (a regression row flips when its error moves by more than ``tolerance``);
        ``max_negative_flips`` (a share of rows) also rejects a candidate whose negative
        flip rate on either set exceeds it. ``loggers`` (:mod:`retain.loggers`) get the
        version's measures at step = its id.

        Under ``torchrun`` every rank runs the update (docs/distributed.md): rank 0 holds the
        lock and writes the checkpoint and the registry, every rank trains its share, and
        every rank returns the same decision.
        """
        check_limit(max_negative_flips)
        world = current_world()
        with self._ranks_writing(world, wait, "update") as registry:
            schema = Schema.from_dict(registry.config["schema"])
            settings = registry.config["settings"]
            table = read_table(data, schema)
            fingerprint = table.fingerprint(schema)
            current = registry.get()
            if not force:
                _refuse_learned(registry.lineage(current.id), fingerprint.hash)
            train, held = _held_out(table, schema, settings, holdout)
            checkpoint = self._open(current)
            learner = checkpoint.learner()
            normalizer = Normalizer.from_dict(checkpoint.normalization)
            held_data, memory = _dataset(held, normalizer), replay_memory(learner)
            before = _errors(learner, held_data, memory)
            rows_before = row_scores(learner, held_data, memory)
            new = Version(registry.next_id(), current.id, now(), fingerprint.hash,
                          fingerprint.rows, fingerprint.start, fingerprint.end,
                          _label(learner))
            train_data = _dataset(train, normalizer)
            try:
                stats = _learn(learner, train_data, settings)
            except DivergenceError as exc:
                reason = f"{exc} ({_position(exc.step, len(train), settings['batch_size'])})"
                rejected = _with(new, status="rejected", reason=reason,
                                 metrics={"train_rows": len(train), "diverged_step": exc.step,
                                          "diverged_loss": _json_float(exc.loss)})
                if not world.main:
                    return rejected
                registry.add(rejected)
                log_version(loggers, registry.get(new.id), settings)
                return registry.get(new.id)
            after = _errors(learner, held_data, memory)
            chance = chance_error(schema, train_data, held_data)
            flips = update_flips(rows_before, row_scores(learner, held_data, memory), tolerance)
            promote, reason = gate(before, after, tolerance, chance)
            if failed := flip_failures(flips, max_negative_flips):
                reason = "; ".join(failed if promote else [reason, *failed])
                promote = False
            metrics = {**stats, "holdout_rows": len(held), "memory_rows": _rows(memory),
                       "tolerance": tolerance, "holdout_chance_error": chance, **after,
                       **{f"{k}_before": v for k, v in before.items()}, **flips,
                       "max_negative_flips": max_negative_flips}
            if not world.main:  # rank 0 writes what every rank holds
                return _with(new, metrics=metrics, reason=reason, current=promote,
                             status="promoted" if promote else "rejected")
            save_learner(learner, self._folder(new.id), normalization=checkpoint.normalization)
            registry.add(_with(new, metrics=metrics))
            registry.decide(new.id, "promoted" if promote else "rejected", reason, metrics)
            log_version(loggers, registry.get(new.id), settings)
            return registry.get(new.id)

    def rollback(self, to: int | None = None, wait: float = DEFAULT_WAIT) -> Version:
        """Make an earlier version current again (default: the current version's parent)."""
        with self._writing(wait, "rollback") as registry:
            current = registry.get()
            if to is None:
                if current.parent is None:
                    raise RetainError(f"version {current.id} is the first version; there is "
                                      "nothing to roll back to")
                to = current.parent
            target = registry.get(to)
            if target.id == current.id:
                raise RetainError(f"version {target.id} is already the current version")
            if target.status not in ("promoted", "rolled-back"):
                raise RetainError(f"version {target.id} was {target.status} ({target.reason}); "
                                  "only versions that passed the gate can be restored")
            self._open(target)  # verify it is intact before switching to it
            registry.rollback(current.id, target.id)
            return registry.get(target.id)

    # -- reading -----------------------------------------------------------------------------
    def history(self) -> list[Version]:
        """Every version, oldest first; ``current`` marks the one serving predictions."""
        with self._registry() as registry:
            return registry.versions()

    def read(self, version: int | None = None) -> tuple[Version, dict[str, Any], Checkpoint]:
        """A version's record (default: the current one), the store's schema (as saved)
        and the version's checkpoint, read in one look at the registry: what a server
        loads to answer for that version."""
        with self._registry() as registry:
            chosen = registry.get(version)
            schema = registry.config["schema"]
        return chosen, schema, self._open(chosen)

    def load(self, version: int | None = None) -> Learner:
        """The learner of a version (default: the current one), ready to predict or train."""
        with self._registry() as registry:
            return self._open(registry.get(version)).learner()

    def predict(self, data: Data, version: int | None = None) -> pd.DataFrame:
        """Predictions for the rows of ``data`` (label column optional), in their order: class
        names or ids, or targets in their original units; with the time column if present."""
        with self._registry() as registry:
            schema = Schema.from_dict(registry.config["schema"])
            checkpoint = self._open(registry.get(version))
        table = read_table(data, schema, need_label=False)
        normalizer = Normalizer.from_dict(checkpoint.normalization)
        learner = checkpoint.learner(restore_rng=False)
        out = learner.predict(torch.from_numpy(normalizer.inputs(table.x)))
        if schema.task == "regression":
            values = normalizer.target.inverse_target(out.reshape(-1)).numpy()
        elif schema.classes:
            values = np.asarray(schema.classes, dtype=object)[out.numpy()]
        else:
            values = out.numpy()
        result = pd.DataFrame({"prediction": values})
        if table.times is not None:
            result.insert(0, schema.time, table.times)
        return result

    def export(self, out: str | Path, version: int | None = None) -> Path:
        """Plain weights of a version as one safetensors file for serving elsewhere; its
        metadata ``retain`` holds the model recipe, columns and normalisation (JSON)."""
        with self._registry() as registry:
            chosen = registry.get(version)
            schema = registry.config["schema"]
        checkpoint = self._open(chosen)
        about = {"version": chosen.id, "model": checkpoint.manifest["spec"]["model"],
                 "schema": schema, "normalization": checkpoint.manifest["normalization"]}
        data = safetensors.torch.save(checkpoint.sections["model"],
                                      metadata={"retain": json.dumps(about)})
        write_file(Path(out), data)
        return Path(out)

    # -- internals ---------------------------------------------------------------------------
    def _registry(self) -> Registry:
        return Registry(self.path)

    def _folder(self, version: int) -> Path:
        return self.path / VERSIONS / f"{version:06d}"

    def _open(self, version: Version) -> Checkpoint:
        folder = self._folder(version.id)
        if not folder.exists():
            raise RetainError(f"version {version.id} has no checkpoint: it was "
                              f"{version.status} before it was saved ({version.reason})")
        return open_checkpoint(folder)

    @contextmanager
    def _writing(self, wait: float, purpose: str) -> Iterator[Registry]:
        """The store's registry, held under the write lock, with crash leftovers removed."""
        with self._registry() as registry:  # a folder that is not a store gets no lock file
            with StoreLock(self.path, wait, purpose):
                self._clean(registry.ids())
                registry.reject_undecided()
                yield registry

    @contextmanager
    def _ranks_writing(self, world: World, wait: float, purpose: str) -> Iterator[Registry]:
        """:meth:`_writing` on rank 0; the other ranks read the registry once rank 0 holds the
        lock (and fail with rank 0's error if it could not take it)."""
        if world.size == 1:
            with self._writing(wait, purpose) as registry:
                yield registry
            return
        with ExitStack() as stack:
            error = None
            if world.main:
                try:
                    registry = stack.enter_context(self._writing(wait, purpose))
                except RetainError as exc:
                    error = str(exc)
            error = world.broadcast(error)
            if error is not None:
                raise RetainError(error)
            if not world.main:
                registry = stack.enter_context(self._registry())
            yield registry

    def _clean(self, known: set[int]) -> None:
        """Remove temporaries and checkpoint folders the registry never recorded (a crash
        between writing a checkpoint and recording it). Runs under the lock only."""
        for leftover in self.path.glob(f"{TEMP_PREFIX}*"):
            leftover.unlink()
        versions = self.path / VERSIONS
        for entry in versions.iterdir() if versions.is_dir() else ():
            if entry.name.startswith(TEMP_PREFIX) or (
                    entry.name.isdigit() and int(entry.name) not in known):
                shutil.rmtree(entry)

    def _check_new_folder(self) -> None:
        if (self.path / REGISTRY_FILE).exists():
            raise RetainError(f"{self.path} is already a retain store; use `retain update`")
        if self.path.exists() and not self.path.is_dir():
            raise RetainError(f"{self.path} is a file; choose a folder for the store")
        other = sorted(e.name for e in self.path.iterdir() if e.name not in (LOCK_FILE, VERSIONS)
                       and not e.name.startswith(TEMP_PREFIX)) if self.path.exists() else []
        if other:
            raise RetainError(f"{self.path} is not empty ({', '.join(other[:5])}); choose a new "
                              "or empty folder for the store")


def gate(before: dict[str, float | None], after: dict[str, float | None],
         tolerance: float, chance: float | None = None) -> tuple[bool, str]:
    """``(promote, reason)``: promote unless an error rose by more than ``tolerance``, or the
    candidate predicts the holdout no better than ``chance`` (a model that learned nothing):
    then the new data itself looks wrong, even if learning it did little harm."""
    failed, passed = [], []
    if chance is not None and not after["holdout_error"] < chance:
        failed.append(f"holdout error {after['holdout_error']:.4f} is no better than chance "
                      f"({chance:.4f}): shuffled, constant or unrelated labels?")
    for key, what in (("holdout_error", "holdout"), ("memory_error", "replay memory")):
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            continue
        if new <= old + tolerance:  # NaN fails
            passed.append(f"{what} error {old:.4f} -> {new:.4f}")
        else:
            failed.append(f"{what} error rose {old:.4f} -> {new:.4f} (tolerance {tolerance:g})")
    return (False, "; ".join(failed)) if failed else (True, "; ".join(passed))


def replay_memory(learner: Learner) -> TensorDataset | None:
    """A copy of the learner's replay memories (inputs, labels): the stand-in for old data."""
    parts = [s.buffer.contents() for s in learner.strategies
             if isinstance(getattr(s, "buffer", None), ReplayBuffer) and len(s.buffer)]
    if not parts:
        return None
    return TensorDataset(torch.cat([p["x"] for p in parts]), torch.cat([p["y"] for p in parts]))


def _new_learner(schema: Schema, model: str, model_args: dict[str, Any],
                 strategies: Sequence[Strategy | str], optimizer: str, lr: float,
                 seed: int) -> Learner:
    from retain.models import MODELS

    accepted = inspect.signature(MODELS[model]).parameters if model in MODELS else {}
    sizes = {"in_features": len(schema.features), "out_features": schema.n_outputs}
    args = {**{k: v for k, v in sizes.items() if k in accepted}, **model_args}
    torch.manual_seed(seed)
    net = recorded_model(model, **args)
    built = [s if isinstance(s, Strategy) else make_strategy(s) for s in strategies]
    loss = nn.CrossEntropyLoss() if schema.task == "classification" else nn.MSELoss()
    return Learner(net, make_optimizer(optimizer, net.parameters(), lr=lr), loss=loss,
                   strategies=[*built, DivergenceGuard()], seed=seed)


def _held_out(table: Table, schema: Schema, settings: dict[str, Any],
              holdout: str | Data | None) -> tuple[Table, Table]:
    """``(rows to learn, rows to test on)`` for an update."""
    holdout = settings["holdout"] if holdout is None else holdout
    if isinstance(holdout, str) and holdout in HOLDOUTS:
        return table.split(settings["holdout_fraction"], holdout)
    return table, read_table(holdout, schema)


def _learn(learner: Learner, data: TensorDataset, settings: dict[str, Any]) -> dict[str, Any]:
    stats = learner.learn(data, epochs=settings["epochs"], batch_size=settings["batch_size"])
    return {"train_rows": len(data), "steps": stats.steps, "train_loss": stats.last_loss,
            "train_seconds": round(stats.seconds, 3)}


def _dataset(table: Table, normalizer: Normalizer) -> TensorDataset:
    return TensorDataset(torch.from_numpy(normalizer.inputs(table.x)),
                         torch.from_numpy(normalizer.targets(table.y)))


def _error(learner: Learner, data: TensorDataset) -> float:
    score = learner.evaluate(data)
    return 1.0 - score if learner.task_type == "classification" else score


def chance_error(schema: Schema, train: TensorDataset, holdout: TensorDataset) -> float:
    """The error of a model that learned nothing but the level of the new data: uniform
    guessing over the classes, or always predicting the mean target of the rows learned."""
    if schema.task == "classification":
        return 1.0 - 1.0 / schema.n_outputs
    y = holdout.tensors[1].double()
    return float((y - train.tensors[1].double().mean()).pow(2).mean())


def _errors(learner: Learner, holdout: TensorDataset,
            memory: TensorDataset | None) -> dict[str, float | None]:
    return {"holdout_error": _error(learner, holdout),
            "memory_error": None if memory is None else _error(learner, memory)}


def _refuse_learned(lineage: list[Version], data_hash: str) -> None:
    for v in lineage:
        if v.data_hash == data_hash:
            raise RetainError(f"this data ({v.data_rows} rows, {v.data_start} .. {v.data_end}) "
                              f"was already learned by version {v.id}; pass --force "
                              "(force=True) to learn it again")


def _position(step: int, rows: int, batch_size: int) -> str:
    per_epoch = math.ceil(rows / batch_size)
    epoch, batch = divmod(step - 1, per_epoch)
    return f"epoch {epoch + 1}, batch {batch + 1} of {per_epoch}"


def _label(learner: Learner) -> str:
    return "+".join(s.name for s in learner.strategies if not isinstance(s, DivergenceGuard))


def _rows(data: TensorDataset | None) -> int:
    return 0 if data is None else len(data)


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _with(version: Version, **changes: Any) -> Version:
    return Version(**{**version.to_dict(), **changes})
