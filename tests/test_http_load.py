"""The benchmark's lean HTTP client (benchmarks/http_load.py) against a tiny asyncio server:
a 2xx body comes back whole even when it arrives in pieces; an error status, a dropped
connection and a silent server are failures, never answers."""

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from http_load import Failed, Pool, request  # noqa: E402


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        path = head.split(b" ")[1]
        if path == b"/close":
            writer.close()
            return
        if path == b"/silent":
            await asyncio.sleep(5)
        status, body = (b"500 Internal Server Error", b'{"detail": "boom"}') if \
            path == b"/bad" else (b"200 OK", b'{"version": 3}')
        answer = (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        writer.write(answer[:40])  # in two pieces: the client must wait for the rest
        await writer.drain()
        writer.write(answer[40:])
        await writer.drain()


def test_answers_failures_and_timeouts():
    async def run():
        server = await asyncio.start_server(_handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool, host = Pool("127.0.0.1", port, 2), f"127.0.0.1:{port}"
        out = [await pool.send(request(b"POST", "/ok", b"{}", host)) for _ in range(3)]
        assert pool.open == 1  # one keep-alive connection served all three
        with pytest.raises(Failed, match="status 500"):
            await pool.send(request(b"POST", "/bad", b"{}", host))
        with pytest.raises(Failed, match="connection lost"):
            await pool.send(request(b"POST", "/close", b"{}", host))
        with pytest.raises(TimeoutError):
            await pool.send(request(b"POST", "/silent", b"{}", host), timeout=0.2)
        assert pool.open == 0  # every failed connection was dropped
        pool.close()
        server.close()
        return out
    assert asyncio.run(run()) == [b'{"version": 3}'] * 3
