"""Load on ``retain serve`` over loopback: a bounded load generator (``http_load``: raw asyncio
keep-alive connections; a fixed number of requests and a time limit per phase) against a real
server process on this machine.

Phases, each on a fresh copy of one small store (8 features, 3 classes, MLP 64):

1. single-row ``/predict``, closed loop (``--concurrency`` requests in flight), 1 worker and
   2 workers: throughput, p50, p99;
2. single-row ``/predict`` open loop at half the 1,000/s target (``--rate``, 500/s) and at half
   the throughput measured in 1, 2 workers: p50, p99 (send to answer), answered per second;
3. a 90/10 ``/predict``/``/learn`` mix at half the measured throughput (each learn labels an
   earlier prediction);
4. the same mix at ``--rate`` while updates run and the version swaps (about three): failed
   requests, the versions that answered, the updates and their outcome;
5. ``--only forecast``: a forecast store (``retain init --task forecast --quick`` on 40 days of
   the synthetic hourly series, 1 worker): ``GET /forecast`` at ``--forecast-rate`` per second
   while the server is idle, then from the ``POST /observe`` that completes a day (which starts
   the update in its own process) until ``/health`` shows the update over: p50, p99, failed,
   the versions that answered. Not run unless asked for.

Targets (issue #17): >= 1,000 predictions/s with 2 workers, p99 < 25 ms at half that rate,
zero failed requests through an update and swap. The client shares the CPU with the server,
so on a 2-core machine the load generator's own cost is part of every figure (it is printed:
client ms CPU/request).

    python benchmarks/serve_load.py [--requests 4000] [--rate 500] [--seconds 12]
                                    [--update-seconds 30] [--only closed|open|update|forecast]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

try:
    import uvloop
except ImportError:  # the serve extra has it except on Windows
    uvloop = None
from http_load import Failed, Pool, request
from timing import load_average, machine, markdown_table

TOKEN = "benchmark-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEATURES = [f"f{i}" for i in range(8)]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    score = x[:, :4].sum(axis=1) - x[:, 4:].sum(axis=1) / 2
    kind = np.digitize(score, [-1.0, 1.0])
    out = pd.DataFrame(x, columns=FEATURES)
    out["kind"] = np.array(["low", "mid", "high"])[kind]
    return out


def make_store(path: Path) -> None:
    from retain.store import Store

    Store(path).init(frame(2000, 0), label="kind", model_args={"hidden": (64,)},
                     holdout="random", lr=0.01, epochs=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the processes of group ``pgid`` (the server's workers; the
    update process runs in a session of its own and is not counted)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(store: Path, workers: int, *args: str):
    port = free_port()
    env = {**os.environ, "RETAIN_SERVE_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "retain.cli", "serve", "--store", str(store), "--port",
           str(port), "--workers", str(workers), "--poll", "0.2", *args]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server did not start: {' '.join(cmd)}")
            time.sleep(0.2)
        time.sleep(1.0 * workers)  # let every worker finish starting
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        from retain.serve.policy import update_running

        while update_running(store):
            time.sleep(0.2)


class Load:
    """Requests sent, their latencies and failures; every answer is read (the version that
    served it, the prediction id to label later)."""

    def __init__(self, url: str, rows: list[dict], size: int):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.pool = Pool(host, int(port), size)
        self.host = f"{host}:{port}"
        self.predicts = [request(b"POST", "/predict", json.dumps(
            {"rows": [{k: row[k] for k in FEATURES}]}).encode(), self.host) for row in rows]
        self.kinds = [row["kind"] for row in rows]
        self.latencies: list[float] = []
        self.failed = 0  # error statuses, dropped connections, malformed answers
        self.timeouts = 0
        self.versions: set[int] = set()
        self.waiting: deque[tuple[str, str]] = deque()  # (prediction id, its label) to learn
        self.sent = 0
        self.why: dict[str, int] = {}  # failures by message

    async def predict(self, i: int) -> None:
        answer = await self._send(self.predicts[i % len(self.predicts)])
        if answer is not None:
            self.versions.add(answer["version"])
            self.waiting.append((answer["predictions"][0]["id"], self.kinds[i % len(self.kinds)]))

    async def learn(self) -> None:
        if not self.waiting:
            return
        pid, kind = self.waiting.popleft()
        await self._send(request(b"POST", "/learn", json.dumps(
            {"labels": [{"id": pid, "label": kind}]}).encode(), self.host, AUTH))

    async def _send(self, data: bytes) -> dict | None:
        self.sent += 1
        start = time.perf_counter()
        try:
            body = await self.pool.send(data, timeout=10)
        except TimeoutError:  # no answer within 10 s: the machine is overloaded
            self.timeouts += 1
            return None
        except Failed as exc:
            self.failed += 1
            self.why[str(exc)[:120]] = self.why.get(str(exc)[:120], 0) + 1
            return None
        self.latencies.append(time.perf_counter() - start)
        return json.loads(body)

    def summary(self, seconds: float) -> dict:
        ms = np.array(self.latencies) * 1000
        return {"requests": self.sent, "rate": self.sent / seconds,
                "p50": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
                "p99": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
                "failed": self.failed, "why": self.why, "timeouts": self.timeouts,
                "versions": sorted(self.versions)}


async def closed_loop(url: str, rows: list[dict], requests: int, concurrency: int,
                      limit_s: float) -> dict:
    """``requests`` single-row predictions, ``concurrency`` in flight (each sent as soon as
    one answers), stopping early after ``limit_s`` seconds."""
    load, counter = Load(url, rows, concurrency), iter(range(requests))
    deadline = time.perf_counter() + limit_s

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() > deadline:
                return
            await load.predict(i)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.pool.close()
    return load.summary(time.perf_counter() - start)


async def open_loop(url: str, rows: list[dict], rate: float, seconds: float,
                    learn_share: float = 0.0, max_in_flight: int = 256) -> dict:
    """``rate`` requests a second for ``seconds`` (``learn_share`` of them /learn), sent on
    schedule whether or not earlier ones have answered. Bounded: a request due while
    ``max_in_flight`` are unanswered is not sent (counted as shed), and whatever has not
    answered 10 s after the last one was due is cancelled (counted as a timeout)."""
    load, tasks = Load(url, rows, max_in_flight), set()
    total, shed = int(rate * seconds), 0
    every = round(1 / learn_share) if learn_share else 0
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if load.pool.full():
            shed += 1
            continue
        work = load.learn() if every and i % every == every - 1 else load.predict(i)
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    _, late = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
    for task in late:
        task.cancel()
    load.timeouts += len(late)
    result = load.summary(time.perf_counter() - start)
    load.pool.close()
    result["shed"] = shed
    result["rate"] = len(load.latencies) / seconds  # answered per second of schedule
    return result


FORECAST_DAYS = 40  # days of history the forecast store starts from (one more is posted)


def make_forecast_store(path: Path) -> list[dict]:
    """A forecast store made by the CLI from 40 days of the synthetic hourly series; returns
    the 41st and 42nd days as the JSON rows a client posts."""
    from retain.forecasting import synthetic

    frame = synthetic(days=FORECAST_DAYS + 2).frame.reset_index()
    history = path.parent / "history.csv"
    frame.iloc[:FORECAST_DAYS * 24].to_csv(history, index=False)
    done = subprocess.run([sys.executable, "-m", "retain.cli", "init", "--store", str(path),
                           "--data", str(history), "--task", "forecast", "--time", "time",
                           "--label", "Demand", "--covariates", "Temperature,WorkDay",
                           "--known-future", "WorkDay", "--quick"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"retain init failed: {done.stderr}")
    new = frame.iloc[FORECAST_DAYS * 24:]
    return [{"time": t.isoformat(), **{c: float(v) for c, v in row.items() if c != "time"}}
            for t, row in zip(new["time"], new.to_dict("records"), strict=True)]


async def forecast_load(url: str, rate: float, seconds: float, body: bytes | None = None,
                        limit_s: float = 180.0) -> dict:
    """``GET /forecast`` at ``rate`` per second (open loop, bounded like :func:`open_loop`) for
    ``seconds``; with ``body``, that ``POST /observe`` is sent first and the load runs instead
    until ``/health`` no longer shows an update running (at most ``limit_s``)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    pool, where = Pool(host, int(port), 256), f"{host}:{port}"
    get = request(b"GET", "/forecast", b"", where)
    health = request(b"GET", "/health", b"", where)
    latencies: list[float] = []
    versions: set[int] = set()
    failed = timeouts = shed = 0
    why: dict[str, int] = {}

    async def one() -> None:
        nonlocal failed, timeouts
        start = time.perf_counter()
        try:
            answer = await pool.send(get, timeout=10)
        except TimeoutError:
            timeouts += 1
            return
        except Failed as exc:
            failed += 1
            why[str(exc)[:120]] = why.get(str(exc)[:120], 0) + 1
            return
        latencies.append(time.perf_counter() - start)
        versions.add(json.loads(answer)["version"])

    started = None
    if body is not None:
        started = json.loads(await pool.send(request(b"POST", "/observe", body, where, AUTH)))
        if not started["update_started"]:
            raise SystemExit(f"the posted day did not start an update: {started}")
    tasks: set[asyncio.Task] = set()
    start, i, running = time.perf_counter(), 0, body is not None
    while (running and time.perf_counter() - start < limit_s) or (
            body is None and i < rate * seconds):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if running and i % max(1, round(rate / 4)) == 0:  # four health checks a second
            try:
                running = json.loads(await pool.send(health))["update_running"]
            except (Failed, TimeoutError) as exc:
                failed += 1
                why[f"/health: {exc}"[:120]] = why.get(f"/health: {exc}"[:120], 0) + 1
        if pool.full():
            shed += 1
        else:
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        i += 1
    elapsed = time.perf_counter() - start
    _, late = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
    for task in late:
        task.cancel()
    pool.close()
    ms = np.array(latencies) * 1000
    return {"requests": i - shed, "rate": len(latencies) / elapsed, "seconds": elapsed,
            "p50": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
            "p99": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
            "failed": failed, "why": why, "timeouts": timeouts + len(late), "shed": shed,
            "versions": sorted(versions)}


