"""The two hot routes, `POST /v1/recommend` and `POST /v1/feedback`, answered without
FastAPI's request machinery.

Profiled under load, a single feedback event spent about 90% of its server CPU in the
framework around the route (request objects, exit stacks, dependency solving, response
validation and encoding) and about 10% logging the event. This ASGI middleware sits
inside the body limit and the request timing and answers those two routes itself: the
body is validated by the same pydantic model in one call (`model_validate_json`), the
service answers, and the JSON goes out in two ASGI messages. The answers are the ones
the FastAPI routes give: the same status codes, a `RequestError` as its status with
`{"detail": ...}`, invalid input as a 422 naming the fields (`problem_detail`). The
FastAPI routes stay declared, so the OpenAPI schema is unchanged, and they still answer
any request this path passes on (a body that is not `application/json`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from liveq.core.errors import LiveqError, RequestError

Handler = Callable[[Any], Awaitable[dict[str, Any]]]
JSON_TYPE = b"application/json"


def problem_detail(errors: list[dict[str, Any]]) -> str:
    """Validation errors as one line: `field.path: message; ...` (the first five)."""
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
                f"{e.get('msg', 'invalid')}" for e in errors]
    return "; ".join(problems[:5]) or "invalid request"


class FastRoutes:
    """ASGI middleware: `routes` maps a POST path to `(body model, handler, route)`; the
    route object is put in the scope for the request metrics, as FastAPI's router does."""

    def __init__(self, app: Any, routes: dict[str, tuple[type[BaseModel], Handler, Any]]):
        self.app, self.routes = app, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        model, handler, scope["route"] = route
        body = await _read_body(receive)
        status, answer = await _answer(model, handler, body)
        data = json.dumps(answer, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(data)).encode()),
                                (b"content-type", JSON_TYPE)]})
        await send({"type": "http.response.body", "body": data})


async def _answer(model: type[BaseModel], handler: Handler, body: bytes
                  ) -> tuple[int, dict[str, Any]]:
    try:
        request = model.model_validate_json(body)
    except ValidationError as exc:
        return 422, {"detail": problem_detail(exc.errors())}
    try:
        return 200, await handler(request)
    except RequestError as exc:
        return exc.status, {"detail": str(exc)}
    except LiveqError as exc:
        return 422, {"detail": str(exc)}


def _is_json(scope: dict) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == JSON_TYPE
    return False


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
