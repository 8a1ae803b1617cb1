"""A lean HTTP/1.1 client for load generation: keep-alive connections on asyncio streams.

`liveq bench serve` runs its load generator on the same two cores as the service, so
every millisecond of client CPU is taken from the server it measures. httpx (with
httpcore, h11 and anyio under it) spent 2-4 ms of CPU per request there, more than the
service itself; this client writes each request as one pre-formatted byte string and
reads the answer by its `Content-Length`, about a tenth of that. It speaks only what the
benchmark needs: JSON bodies, `Content-Length` framing (the service never streams), one
request at a time per connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """A connection that failed or an answer this client cannot read."""


class Answer:
    """A status code and a body (`json()` decodes it)."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes):
        self.status_code, self.content = status_code, content

    def json(self) -> Any:
        return json.loads(self.content)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> Answer:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise HttpError("an answer without Content-Length")
        return Answer(status, await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """Up to `max_connections` keep-alive connections to `base_url`; `post(path, body)`
    waits for a free one (as httpx's pool does); a failed connection is dropped and its
    request raised as `HttpError`, as is a request not answered within `timeout` s."""

    def __init__(self, base_url: str, max_connections: int, timeout: float = 30.0):
        self.timeout = timeout
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._header = f"Host: {self.host}:{self.port}\r\n"
        self._free: asyncio.Queue[_Connection | None] = asyncio.Queue()
        for _ in range(max_connections):
            self._free.put_nowait(None)  # a slot not connected yet
        self._open: set[_Connection] = set()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for conn in self._open:
            conn.close()
        self._open.clear()

    def request_bytes(self, method: str, path: str, body: Any) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        return (f"{method} {path} HTTP/1.1\r\n{self._header}Content-Type: application/json"
                f"\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data

    async def post(self, path: str, body: Any) -> Answer:
        return await self.send(self.request_bytes("POST", path, body))

    async def get(self, path: str) -> Answer:
        return await self.send(f"GET {path} HTTP/1.1\r\n{self._header}\r\n".encode())

    async def send(self, request: bytes) -> Answer:
        """The answer to `request`; `HttpError` when it took over `timeout` seconds
        (waiting for a connection included) or its connection failed."""
        try:
            return await asyncio.wait_for(self._send(request), self.timeout)
        except asyncio.TimeoutError:
            raise HttpError(f"no answer within {self.timeout:g} s") from None

    async def _send(self, request: bytes) -> Answer:
        conn = await self._free.get()
        try:
            if conn is None:
                conn = _Connection(*await asyncio.open_connection(self.host, self.port))
                self._open.add(conn)
            answer = await conn.exchange(request)
        except BaseException as exc:  # a failure or a timeout's cancellation
            if conn is not None:  # its stream may hold half an answer: never reuse it
                conn.close()
                self._open.discard(conn)
            self._free.put_nowait(None)
            if isinstance(exc, (OSError, asyncio.IncompleteReadError,
                                asyncio.LimitOverrunError, ValueError, HttpError)):
                raise HttpError(f"{type(exc).__name__}: {exc}") from None
            raise
        self._free.put_nowait(conn)
        return answer
