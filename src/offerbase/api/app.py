"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import functools
import gc
import random
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import offerbase
from offerbase import logs
from offerbase.api import (
    admin,
    datastreams,
    decisioning,
    edge,
    events,
    http_limits,
    observability,
    ode,
    openapi,
    platform,
    profiles,
    ranking_report,
    reports,
    workloads,
)
from offerbase.api.admin_ui import routes as admin_ui
from offerbase.api.deps import Services
from offerbase.api.edge_collect import CollectFastPath
from offerbase.api.library import build_router
from offerbase.api.problems import ApiProblem, GatewayError, field_error
from offerbase.api.retention import pruning_loop
from offerbase.api.store_problems import outage_problem
from offerbase.api.url_encoding import RejectInvalidUtf8
from offerbase.config import Settings
from offerbase.store.db import Database
from offerbase.store.outages import unavailable

DESCRIPTION = """Offer decisioning, wire-compatible with Adobe Journey Optimizer's Offer
Library API (`/data/core/dps`) and Decisioning API. Every `/data/core` call takes
`Authorization: Bearer <token>` (from `POST /ims/token/v3`), `x-api-key` (the credential's
client id), `x-gw-ims-org-id` and `x-sandbox-name` (default `prod`)."""


log = structlog.get_logger("offerbase.api")


