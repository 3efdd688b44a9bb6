"""A real ``retain serve`` process on a free loopback port, for the serve tests and the docs.

Every server is started in its own process group and killed (SIGKILL) when the ``with`` block
ends, whatever happened; an update process it started is waited for, so no test leaves one
running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START_TIMEOUT = 60.0


def rows(n: int, seed: int, invert: bool = False) -> pd.DataFrame:
    """Two features; the class is 'high' when their sum is positive (a margin of 0.3 keeps it
    learnable to ~0 error, so an honest update always passes the gate)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4 * n, 2))
    x = x[np.abs(x.sum(axis=1)) > 0.3][:n]
    high = x.sum(axis=1) > 0
    if invert:
        high = ~high
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1],
                         "kind": np.where(high, "high", "low")})


def make_store(path: Path) -> Path:
    from retain.store import Store

    Store(path).init(rows(200, 0), label="kind", model_args={"hidden": (16,)},
                     holdout="random", lr=0.01, epochs=10, batch_size=16)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, store: Path, log: Path):
        self.proc, self.port, self.store, self.log = proc, port, store, log
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def kill(self) -> None:
        """SIGKILL the server and its workers (the update process has its own session)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.http.close()

    def wait(self, check, timeout: float = 60.0, what: str = "the condition",
             every: float = 0.1):
        """Poll ``check()`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()}")
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what}; server log: {self.log.read_text()}")

    def predict(self, frame: pd.DataFrame, **extra) -> dict:
        body = {"rows": frame.drop(columns=["kind"], errors="ignore").to_dict("records"), **extra}
        response = self.http.post("/predict", json=body)
        assert response.status_code == 200, response.text
        return response.json()


def update_idle(store: Path) -> bool:
    from retain.serve.policy import update_running

    return not update_running(store)


@contextmanager
def serving(store: Path, *args: str, token: str | None = TOKEN, log_dir: Path | None = None):
    """Start ``retain serve --store STORE --port 0 ARGS`` and yield a :class:`Server` once it
    answers on the port it printed."""
    env = {k: v for k, v in os.environ.items() if k != "RETAIN_SERVE_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        env["RETAIN_SERVE_TOKEN"] = token
    log = Path(tempfile.mkstemp(prefix="serve-", suffix=".log", dir=log_dir or store.parent)[1])
    cmd = [sys.executable, "-m", "retain.cli", "serve", "--store", str(store), "--port", "0",
           "--poll", "0.2", *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    server = Server(proc, 0, store, log)
    try:
        server.port = server.wait(lambda: _printed_port(log), START_TIMEOUT, "the port line")
        server.url = f"http://127.0.0.1:{server.port}"
        server.http.close()
        server.http = httpx.Client(base_url=server.url, timeout=30)
        server.wait(lambda: _answers(server), START_TIMEOUT, "the server to start")
        yield server
    finally:
        server.kill()
        deadline = time.monotonic() + 60
        while not update_idle(store) and time.monotonic() < deadline:
            time.sleep(0.1)


def _printed_port(log: Path) -> int | None:
    """The port in the line ``serving ... on http://127.0.0.1:PORT``, once it is printed."""
    found = re.search(r"on http://127\.0\.0\.1:(\d+) ", log.read_text())
    return int(found.group(1)) if found else None


def _answers(server: Server) -> bool:
    try:
        return server.http.get("/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False

