"""Running a bench grid in worker processes, with a results file that makes it resumable.

Each finished run is appended to ``runs.jsonl`` as one line (flushed and fsynced), so a grid
killed at any moment loses at most the runs in flight; starting it again skips every run
whose id already has a line with ``status: ok``. A run that raises is recorded with
``status: error`` and its message, and the grid goes on (errored runs are retried on resume).
"""

from __future__ import annotations

import functools
import inspect
import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.bench.grid import JOINT
from retain.bench.log import log_record
from retain.data import materialize
from retain.errors import RetainError
from retain.evaluation import StreamEvaluator
from retain.learner import Learner
from retain.metrics import RunResult
from retain.optim import make_optimizer
from retain.scenarios import Experience
from retain.scenarios.catalog import build_model, build_scenario
from retain.strategies import STRATEGIES, make_strategy

RESULTS_FILE = "runs.jsonl"


# -- one run -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _stream(scenario: str, seed: int, experiences: int | None):
    return build_scenario(scenario, seed=seed, n_experiences=experiences)


def execute(run: dict[str, Any]) -> dict[str, Any]:
    """Train and test one run; never raises (errors become a record)."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        result = _train(run)
        record = {"status": "ok", "result": result.to_dict()}
    except Exception as exc:  # a crashing run must not stop the grid
        record = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=8)}
    return {"id": run["id"], "run": run, **record, "wall_s": time.perf_counter() - start}


def _train(run: dict[str, Any], stream=None) -> RunResult:
    """Train and test one run on its scenario (or on ``stream``: the search's validation
    split)."""
    stream = stream if stream is not None else _stream(run["scenario"], run["seed"],
                                                       run["experiences"])
    model = build_model(stream, model=run["model"], hidden=tuple(run["hidden"]),
                        seed=run["seed"])
    if run["init"] == "xavier":
        xavier_init(model)
    names = [name for name, _ in run["strategy"]]
    strategies = [make_strategy(n, **_seeded(n, p, run["seed"])) for n, p in run["strategy"]
                  if n != JOINT]
    learner = Learner(model, make_optimizer(run["optimizer"], model.parameters(), lr=run["lr"]),
                      strategies=strategies, seed=run["seed"])
    if JOINT in names:
        return train_joint(learner, stream, run)
    return learner.run(stream, epochs=run["epochs"], batch_size=run["batch_size"])


def xavier_init(model: torch.nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every linear layer (mammoth's MLP init;
    it matters: ER on Seq-MNIST loses ~4 points with PyTorch's default init)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def _seeded(name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """A strategy's own sampling seed follows the run's seed unless the grid sets it."""
    accepts = "seed" in inspect.signature(STRATEGIES[name].__init__).parameters
    return {"seed": seed, **params} if accepts else params


def train_joint(learner, stream, run: dict[str, Any]) -> RunResult:
    """Upper bound: one pass over the union of all experiences, then test on each."""
    evaluator = StreamEvaluator(learner, [e.test for e in stream],
                                [e.task_label for e in stream])
    baseline = evaluator()
    union = TensorDataset(*(torch.cat(column) for column in
                            zip(*(materialize(e.train) for e in stream), strict=True)))
    stats = learner.learn(Experience(union), epochs=run["epochs"],
                          batch_size=run["batch_size"])
    row = evaluator()
    T = len(stream)
    return RunResult(np.tile(row, (T, 1)), baseline, [stats.seconds] + [0.0] * (T - 1),
                     [stats.samples] + [0] * (T - 1), experience_names=[e.name for e in stream])


# -- the results file ----------------------------------------------------------------------
def read_records(out: Path) -> list[dict[str, Any]]:
    """All records of a results file (a torn last line from a kill is ignored)."""
    path = Path(out) / RESULTS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each run id (a successful rerun supersedes an error)."""
    by_id: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("status") == "ok" or by_id.get(r["id"], {}).get("status") != "ok":
            by_id[r["id"]] = r
    return by_id


def _append(out: Path, record: dict[str, Any]) -> None:
    with open(Path(out) / RESULTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


# -- the grid ------------------------------------------------------------------------------
def pending(runs: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Runs without a successful record in ``out``."""
    done = {i for i, r in latest(read_records(out)).items() if r["status"] == "ok"}
    return [r for r in runs if r["id"] not in done]


def run_grid(runs: list[dict[str, Any]], out: Path, workers: int | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None,
             backend: str = "process", address: str | None = None,
             loggers: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Run every pending run (``workers`` processes, default one per core; ``backend="ray"``:
    Ray tasks on a local Ray or the cluster at ``address``), appending each record to
    ``out/runs.jsonl`` as it finishes. Returns the records written now.
    ``loggers`` (:mod:`retain.loggers`) get each finished run's summary as it comes in."""
    if backend not in ("process", "ray"):
        raise RetainError(f"backend must be 'process' or 'ray', got {backend!r}")
    if address is not None and backend != "ray":
        raise RetainError("a Ray address needs the ray backend (--backend ray)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = pending(runs, out)
    if (workers or 1) < 1:
        raise RetainError(f"workers must be >= 1, got {workers}")
    if backend == "ray" and todo:
        from retain.bench.ray_pool import ray_results

        results = ray_results(todo, execute, workers or None, address)
    else:
        results = _results(todo, workers or os.cpu_count() or 1)
    written = []
    for record in results:
        _append(out, record)
        written.append(record)
        log_record(loggers, record, len(written))
        if progress is not None:
            progress(record)
    return written


def _results(todo: list[dict[str, Any]], workers: int) -> Iterator[dict[str, Any]]:
    if workers == 1 or len(todo) <= 1:
        for run in todo:
            yield execute(run)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a threaded torch process
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context)
    queue = iter(todo)
    running: dict[Future, dict[str, Any]] = {}
    try:
        for run in queue:  # keep at most `workers` in flight, so a kill loses few
            running[pool.submit(execute, run)] = run
            if len(running) >= workers:
                break
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future, None)
                if run is None:  # resubmitted after a worker died
                    continue
                try:
                    yield future.result()
                except Exception as exc:  # the worker process itself died
                    yield {"id": run["id"], "run": run, "status": "error",
                           "error": f"worker died: {type(exc).__name__}: {exc}", "wall_s": 0.0}
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
                    running = {pool.submit(execute, r): r for r in running.values()}
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(execute, nxt)] = nxt
    finally:
        for future in running:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
