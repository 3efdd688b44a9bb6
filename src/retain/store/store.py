"""A folder of versioned learners with a gated daily update.

The folder's layout is :mod:`retain.store.layout`'s. An update (:mod:`retain.store.steps`)
reads the day's rows, trains a candidate, has :mod:`retain.store.gate` judge it, and commits.
It loads the current version, learns the new rows with its strategies, and scores the
candidate and the current version on the same evaluation sets: a holdout of new data that is
kept out of training (the most recent rows, or a file) and the current version's replay memory
as a stand-in for old data. The candidate is promoted only if neither error rose by more than
the tolerance; otherwise it is kept, marked rejected, with the reason. Checkpoints are written
before the registry names them and never modified after, so a crash at any point leaves the
last good version intact; leftovers of a crash are removed by the next writer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.torch
import torch

from retain.checkpoint import Checkpoint, save_learner
from retain.checkpoint.atomic import write_file
from retain.distributed import World
from retain.distributed import current as current_world
from retain.errors import RetainError
from retain.learner import Learner
from retain.store import steps
from retain.store.gate import chance_error, gate, gate_settings
from retain.store.guard import DivergenceError
from retain.store.layout import (
    check_new_folder,
    clean,
    open_version,
    rows_file,
    version_folder,
)
from retain.store.lock import StoreLock
from retain.store.log import log_version
from retain.store.pool import Pool
from retain.store.registry import Registry, Version, now
from retain.store.regressions import check_limit
from retain.store.tables import (
    Data,
    Normalizer,
    Schema,
    read_frame,
    read_table,
    version_schema,
)
from retain.store.training import dataset, error, learn, new_learner, replay_memory, strategy_label
from retain.store.windows import is_windows, read_windows
from retain.strategies import Strategy

__all__ = ["Store", "chance_error", "gate", "replay_memory"]

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
             holdout: str = "recent", holdout_fraction: float = 0.2, holdout_window: int = 1,
             min_holdout: int = 20, significance: float = 0.05, seed: int = 0) -> Version:
        """Create the store and train its first version on ``data`` (promoted).

        ``task`` is inferred from the label column (integers or text: classification; real
        numbers: regression) unless given. Inputs (and regression targets) are standardised
        with statistics of this first data set, kept with every version. ``holdout`` and
        ``holdout_fraction`` set how updates keep rows out to test on (see :meth:`update`);
        ``epochs`` and ``batch_size`` apply to every update too. The gate for small files
        (docs/store.md): an update's held-out rows stay out of training for
        ``holdout_window`` updates, pooled into their holdouts, and are learned after; a set
        of fewer than ``min_holdout`` rows is not judged; an error counts as risen only when
        a paired t-test puts the rise above the tolerance at level ``significance``.
        """
        self._check_new_folder()
        if is_windows(data):  # signals: windows of recordings (retain.store.windows)
            schema = Schema.of_windows(read_windows(data), task)
            table = read_table(data, schema)
        else:
            frame, source = read_frame(data)
            schema = Schema.infer(frame, label, time, list(features) if features else None,
                                  task, source)
            table = read_table(frame, schema)
        settings = {"epochs": int(epochs), "batch_size": int(batch_size),
                    "holdout": holdout, "holdout_fraction": float(holdout_fraction),
                    **gate_settings(holdout_window, min_holdout, significance)}
        train, held = table.split(holdout_fraction, holdout)
        normalizer = Normalizer.fit(train, schema)
        learner = new_learner(schema, model, model_args or {}, strategies, optimizer, lr, seed)
        try:
            stats = learn(learner, dataset(train, normalizer), settings)
        except DivergenceError as exc:
            raise RetainError(f"the first version did not train: {exc}; lower the learning "
                              "rate or check the data") from None
        metrics = {**stats, "holdout_rows": len(held),
                   "holdout_error": error(learner, dataset(held, normalizer))}
        fingerprint = table.fingerprint(schema)
        first = Version(1, None, now(), fingerprint.hash, fingerprint.rows, fingerprint.start,
                        fingerprint.end, strategy_label(learner), metrics, "promoted",
                        "first version", current=True)
        self.path.mkdir(parents=True, exist_ok=True)
        with StoreLock(self.path, wait=0, purpose="init"):
            self._check_new_folder()
            self._clean(set())
            save_learner(learner, self._folder(1), normalization=normalizer.to_dict())
            Pool.of(held, 1).save(rows_file(self.path, 1))
            Registry.create(self.path, {"schema": schema.to_dict(), "settings": settings}, first)
        return first

    # -- the daily update --------------------------------------------------------------------
    def update(self, data: Data, *, holdout: str | Data | None = None, tolerance: float = 0.02,
               force: bool = False, wait: float = DEFAULT_WAIT,
               max_negative_flips: float | None = None, loggers: Sequence = ()) -> Version:
        """Learn ``data`` on top of the current version and promote the result only if it
        passes the gate. Returns the new version (promoted or rejected, with the reason).

        ``holdout`` is ``"recent"`` (the most recent rows of ``data``, kept out of training;
        for windows of recordings, the last windows of each recording),
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
            update = steps.read(self.path, registry, data, holdout, force)
            steps.train(update)
            if not update.diverged:
                steps.judge(update, tolerance, max_negative_flips)
            if not world.main:  # rank 0 writes what every rank holds
                return update.record()
            return self._commit(registry, update, loggers)

    def _commit(self, registry: Registry, update: steps.Update, loggers: Sequence) -> Version:
        """Save the candidate's checkpoint, then record it and the gate's decision (a diverged
        candidate is recorded only: its weights are not worth keeping)."""
        decided = update.record()
        update.pool.save(rows_file(self.path, decided.id))
        if update.diverged:
            registry.add(decided)
        else:
            save_learner(update.learner, self._folder(decided.id),
                         normalization=update.normalization)
            registry.add(update.record(status="candidate", reason="", current=False))
            registry.decide(decided.id, decided.status, decided.reason, decided.metrics)
        log_version(loggers, registry.get(decided.id), update.settings)
        return registry.get(decided.id)

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
            schema = Schema.from_dict(registry.config["schema"])
        checkpoint = self._open(chosen)
        return chosen, version_schema(schema, checkpoint.normalization).to_dict(), checkpoint

    def load(self, version: int | None = None) -> Learner:
        """The learner of a version (default: the current one), ready to predict or train."""
        with self._registry() as registry:
            return self._open(registry.get(version)).learner()

    def predict(self, data: Data, version: int | None = None, per: str = "row"
                ) -> pd.DataFrame:
        """Predictions for the rows of ``data`` (label column optional), in their order: class
        names or ids, or targets in their original units; with the time column if present.
        For windows of signals, ``per="recording"`` gives one prediction per recording: the
        class most of its windows got (ties: the first in class order), with that share."""
        if per not in ("row", "recording"):
            raise RetainError(f"per must be 'row' or 'recording', got {per!r}")
        with self._registry() as registry:
            schema = Schema.from_dict(registry.config["schema"])
            checkpoint = self._open(registry.get(version))
        schema = version_schema(schema, checkpoint.normalization)
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
        if table.groups is not None:
            result.insert(0, "recording", table.groups)
        if per == "recording":
            if table.groups is None:
                raise RetainError("per='recording' needs windows with a 'recording' array")
            return vote(result, schema)
        return result

    def export(self, out: str | Path, version: int | None = None) -> Path:
        """Plain weights of a version as one safetensors file for serving elsewhere; its
        metadata ``retain`` holds the model recipe, columns and normalisation (JSON)."""
        chosen, schema, checkpoint = self.read(version)  # the version's classes
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
        return version_folder(self.path, version)

    def _open(self, version: Version) -> Checkpoint:
        return open_version(self.path, version)

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
        clean(self.path, known)

    def _check_new_folder(self) -> None:
        check_new_folder(self.path)


def vote(windows: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """One row per recording: the majority class of its windows and its share of them.

    >>> w = pd.DataFrame({"recording": ["a", "a", "a", "b"],
    ...                   "prediction": ["inner", "normal", "inner", "normal"]})
    >>> vote(w, Schema(("c",), "label", "classification", 2, classes=("inner", "normal")))
      recording prediction  share  windows
    0         a      inner  0.667        3
    1         b     normal  1.000        1
    """
    order = {c: i for i, c in enumerate(schema.classes or ())}
    rows = []
    for recording, group in windows.groupby("recording", sort=False):
        counts = group["prediction"].value_counts()
        best = max(counts.index, key=lambda c: (counts[c], -order.get(c, c)))
        rows.append({"recording": recording, "prediction": best,
                     "share": round(counts[best] / len(group), 3), "windows": len(group)})
    return pd.DataFrame(rows)