def updates_during(url: str) -> list[dict]:
    return httpx.get(f"{url}/versions", timeout=10).json()["updates"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--update-every", type=int, default=0,
                        help="labels per update in phase 4 (default: about 3 updates)")
    parser.add_argument("--update-seconds", type=float, default=30.0)
    parser.add_argument("--limit-s", type=float, default=60.0)
    parser.add_argument("--forecast-rate", type=float, default=50.0,
                        help="GET /forecast per second in the forecast phase")
    parser.add_argument("--only", choices=["closed", "open", "update", "forecast"],
                        action="append",
                        help="run only these phases (repeatable; default: all but forecast)")
    args = parser.parse_args()
    only = set(args.only or ["closed", "open", "update"])
    if uvloop is not None:  # the client's own loop: the cheaper it is, the less it measures itself
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    capacity = 2 * args.rate
    rows = frame(5000, 1).to_dict("records")
    results: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        make_store(template)

        def fresh(name: str) -> Path:
            path = Path(tmp) / name
            shutil.copytree(template, path)
            return path

        def record(phase: str, workers: int, r: dict, cpu: float, client: float,
                   extra: str = "") -> None:
            per = 1000 / max(1, r["requests"])
            results.append([phase, str(workers), str(r["requests"]), f"{r['rate']:.0f}",
                            f"{r['p50']:.1f}", f"{r['p99']:.1f}", str(r["failed"]),
                            str(r["timeouts"]), str(r.get("shed", "")),
                            f"{per * cpu:.2f}", f"{per * client:.2f}",
                            ",".join(map(str, r["versions"])), extra,
                            f"{load_average():.1f}"])
            print(" | ".join(results[-1]), flush=True)
            if r["why"]:
                print("  failed:", r["why"], flush=True)

        def phase(pgid: int, run) -> tuple[dict, float, float]:
            cpu, client = group_cpu_s(pgid), time.process_time()
            r = asyncio.run(run)
            return r, group_cpu_s(pgid) - cpu, time.process_time() - client

        for workers in (1, 2) if "closed" in only else ():
            with server(fresh(f"closed{workers}"), workers, "--update-every", "0") as (url, g):
                asyncio.run(closed_loop(url, rows, 300, 8, 30))  # warm up
                r, cpu, client = phase(g, closed_loop(url, rows, args.requests,
                                                      args.concurrency, args.limit_s))
                record(f"predict, closed loop ({args.concurrency} in flight)", workers, r, cpu,
                       client)
                capacity = r["rate"]
        half = round(capacity / 2)
        if "open" in only:
            with server(fresh("open"), 2, "--update-every", "0") as (url, g):
                asyncio.run(closed_loop(url, rows, 300, 8, 30))
                record(f"predict at {args.rate:g}/s", 2,
                       *phase(g, open_loop(url, rows, args.rate, args.seconds)))
                record(f"predict at {half}/s (half the measured)", 2,
                       *phase(g, open_loop(url, rows, half, args.seconds)))
                record(f"90/10 mix at {half}/s", 2,
                       *phase(g, open_loop(url, rows, half, args.seconds, 0.1)))
        # about three updates in the phase: every third of the labels it sends
        # at the --rate (half the target): an update takes a core for seconds, so at half the
        # measured capacity the machine would be overloaded while it runs
        every = args.update_every or max(20, int(args.rate * args.update_seconds * 0.1 / 3))
        if "update" in only:
            with server(fresh("update"), 2, "--update-every", str(every)) as (url, g):
                asyncio.run(closed_loop(url, rows, 300, 8, 30))
                r, cpu, client = phase(g, open_loop(url, rows, args.rate, args.update_seconds,
                                                    0.1))
                time.sleep(1)
                done = [f"{u['status']}->{u['version']}" for u in updates_during(url)]
                record(f"90/10 mix at {args.rate:g}/s + updates every {every} labels", 2, r,
                       cpu, client, " ".join(done))
        if "forecast" in only:
            store = Path(tmp) / "forecast" / "store"
            store.parent.mkdir()
            rows = make_forecast_store(store)
            day, future = rows[:24], [{"time": r["time"], "WorkDay": r["WorkDay"]}
                                      for r in rows[24:]]
            with server(store, 1) as (url, g):
                first = json.dumps({"future": [{"time": r["time"], "WorkDay": r["WorkDay"]}
                                               for r in day]}).encode()
                httpx.post(f"{url}/observe", content=first, headers={
                    **AUTH, "Content-Type": "application/json"}, timeout=30).raise_for_status()
                httpx.get(f"{url}/forecast", timeout=30).raise_for_status()  # computed once
                rate = args.forecast_rate
                record(f"forecast store: GET /forecast at {rate:g}/s, idle", 1,
                       *phase(g, forecast_load(url, rate, args.seconds)))
                observe = json.dumps({"rows": day, "future": future}).encode()
                r, cpu, client = phase(g, forecast_load(url, rate, args.seconds, observe))
                done = [f"{u['status']}->{u['id']}" for u in httpx.get(
                    f"{url}/versions", timeout=10).json()["versions"][1:]]
                record(f"forecast store: GET /forecast at {rate:g}/s from the POST /observe "
                       f"completing a day until the update is over ({r['seconds']:.1f} s)",
                       1, r, cpu, client, " ".join(done))
    print()
    print(f"machine: {machine()}; client and server share it; load = 1-min load average")
    print("req/s: answered per second (open loop: per second of the schedule); shed: due while "
          "256 were unanswered, not sent")
    print("server ms CPU/request: CPU seconds of the server's processes per request (the "
          "capacity if the client ran elsewhere: 1000 / it per core)")
    print(markdown_table(["phase", "workers", "requests", "req/s", "p50 ms", "p99 ms",
                          "failed", "timeouts", "shed", "server ms CPU/request",
                          "client ms CPU/request", "versions",
                          "updates", "load"], results))


if __name__ == "__main__":
    main()
