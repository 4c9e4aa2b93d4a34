"""What an operator sees of the requests: Prometheus metrics (offerbase.metrics), the optional
access log, and the `/metrics` endpoint."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offerbase.api import http_limits
from offerbase.metrics import HTTP_LATENCY, HTTP_REQUESTS, exposition

UNMATCHED = "unmatched"
# Clients choose the method string: anything else is counted as "other", so that a scanner
# sending made-up methods cannot create series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = structlog.get_logger("offerbase.access")


class RequestRecorder:
    """Counts and times every HTTP request by route template (`/data/core/dps/{...}`), never by
    raw path, so ids in paths cannot multiply the series; with `log_requests` it also writes
    one access log line per request, by route template too. One per app, shared by
    RequestObserver and the Edge collect fast path (api/edge_collect.py)."""

    def __init__(self, *, routes: Sequence[BaseRoute], log_requests: bool = False) -> None:
        self.routes = routes
        self.log_requests = log_requests
        # `.labels()` costs microseconds; the decisioning hot path pays a dict lookup instead.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def record(self, scope: Scope, status: int, started: float) -> None:
        """A request answered `status`; `started` is its time.perf_counter() on arrival."""
        seconds = time.perf_counter() - started
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = route_template(scope, self.routes)
        self._observe(method, route, status, seconds)
        if self.log_requests:
            access_log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 3),
                request_id=_request_id(scope),
                client=scope["client"][0] if scope.get("client") else None,
            )

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(method, route, str(status))
            self._counters[method, route, status] = counter
        counter.inc()
        timer = self._timers.get((method, route))
        if timer is None:
            timer = HTTP_LATENCY.labels(method, route)
            self._timers[method, route] = timer
        timer.observe(seconds)


class RequestObserver:
    """The RequestRecorder as ASGI middleware: every request through it is recorded."""

    def __init__(self, app: ASGIApp, *, recorder: RequestRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it starts a response

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.recorder.record(scope, status, started)


_ENDPOINT_PATHS: dict[object, str] = {}


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The matched route's template, never the raw path: paths carry ids and identities, which
    belong neither in a metric label nor in a log line. FastAPI puts its own routes in
    `scope["route"]`, but not plain Starlette routes such as the decisioning hot path: those
    are found by the endpoint the router chose."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return UNMATCHED
    path = _ENDPOINT_PATHS.get(endpoint)
    if path is None:
        path = next(
            (r.path for r in routes if isinstance(r, Route) and r.endpoint is endpoint),
            UNMATCHED,
        )
        _ENDPOINT_PATHS[endpoint] = path
    return path


def _request_id(scope: Scope) -> str | None:
    value = http_limits.request_id(scope["headers"])
    return value.decode("ascii") if value is not None else None


async def metrics(_request: Request) -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


routes = [Route("/metrics", metrics, methods=["GET"], include_in_schema=False)]
