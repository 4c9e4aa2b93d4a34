"""`/ee[/{hint}]/v1/collect`, `/ee/v2/collect` and `/v2/collect` served whole at the outermost
ASGI layer, in front of the generic middleware stack and the router.

A page view sends its display notification (and later its clicks) to `collect`, one event per
request: that is as many requests as decisions, and most of their cost was the HTTP stack every
request crosses (docs/benchmarks.md, "Decisions under a stream of feedback events"). Here a
collect request goes through one function that applies the same rules, by calling the same
helpers, as the layers it skips:

* HeadLimits (http_limits.head_refusal) and RejectInvalidUtf8 (url_encoding.invalid_utf8): a
  request either refuses is left to the generic stack, which answers it as for any other path;
  so is one whose path holds `//` (CompatibilityMiddleware rewrites it), one under a root path
  and one whose method the route does not take (405);
* the router: the collect routes of edge.py, matched by their own compiled patterns, and
  `scope["endpoint"]` set as the router sets it, so metrics and logs name the route template;
* the endpoint: edge.py's, the same function the router calls (datastream, CORS, body limits,
  validation, the Edge error shape, feedback stored and caps counted);
* CompatibilityMiddleware's `x-request-id` echo (http_limits.with_request_id);
* RequestObserver's metrics and access log (the app's one observability.RequestRecorder);
* UnhandledErrors' 500/503 for a failure the endpoint does not answer itself (the app's one
  FailureAnswers).

What it skips does nothing for these routes: FastAPI's ServerErrorMiddleware and
ExceptionMiddleware (failures are answered as UnhandledErrors answers them), its body-limit
middleware (no limit is configured: bodies.read_body enforces OFFERBASE_MAX_BODY_BYTES), its
AsyncExitStackMiddleware (for FastAPI dependencies; these are plain Starlette routes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from offerbase.api import edge, http_limits
from offerbase.api.observability import RequestRecorder
from offerbase.api.url_encoding import invalid_utf8

Failures = Callable[[Scope, Exception], Response]


class CollectFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: RequestRecorder | None,
        failures: Failures,
        routes: Sequence[Route] = edge.collect_routes,
    ) -> None:
        self.app = app
        self.recorder = recorder  # None: the app counts and logs no requests
        self.failures = failures
        self.routes = routes

    def _route(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        """The collect route this request is for and its path parameters, when the fast path
        may answer it."""
        path: str = scope["path"]
        if not path.endswith("/collect") or "//" in path or scope.get("root_path"):
            return None
        for route in self.routes:
            match = route.path_regex.match(path)
            if match is not None:
                break
        else:
            return None
        if route.methods is None or scope["method"] not in route.methods:
            return None
        if http_limits.head_refusal(scope) is not None or invalid_utf8(scope) is not None:
            return None
        return route, match.groupdict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, scope["path_params"] = found
        scope["endpoint"] = route.endpoint  # as the router sets it: metrics name its template
        status = 500
        try:
            try:
                response = await route.endpoint(Request(scope, receive))
            except Exception as exc:
                response = self.failures(scope, exc)
            status = response.status_code
            headers = response.raw_headers
            request_id = http_limits.request_id(scope["headers"])
            if request_id is not None:
                headers = http_limits.with_request_id(headers, request_id)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
        finally:
            if self.recorder is not None:
                self.recorder.record(scope, status, started)
