"""Running a bench grid's runs as Ray tasks: a local Ray, or a cluster given its address.

The runs, their records and the results file are the process pool's
(:mod:`retain.bench.runner`, which passes its :func:`~retain.bench.runner.execute` in, so
this module imports nothing back): each task is that function, which never raises, and at
most ``workers`` tasks are in flight, so an interrupted grid loses only those and resumes as
before. A task whose worker dies becomes an error record (retried on resume).
Ray comes with ``pip install 'retain[distributed]'``; on a cluster every node needs retain
installed (docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from retain.extras import require


def ray_results(todo: list[dict[str, Any]], execute: Callable[[dict[str, Any]], dict[str, Any]],
                workers: int | None = None, address: str | None = None
                ) -> Iterator[dict[str, Any]]:
    """Records of ``todo``'s runs (each ``execute(run)``) as their Ray tasks finish. Without
    ``address`` a local Ray with ``workers`` CPUs is started (and stopped afterwards); with
    one, that cluster's CPUs bound the tasks in flight."""
    ray = require("ray", "distributed")
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": workers, "object_store_memory": 100 * 2**20}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
    try:
        workers = workers or int(ray.cluster_resources().get("CPU", 1))
        yield from _drain(ray, ray.remote(num_cpus=1, max_retries=0)(execute), todo, workers)
    finally:
        if started:
            ray.shutdown()


def _drain(ray, task, todo: list[dict[str, Any]], workers: int) -> Iterator[dict[str, Any]]:
    queue = iter(todo)
    running = {}
    for run in queue:
        running[task.remote(run)] = run
        if len(running) >= workers:
            break
    while running:
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            run = running.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # the worker itself died (killed, out of memory)
                yield {"id": run["id"], "run": run, "status": "error",
                       "error": f"worker died: {type(exc).__name__}: {exc}", "wall_s": 0.0}
            nxt = next(queue, None)
            if nxt is not None:
                running[task.remote(nxt)] = nxt