class FailureAnswers:
    """The answer to an exception that no handler answered: a dependency outage 503 with
    Retry-After, anything else 500, both problem bodies without internals, both logged
    rate-limited: one record per kind of failure (type, message, route) and interval, with the
    count of those suppressed meanwhile, since an outage fails every request the same way. One
    per app, shared by UnhandledErrors and the Edge collect fast path (api/edge_collect.py)."""

    def __init__(self, *, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes
        self.failures = logs.RateLimitedErrors(log)

    def response(self, scope: Scope, exc: Exception) -> Response:
        template = observability.route_template(scope, self.routes)
        outage = unavailable(exc)
        key = (type(exc).__name__, str(exc)[:200], template)
        headers = dict(scope.get("headers") or ())
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or None
        event = "dependency unavailable" if outage else "unhandled exception"
        self.failures.error(
            key,
            event,
            exc,
            method=scope.get("method"),
            route=template,  # not the path: paths carry ids and identities
            request_id=request_id,
            exception=type(exc).__name__,
        )
        if outage:
            return outage_problem().response()
        return ApiProblem(
            500, "Internal Server Error", "The server failed to answer; it has been logged."
        ).response()


class UnhandledErrors:
    """The last stop of an exception under a route, before Starlette's own (which would log a
    traceback per request): answered by FailureAnswers."""

    def __init__(self, app: ASGIApp, *, answers: FailureAnswers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # a streamed response already began: nothing else can be answered
                raise
            response = self.answers.response(scope, exc)
            await response(scope, receive, send)


class CompatibilityMiddleware:
    """Echo `x-request-id` on every response, as Adobe's runtime APIs do, and collapse `//` in
    paths: Adobe documents `{ENDPOINT_PATH}` both with and without a trailing slash, so
    scripts that join it with `/offers` send `/data/core/dps//offers`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "//" in scope["path"]:
            path = re.sub("/{2,}", "/", scope["path"])
            raw_path = re.sub(b"/{2,}", b"/", scope.get("raw_path") or path.encode())
            scope = {**scope, "path": path, "raw_path": raw_path}
        request_id = http_limits.request_id(scope["headers"])
        if request_id is None:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = http_limits.with_request_id(
                    list(message.get("headers", [])), request_id
                )
            await send(message)

        await self.app(scope, receive, send_with_id)


def _wrap_middleware_stack(app: FastAPI, outer: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put `outer` around the whole middleware stack, which FastAPI builds on the first request
    (after every middleware and exception handler is installed)."""
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return outer(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


async def _checkpoint_loop(db: Database) -> None:
    """SQLite WAL checkpoints off the request path (see Database.checkpoint)."""
    if not db.is_sqlite:
        return
    while True:
        await asyncio.sleep(1.0)
        try:
            await db.checkpoint()
        except Exception:  # a busy or failed checkpoint is retried on the next tick
            continue


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> FastAPI:
    """The app. `clock` and `rng` replace the real time and randomness (reproducible tests)."""
    settings = settings or Settings()
    owns_db = db is None
    services = Services.build(settings, db or Database.for_settings(settings), clock=clock, rng=rng)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything alive after start-up (modules, routes, schemas) lives as long as the
        # process: keeping it out of the cyclic collector's full passes shortens the pauses
        # that otherwise set the decision p99 (bench/load_decide.py: 24-42 ms -> ~16 ms).
        gc.freeze()
        services.snapshots.freeze = True  # and each snapshot built (api/snapshots.py)
        services.events.start()
        services.interactions.start()
        await services.snapshots.start()
        checkpointer = asyncio.create_task(_checkpoint_loop(services.db))
        pruner = asyncio.create_task(pruning_loop(services))  # OFFERBASE_EVENT_RETENTION_DAYS
        services.workloads.start()
        learner = asyncio.create_task(services.learner.loop())  # AI ranking (api/ranking.py)
        yield
        learner.cancel()
        await services.workloads.stop()
        checkpointer.cancel()
        pruner.cancel()
        await services.snapshots.stop()
        await services.events.stop()
        await services.interactions.stop()
        await services.counters.close()
        if owns_db:
            await services.db.dispose()

    # Like FastAPI, with the Swagger UI and ReDoc assets served from the package, not a CDN.
    app = FastAPIOffline(
        title="Offerbase",
        version=offerbase.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    app.include_router(platform.router)
    app.include_router(build_router())
    app.include_router(profiles.router)
    app.include_router(events.router)
    app.include_router(reports.router)
    app.include_router(ranking_report.router)
    app.include_router(admin.router)
    app.include_router(datastreams.router)
    app.include_router(workloads.router)
    admin_ui.install(app)  # the admin web UI at /admin (docs/admin-ui.md)
    # First in the route table: the hot path should not be matched against every other route.
    app.router.routes[0:0] = [*decisioning.routes, *edge.routes]
    app.router.routes.extend(ode.routes)
    if settings.metrics:
        app.router.routes.extend(observability.routes)
    install_error_handlers(app)
    answers = FailureAnswers(routes=app.router.routes)
    recorder = (
        observability.RequestRecorder(routes=app.router.routes, log_requests=settings.access_log)
        if settings.metrics or settings.access_log
        else None
    )
    # The last middleware added is the outermost. UnhandledErrors is the innermost, so the
    # observer counts the 500s and 503s it answers.
    app.add_middleware(UnhandledErrors, answers=answers)
    # Both inside RequestObserver, so that what they refuse is counted (route `unmatched`).
    app.add_middleware(RejectInvalidUtf8)
    app.add_middleware(http_limits.HeadLimits)
    if recorder is not None:
        # Inside CompatibilityMiddleware, so that it sees the scope the router fills in.
        app.add_middleware(observability.RequestObserver, recorder=recorder)
    app.add_middleware(CompatibilityMiddleware)
    # In front of all of them, the Edge collect requests' fast path, with the same recorder and
    # failure answers (api/edge_collect.py).
    _wrap_middleware_stack(
        app, functools.partial(CollectFastPath, recorder=recorder, failures=answers.response)
    )
    openapi.install(app)
    return app


def create_served_app() -> FastAPI:
    """The app as `offerbase serve` runs it, in each worker process: logs configured first."""
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)


def _logged_request_id(request: Request) -> str | None:
    value = http_limits.request_id(request.headers.raw)
    return None if value is None else value.decode("ascii")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def on_problem(_request: Request, exc: ApiProblem) -> Response:
        return exc.response()

    @app.exception_handler(GatewayError)
    async def on_gateway(_request: Request, exc: GatewayError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for error in exc.errors():
            location = [str(part) for part in error.get("loc", ())]
            name = location[-1] if location else ""
            errors.append(field_error(name, str(error.get("msg", "invalid"))))
        detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors) or "Invalid request."
        return ApiProblem(400, "Bad Request", detail, errors=errors).response()

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        # uvicorn logs the traceback after this; this line ties it to the request.
        log.error(
            "unhandled exception",
            method=request.method,
            route=observability.route_template(request.scope, request.app.router.routes),
            request_id=_logged_request_id(request),
            exception=type(exc).__name__,
        )
        return ApiProblem(
            500, "Internal Server Error", "The server failed to answer; it has been logged."
        ).response()

    @app.exception_handler(HTTPException)
    async def on_http(_request: Request, exc: HTTPException) -> Response:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        return ApiProblem(exc.status_code, title, str(exc.detail), headers=exc.headers).response()
