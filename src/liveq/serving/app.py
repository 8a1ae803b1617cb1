"""The FastAPI application: routes under /v1, errors as 4xx with a message, a body limit,
metrics, and the API key on the admin routes.

`create_app(config)` builds it; uvicorn's worker processes call `app_from_environment()`,
which reads the config `liveq serve` put in `LIVEQ_SERVE_CONFIG` (JSON).
"""

from __future__ import annotations

import gc
import hmac
import inspect
import json
import os
from typing import Annotated, Any

import torch
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from liveq.core.errors import LiveqError, RequestError
from liveq.serving import schemas as s
from liveq.serving.dashboard import dashboard_router
from liveq.serving.db import open_log
from liveq.serving.fast_routes import FastRoutes, problem_detail
from liveq.serving.limits import BodyLimit
from liveq.serving.metrics import Metrics, RequestTiming
from liveq.serving.service import Service
from liveq.serving.settings import ServeConfig, serve_config

CONFIG_ENV = "LIVEQ_SERVE_CONFIG"
ERRORS = {400: {"description": "bad request"}, 404: {"description": "unknown id"},
          409: {"description": "conflict"}, 413: {"description": "body too large"},
          422: {"description": "invalid input"}}
ADMIN_ERRORS = {**ERRORS, 401: {"description": "no API key"},
                403: {"description": "wrong API key"}}
# FastAPI's own OpenTelemetry hooks (in the FastAPI versions that have them) look the
# providers up in the environment on every request, about a tenth of a feedback event's
# CPU; the service exports its own /metrics, so they are switched off.
_NO_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False}}
                 if "telemetry" in inspect.signature(FastAPI).parameters else {})


def create_app(config: ServeConfig) -> FastAPI:
    """The service app on `config`'s database (migrated at startup)."""
    # Small networks scored one request per thread: torch's intra-op threads only
    # oversubscribe the cores the request threads already use.
    torch.set_num_threads(1)
    metrics = Metrics()
    service = Service(open_log(config.database_url(), background_checkpoints=True), config,
                      metrics)
    app = FastAPI(title="liveq recommendation service", version="1",
                  description="Recommends live streams with a trained liveq policy and logs "
                              "every decision for learning and evaluation.", **_NO_TELEMETRY)
    _handlers(app)

    def admin(x_api_key: Annotated[str | None, Header()] = None) -> None:
        if config.api_key is None:
            raise RequestError(403, "admin routes are disabled: start the service with "
                                    "--api-key")
        if x_api_key is None:
            raise RequestError(401, "missing API key: send it in the X-API-Key header")
        if not hmac.compare_digest(x_api_key.encode(), config.api_key.encode()):
            raise RequestError(403, "wrong API key (X-API-Key)")

    _public_routes(app, service)
    _admin_routes(app, service, Depends(admin))
    route = {r.path: r for r in app.routes}
    app.include_router(dashboard_router(service.engine, Depends(admin)))
    # added innermost first: timing, then the body limit, then the hot routes' fast path
    app.add_middleware(FastRoutes, routes={
        "/v1/recommend": (s.RecommendRequest, service.recommend, route["/v1/recommend"]),
        "/v1/feedback": (s.Feedback, service.feedback, route["/v1/feedback"])})
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestTiming, metrics=metrics)
    app.state.service = service
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(LiveqError)
    async def liveq_error(_request: Request, exc: LiveqError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": problem_detail(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)


def _json(answer: dict[str, Any]) -> Response:
    """The answer as it is, as `FastRoutes` sends it: the hot routes build exactly their
    response model's fields (tests/test_serving_http.py checks them against it)."""
    return JSONResponse(answer)


def _public_routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=Response)
    def metrics_text() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.put("/v1/streamers/live", response_model=s.CatalogueResult, responses=ERRORS)
    def put_live(body: s.Catalogue) -> dict[str, int]:
        """Replace the live catalogue: the streamers listed are live, the rest offline."""
        return service.put_catalogue(body)

    @app.post("/v1/streamers/{streamer_id}/live", responses=ERRORS)
    def go_live(streamer_id: s.Id, body: s.GoLive | None = None) -> dict[str, str]:
        service.set_live(streamer_id, True, None if body is None else body.viewers)
        return {"streamer_id": streamer_id, "status": "live"}

    @app.post("/v1/streamers/{streamer_id}/offline", responses=ERRORS)
    def go_offline(streamer_id: s.Id) -> dict[str, str]:
        service.set_live(streamer_id, False, None)
        return {"streamer_id": streamer_id, "status": "offline"}

    @app.post("/v1/recommend", response_model=s.RecommendResponse, responses=ERRORS)
    async def recommend(body: s.RecommendRequest) -> Response:
        return _json(await service.recommend(body))

    @app.post("/v1/feedback", response_model=s.FeedbackResponse, responses=ERRORS)
    async def feedback(body: s.Feedback) -> Response:
        """Answered only after the event is committed; a repeated key returns the first
        answer."""
        return _json(await service.feedback(body))

    @app.post("/v1/feedback/batch", response_model=s.FeedbackBatchResponse,
              responses=ERRORS)
    async def feedback_batch(body: s.FeedbackBatch) -> dict[str, Any]:
        """Up to 1,000 events committed in one transaction, answered after the commit
        with one result per event, in order (a refused event gets its 4xx status and
        detail there; the others are logged)."""
        return await service.feedback_batch(body)

    @app.get("/v1/decisions/{decision_id}/explain", responses=ERRORS)
    def explain(decision_id: Annotated[str, s.Field(min_length=1, max_length=64)]
                ) -> dict[str, Any]:
        return service.explain(decision_id)


def _admin_routes(app: FastAPI, service: Service, admin: Any) -> None:
    deps = [admin]

    @app.get("/v1/admin/models", dependencies=deps, responses=ADMIN_ERRORS)
    def models() -> list[dict[str, Any]]:
        return service.models()

    @app.post("/v1/admin/models", dependencies=deps, responses=ADMIN_ERRORS, status_code=201)
    def register(body: s.RegisterModel) -> dict[str, Any]:
        return service.register(body.run)

    @app.post("/v1/admin/models/{version}/promote", dependencies=deps, responses=ADMIN_ERRORS)
    def promote(version: s.Id) -> dict[str, Any]:
        return service.promote(version)

    @app.post("/v1/admin/rollback", dependencies=deps, responses=ADMIN_ERRORS)
    def rollback() -> dict[str, Any]:
        return service.rollback()

    @app.get("/v1/admin/split", dependencies=deps, responses=ADMIN_ERRORS)
    def get_split() -> dict[str, Any]:
        return {"arms": service.split()}

    @app.put("/v1/admin/split", dependencies=deps, responses=ADMIN_ERRORS)
    def put_split(body: s.Split) -> dict[str, Any]:
        """Set the A/B split: arm shares summing to 1; viewers keep their arm (hashed id)."""
        return {"arms": service.split([a.model_dump() for a in body.arms])}


def app_from_environment() -> FastAPI:
    """The app of a uvicorn worker process (the config comes from `LIVEQ_SERVE_CONFIG`).

    Once the app is built (models loaded), the objects alive are moved out of the
    garbage collector's sight (`gc.freeze`): a worker holds about 376,000 of them
    (torch, FastAPI, SQLAlchemy, the models), and a full collection over them stalled
    every request of the worker for 0.4-0.5 s on a busy machine; after the freeze a
    full collection sees only the objects made since."""
    app = create_app(serve_config(**json.loads(os.environ[CONFIG_ENV])))
    gc.collect()
    gc.freeze()
    return app
