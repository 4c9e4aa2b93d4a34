"""The Decisioning API: `POST /data/core/ods/decisions` and the legacy
`POST /data/core/ode/{containerId}/decisions` (its other legacy routes are in ode.py).

This is the hot path, kept lean on purpose: a plain Starlette endpoint (no dependency
injection), orjson, the in-memory catalog snapshot, one profile read, capping counters only
when the catalog has caps, and the decision event queued for a background writer (or, with
OFFERBASE_EVENTS_DURABLE, committed before the answer). The routes'
OpenAPI description is in decisioning_openapi.py.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offerbase.api import deps, ode
from offerbase.api.auth import current_caller
from offerbase.api.bodies import read_json
from offerbase.api.decision_request import ParsedRequest, parse
from offerbase.api.decision_response import event_body, render
from offerbase.api.deps import Services
from offerbase.api.problems import ApiProblem, field_error
from offerbase.engine import DecisionError, DecisionResult, Snapshot, capping_keys, decide
from offerbase.metrics import CAPPING_RETRIES, DECISION_ITEMS
from offerbase.store.clock import iso
from offerbase.store.db import Database
from offerbase.store.events import PendingEvent
from offerbase.store.profiles import find_profile, request_identities
from offerbase.store.tenants import Sandbox

MEDIA_TYPE = (
    'application/vnd.adobe.xdm+json; schema="https://ns.adobe.com/experience/offer-management/'
    'decision-response;version=1.0"'
)
XED_MEDIA_TYPE = "application/vnd.adobe.xed+json"
# Optimistic capping: decide with the counters read, then consume atomically; a concurrent
# request that took the last unit makes the consume fail, and we decide again with fresh counts.
MAX_CAPPING_ATTEMPTS = 8
_PERSONALIZED_ITEMS = DECISION_ITEMS.labels("personalized")
_FALLBACK_ITEMS = DECISION_ITEMS.labels("fallback")


async def _profile(db: Database, sandbox: Sandbox, parsed: ParsedRequest) -> tuple[str | None, Any]:
    if parsed.inline_profile is not None:
        # No stored profile is read, but per-profile caps still need the person's key: the
        # primary (else first) identity, as find_profile would give for an unknown person.
        candidates = request_identities(parsed.identity_map)
        key = f"{candidates[0][0]}:{candidates[0][1]}" if candidates else None
        return key, parsed.inline_profile
    return await find_profile(db, sandbox, parsed.identity_map)


async def _decide(
    services: Services,
    sandbox: Sandbox,
    snapshot: Snapshot,
    parsed: ParsedRequest,
    profile: Any,
    profile_key: str | None,
    now: datetime | None = None,
) -> DecisionResult:
    now = services.clock() if now is None else now
    engine_request = parsed.engine_request(profile_key)
    keys = capping_keys(snapshot, engine_request, now)
    counters = await services.counters.get_many(sandbox.pk, keys) if keys else {}
    # The strategies' evidence, only when the catalog has strategies (the common case: none).
    ranking = await services.ranking_stats.get(sandbox) if snapshot.strategies else None
    for _attempt in range(MAX_CAPPING_ATTEMPTS):
        result = decide(
            snapshot,
            engine_request,
            profile,
            counters,
            now=now,
            rng=services.rng,
            ranking=ranking,
        )
        if parsed.dry_run or not result.consumption:
            return result
        items = [(c.key, c.limit) for c in result.consumption]
        if await services.counters.try_consume(sandbox.pk, items):
            return result
        CAPPING_RETRIES.inc()
        counters = await services.counters.get_many(sandbox.pk, keys)
    raise ApiProblem(
        503,
        "Service Unavailable",
        "Capping counters are under heavy contention; retry.",
        headers={"Retry-After": "1"},
    )


def response_media_type(accept: str | None) -> str:
    """The response's Content-Type from the request's Accept: plain JSON when the client asks
    for `application/json` (Adobe's Postman collection does) or the XED media type, else the
    documented XDM decision-response type."""
    for media_range in (accept or "").split(","):
        media = media_range.split(";", 1)[0].strip().lower()
        if media == "application/json":
            return "application/json"
        if media == XED_MEDIA_TYPE:
            return XED_MEDIA_TYPE + MEDIA_TYPE[MEDIA_TYPE.index(";") :]
        if media in ("application/vnd.adobe.xdm+json", "*/*", "application/*"):
            return MEDIA_TYPE
    return MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class Decided:
    result: DecisionResult
    proposition_id: str


async def decide_and_record(
    services: Services,
    sandbox: Sandbox,
    parsed: ParsedRequest,
    snapshot: Snapshot | None = None,
    *,
    now: datetime | None = None,
) -> Decided:
    """The one decision path of every front door (the Decisioning API, Edge and the admin UI's
    simulation): the profile, the engine with the capping protocol, and the decision event.
    `now` (the simulation's chosen date) is only for dry runs: a real decision happens now.
    Raises DecisionError."""
    if now is not None and not parsed.dry_run:
        raise ValueError("a decision at another time than now must be a dry run")
    if snapshot is None:
        snapshot = await services.snapshots.get(sandbox)
    profile_key, profile = await _profile(services.db, sandbox, parsed)
    try:
        result = await _decide(services, sandbox, snapshot, parsed, profile, profile_key, now)
    except DecisionError as exc:
        if exc.status != 404:
            raise
        # An id this snapshot does not know may have been created through another worker
        # since its last check: look once more before answering 404.
        newer = await services.snapshots.get(sandbox, recheck=True)
        if newer is snapshot:
            raise
        result = await _decide(services, sandbox, newer, parsed, profile, profile_key, now)
    proposition_id = str(uuid.uuid4())
    if not parsed.dry_run:
        timestamp = iso(services.clock())
        event = PendingEvent(
            sandbox.pk,
            proposition_id,
            timestamp,
            event_body(result, parsed, proposition_id, timestamp),
        )
        if services.events.durable:  # OFFERBASE_EVENTS_DURABLE: answered once it is committed
            await services.events.commit(event)
        else:
            services.events.record(event)
        for scope in result.scopes:
            if scope.options:
                _PERSONALIZED_ITEMS.inc(len(scope.options))
            elif scope.fallback is not None:
                _FALLBACK_ITEMS.inc()
    return Decided(result, proposition_id)


async def _handle(
    request: Request, services: Services, sandbox: Sandbox, *, legacy: bool = False
) -> Response:
    body = await read_json(request)
    snapshot: Snapshot | None = None
    if legacy and ode.is_v09(body):
        # A 0.9 request names activities only: their placements come from the catalog.
        snapshot = await services.snapshots.get(sandbox)
        body = ode.translate_v09(body, snapshot)
    # A malformed body is refused before any catalog work.
    parsed = parse(body, trace_param=request.query_params.get("trace") in ("1", "true"))
    try:
        decided = await decide_and_record(services, sandbox, parsed, snapshot)
    except DecisionError as exc:
        errors = [field_error(exc.pointer, exc.detail)] if exc.pointer else []
        raise ApiProblem(exc.status, exc.title, exc.detail, errors=errors) from exc
    created_ms = int(time.time() * 1000)
    return Response(
        orjson.dumps(render(decided.result, parsed, decided.proposition_id, created_ms)),
        200,
        media_type=response_media_type(request.headers.get("accept")),
    )


async def ods_decisions(request: Request) -> Response:
    caller = await current_caller(request)
    return await _handle(request, deps.services(request), caller.sandbox)


async def ode_decisions(request: Request) -> Response:
    """The legacy path: the container id selects the sandbox; 0.9 bodies are accepted too."""
    sandbox = await ode.container_sandbox(request)
    return await _handle(request, deps.services(request), sandbox, legacy=True)


routes = [
    Route("/data/core/ods/decisions", ods_decisions, methods=["POST"]),
    Route("/data/core/ode/{container_id}/decisions", ode_decisions, methods=["POST"]),
]
