"""A small HTTP client of the recommendation service that outlives server restarts.

The traffic driver and the serving benchmark talk to the service over plain JSON only
(they never import `liveq.serving`). A connection error or a 5xx answer is retried with
the same body, so a feedback event keeps its idempotency key and a server killed and
restarted in the middle of a run loses nothing and counts nothing twice; a 4xx answer is
the caller's mistake and raises `UsageError` with the service's message.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from liveq.core.errors import UsageError

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


class ServiceClient:
    """Calls to one service; thread-safe (one `httpx.Client` with a pooled connection per
    thread), so a thread pool can keep several requests in flight."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 30.0,
                 retry_for_s: float = 120.0, max_connections: int = 64):
        headers = {"X-API-Key": api_key} if api_key else {}
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                 limits=limits)
        self.retry_for_s = retry_for_s
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of `method path` with `body`, retried on connection errors and
        5xx answers for up to `retry_for_s` seconds."""
        deadline = time.monotonic() + self.retry_for_s
        wait = RETRY_FIRST_S
        while True:
            try:
                response = self.http.request(method, path, json=body)
                if response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + wait > deadline:
                raise UsageError(f"{method} {self.url}{path} failed for "
                                 f"{self.retry_for_s:g} s; last: {problem}")
            self.retries += 1
            time.sleep(wait)
            wait = min(2 * wait, RETRY_MAX_S)
        if response.status_code >= 400:
            raise UsageError(f"{method} {path}: the service answered "
                             f"{response.status_code}: {_detail(response)}")
        return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:300]
    except ValueError:
        return response.text[:300]
