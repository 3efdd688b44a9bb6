"""A lean HTTP/1.1 load generator for loopback benchmarks: keep-alive connections on asyncio
(uvloop when installed) that send pre-encoded requests and read each answer's status line,
``Content-Length`` and body.

Why not httpx: on a 2-core machine the client shares the cores with the server it measures,
and httpx's CPU per request (not measured by a script here) was enough that the first
benchmark measured mostly its own cost. This client spends a small fraction of that (measured by
``serve_load.py``) and still checks every answer: a status other than 2xx, a dropped connection
or a malformed answer counts as failed, and the body is returned for the caller to read.

It speaks only what a benchmark needs: one request in flight per connection, answers with a
``Content-Length`` (no chunked bodies), no TLS, no redirects.

>>> request(b"POST", "/predict", b'{"rows": []}', "127.0.0.1:8000")[:24]
b'POST /predict HTTP/1.1\\r\\n'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping


def request(method: bytes, path: str, body: bytes, host: str,
            headers: Mapping[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 request with a JSON ``body`` (built once, sent many times)."""
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: " + host.encode(),
             b"Content-Type: application/json", b"Content-Length: %d" % len(body),
             *(f"{k}: {v}".encode() for k, v in (headers or {}).items())]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


IDLE_S = 4.0  # a connection idle longer is not reused: uvicorn closes them after 5 s


class Failed(Exception):
    """An answer that is not a 2xx, or no answer (connection dropped, malformed reply)."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`send` sends a request and waits for its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: asyncio.Future | None = None
        self.need = -1  # bytes of head + body of the answer being read, once its head is in
        self.status = self.start = 0
        self.used = 0.0  # when its last answer came
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, conn = await asyncio.get_running_loop().create_connection(cls, host, port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(Failed(f"connection lost: {exc or 'closed by server'}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower() + b"\r\n"
            at = head.find(b"\r\ncontent-length:")
            if not head.startswith(b"http/1.1 ") or at < 0:
                return self._fail(f"malformed answer head {head[:80]!r}")
            self.status = int(head[9:12])
            self.start = end + 4
            self.need = self.start + int(head[at + 17: head.index(b"\r\n", at + 2)])
        if len(self.buffer) >= self.need:
            body = bytes(self.buffer[self.start:self.need])
            del self.buffer[:self.need]
            self.need, waiting, self.waiting = -1, self.waiting, None
            if waiting is not None and not waiting.done():
                if 200 <= self.status < 300:
                    waiting.set_result(body)
                else:
                    waiting.set_exception(Failed(f"status {self.status}: {body[:200]!r}"))

    def _fail(self, why: str) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(Failed(why))
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes, timeout: float) -> bytes:
        """Send one request; the body of its 2xx answer, or :class:`Failed`
        (:class:`TimeoutError` after ``timeout`` seconds, and the connection is closed)."""
        if self.closed or self.transport is None:
            raise Failed("connection closed")
        loop = asyncio.get_running_loop()
        self.waiting = waiting = loop.create_future()
        timer = loop.call_later(timeout, self._timeout, waiting)
        self.transport.write(data)
        try:
            return await waiting
        finally:
            timer.cancel()

    def _timeout(self, waiting: asyncio.Future) -> None:
        if not waiting.done():
            waiting.set_exception(TimeoutError("no answer in time"))
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Up to ``size`` connections to ``host:port``; a request takes an idle one or opens one."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self.idle: list[Connection] = []
        self.open = 0

    def full(self) -> bool:
        return not self.idle and self.open >= self.size

    async def send(self, data: bytes, timeout: float = 10.0) -> bytes:
        conn = None
        while self.idle and conn is None:
            conn = self.idle.pop()
            if conn.closed or now() - conn.used > IDLE_S:  # closed, or the server may close it
                conn.close()
                self.open -= 1
                conn = None
        if conn is None:
            self.open += 1
            try:
                conn = await Connection.open(self.host, self.port)
            except OSError as exc:
                self.open -= 1
                raise Failed(f"cannot connect: {exc}") from exc
        try:
            body = await conn.send(data, timeout)
        except BaseException:
            conn.close()
            self.open -= 1
            raise
        conn.used = now()
        self.idle.append(conn)
        return body

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def now() -> float:
    return time.perf_counter()
