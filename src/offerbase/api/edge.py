"""The Edge Network endpoints that Adobe's Web SDK (alloy), Mobile SDK and Edge Network Server
API call: `/ee[/{hint}]/v1/{interact,collect,identity/acquire,privacy/set-consent}` and
`/ee/v2/{interact,collect}`.

No token: a request is authorised by its datastream (`configId` / `dataStreamId`), whose id is
public, and by its `Origin` when it has one (CORS, per datastream). Decisions go through the
same path as the Decisioning API (decisioning.decide_and_record); display, click and other
feedback events are stored as interaction events without delaying the answer, except those
that feed impression, click or custom caps, which are stored and counted before it
(feedback_caps.py). Errors have the
Edge Network's shape (`type`, `status`, `title`, `detail`, `report`), never a 500. docs/edge.md
describes all of it for users.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offerbase.api import deps, edge_feedback, edge_identity, edge_request
from offerbase.api.bodies import may_hold_nul, parse_json, read_body
from offerbase.api.decision_request import Metadata, ParsedRequest
from offerbase.api.decisioning import decide_and_record
from offerbase.api.deps import Services
from offerbase.api.edge_request import DecisionScope, EdgeEvent, EdgeInputError, EdgeRequest
from offerbase.api.edge_response import propositions
from offerbase.api.feedback_caps import EventFeedback, store_feedback
from offerbase.api.problems import ApiProblem
from offerbase.engine import EXPERIENCE_EVENTS, DecisionError, ScopeRequest
from offerbase.store.clock import iso
from offerbase.store.datastreams import Datastream
from offerbase.store.outages import unavailable

ERROR_TYPE = "https://ns.adobe.com/aep/errors/EXEG-{code}-{status}"
# The Decisioning API's free-form context type: the event's `data` is bound to it, so a rule
# that reads `@{_xdm.context.additionalParameters;version=1}.x` works through both APIs.
DATA_CONTEXT = "_xdm.context.additionalParameters;version=1"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER_LIST = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")
MAX_REQUESTED_HEADERS_CHARS = 1024
PREFLIGHT_MAX_AGE = 600


class EdgeError(Exception):
    """An answer in the Edge Network's error shape (application/problem+json)."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "type": ERROR_TYPE.format(code=self.code, status=self.status),
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "report": {"requestId": request_id},
        }

    @classmethod
    def of(cls, exc: Exception) -> EdgeError | None:
        """The Edge answer for an exception an endpoint raised: its own errors as they are,
        the API layer's problems and database outages in the Edge shape; None for a bug (it
        propagates, and the app answers 500)."""
        if isinstance(exc, EdgeError):
            return exc
        if isinstance(exc, ApiProblem):
            return cls(exc.status, f"0{exc.status // 100}00", exc.title, exc.detail)
        if unavailable(exc):
            return cls(503, "0500", "Service Unavailable", "The database is unavailable; retry.")
        return None


def _request_id(request: Request) -> str:
    sent = request.query_params.get("requestId")
    return sent if sent is not None and _REQUEST_ID.fullmatch(sent) else str(uuid.uuid4())


async def _datastream(request: Request, services: Services) -> Datastream:
    params = request.query_params
    # configId (alloy, Mobile SDK, v1), dataStreamId (Server API, v2), edgeConfigId (old alloy)
    sent = params.get("configId") or params.get("dataStreamId") or params.get("edgeConfigId")
    if not sent:
        raise EdgeError(
            400,
            "0002",
            "Datastream ID missing",
            "The request names no datastream: send ?configId=... (or ?dataStreamId=...).",
        )
    found = await services.datastreams.get(sent)
    if found is None:
        raise EdgeError(
            400,
            "0003",
            "Invalid datastream ID",
            f"No datastream has the id '{sent[:100]}'. Create one with "
            "`offerbase datastreams create`.",
        )
    return found


def _cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _allowed_origin(request: Request, datastream: Datastream) -> str | None:
    """The request's Origin when the datastream allows it; None when it has none. A browser
    request from any other origin is refused: the page may not use this datastream."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if not datastream.allows_origin(origin):
        raise EdgeError(
            403,
            "0004",
            "Origin not allowed",
            f"The origin '{origin[:200]}' is not one of datastream '{datastream.id}''s allowed "
            "origins (`offerbase datastreams create --origin URL`).",
        )
    return origin


def _preflight(request: Request, origin: str | None) -> Response:
    headers = _cors_headers(origin)
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    wanted = request.headers.get("access-control-request-headers", "")
    if len(wanted) <= MAX_REQUESTED_HEADERS_CHARS and _HEADER_LIST.fullmatch(wanted):
        headers["Access-Control-Allow-Headers"] = wanted
    else:
        headers["Access-Control-Allow-Headers"] = "Content-Type"
    headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return Response(status_code=204, headers=headers)


async def _body(request: Request) -> EdgeRequest:
    """alloy sends JSON as text/plain (a CORS simple request); any content type is read as
    JSON, with the API's size, depth and character limits (bodies.read_json's)."""
    raw = await read_body(request)
    try:
        return edge_request.parse(
            parse_json(raw, nul_anywhere=True), may_hold_nul=may_hold_nul(raw)
        )
    except EdgeInputError as exc:
        where = f" (at '{exc.field}')" if exc.field else ""
        raise EdgeError(400, "0101", "Invalid request", f"{exc.detail}{where}.") from exc


def _identity_map(edge: EdgeRequest, event: EdgeEvent, ecid: str | None) -> dict[str, Any]:
    """The event's identities, the request's (Mobile SDK) and the ECID (when there is one), for
    the profile lookup and per-profile caps. The ECID is primary only when nothing else is."""
    merged: dict[str, list[Any]] = {}
    for identity_map in (event.identity_map, edge.identity_map):
        for namespace, entries in identity_map.items():
            known = merged.setdefault(namespace, [])
            known.extend(e for e in entries if e not in known)
    if ecid is not None and edge_identity.from_identity_map([merged]) is None:
        primary = any(
            isinstance(e, Mapping) and e.get("primary") is True
            for entries in merged.values()
            for e in entries
        )
        merged.setdefault(edge_identity.ECID, []).append({"id": ecid, "primary": not primary})
    return merged


def _parsed(
    event: EdgeEvent, scopes: list[DecisionScope], datastream: Datastream, identity_map: Any
) -> ParsedRequest:
    item_counts = datastream.item_counts
    return ParsedRequest(
        scopes=[
            ScopeRequest(
                s.activity_id,
                s.placement_id,
                s.item_count if s.item_count is not None else item_counts.get(s.placement_id),
            )
            for s in scopes
        ],
        across_activities=None,
        across_placements=None,
        identity_map=identity_map,
        decision_request_id=None,
        context={EXPERIENCE_EVENTS: [event.xdm], DATA_CONTEXT: event.data},
        dry_run=event.dry_run,
        include_content=True,  # Edge always delivers content (only the Decisioning API may not)
        metadata=Metadata(),
        inline_profile=None,
        trace=False,
    )


def _warning(error: DecisionError, event: EdgeEvent, scope: DecisionScope) -> dict[str, Any]:
    return {
        "type": ERROR_TYPE.format(code="0301", status=error.status),
        "status": error.status,
        "title": error.title,
        "detail": error.detail,
        "report": {"eventIndex": event.index, "scope": scope.scope},
    }


async def _decisions(
    services: Services,
    datastream: Datastream,
    event: EdgeEvent,
    identity_map: Any,
    warnings: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The event's propositions. A scope the engine refuses (unknown decision or placement, a
    decision that is not live, a bad itemCount) is left out with a warning, and the others are
    decided: one bad scope on a page must not blank the others."""
    scopes = list(event.scopes)
    while scopes:  # each round removes a scope or returns: at most MAX_SCOPES rounds
        try:
            decided = await decide_and_record(
                services, datastream.sandbox, _parsed(event, scopes, datastream, identity_map)
            )
        except DecisionError as exc:
            if exc.scope is None or not 0 <= exc.scope < len(scopes):
                raise EdgeError(exc.status, "0300", exc.title, exc.detail) from exc
            warnings.append(_warning(exc, event, scopes.pop(exc.scope)))
            continue
        return propositions(decided.result, scopes, decided.proposition_id)
    return []


def _ecid(request: Request, edge: EdgeRequest, org_id: str) -> str | None:
    return (
        edge_identity.from_state(edge.state_entries, org_id)
        or edge_identity.from_cookie_header(request.headers.get("cookie"), org_id)
        or edge_identity.from_identity_map(
            [edge.identity_map, *(event.identity_map for event in edge.events)]
        )
    )


def _feedback(
    services: Services,
    datastream: Datastream,
    edge: EdgeRequest,
    ecid: str | None,
    request_id: str,
) -> list[EventFeedback]:
    """The interaction events of every event that carries feedback; EdgeError (400) when one
    is malformed, so nothing of a bad request is stored. Each event keeps its xdm and identity
    map (the decision path's: the same per-profile counters), which caps on impressions,
    clicks and custom events count by (api/feedback_caps.py)."""
    received = iso(services.clock())
    found: list[EventFeedback] = []
    for event in edge.events:
        try:
            records = edge_feedback.interaction_events(
                {"xdm": event.xdm, "data": event.data},
                sandbox_pk=datastream.sandbox.pk,
                datastream_id=datastream.id,
                identity=(edge_identity.ECID, ecid) if ecid is not None else None,
                identity_map=event.identity_map or edge.identity_map,
                received_at=received,
                event_index=event.index,
                request_id=request_id,
            )
        except ValueError as exc:
            prefix = "event" if len(edge.events) == 1 else f"events/{event.index}"
            raise EdgeError(400, "0101", "Invalid request", f"{prefix}: {exc}") from exc
        if records:
            found.append(EventFeedback(event.xdm, _identity_map(edge, event, ecid), records))
    return found


async def _answer(
    request: Request, services: Services, datastream: Datastream, action: str, v2: bool
) -> Response:
    request_id = _request_id(request)
    origin = _allowed_origin(request, datastream)
    if request.method == "OPTIONS":
        return _preflight(request, origin)
    edge = await _body(request)
    org_id = datastream.sandbox.org_id
    ecid = _ecid(request, edge, org_id)
    # Feedback is validated (a malformed event is a 400) before anything is decided, and stored
    # once the rest of the request has succeeded: a refused request writes nothing.
    feedback = _feedback(services, datastream, edge, ecid, request_id)
    headers = _cors_headers(origin)
    if action == "collect":
        await store_feedback(services, datastream.sandbox, feedback)
        return Response(status_code=204, headers=headers)
    if ecid is None:
        if v2 and not any(event.identity_map for event in edge.events) and not edge.identity_map:
            raise EdgeError(
                400,
                "0102",
                "No identity",
                "The Server API needs an identity: send xdm.identityMap (or an ECID in "
                "meta.state.entries).",
            )
        ecid = edge_identity.mint_ecid()
    handles = edge_identity.identity_handles(ecid, org_id)
    warnings: list[dict[str, Any]] = []
    if action == "interact":
        for event in edge.events:
            if not event.scopes:
                continue
            payload = await _decisions(
                services, datastream, event, _identity_map(edge, event, ecid), warnings
            )
            handles.append(
                {"type": "personalization:decisions", "eventIndex": event.index, "payload": payload}
            )
    await store_feedback(services, datastream.sandbox, feedback)
    body: dict[str, Any] = {"requestId": request_id, "handle": handles}
    if warnings:
        body["warnings"] = warnings
    # Compact, one line: the Mobile SDK splits a streamed answer on line feeds.
    return Response(orjson.dumps(body), 200, media_type="application/json", headers=headers)


def _endpoint(action: str, v2: bool) -> Any:
    async def endpoint(request: Request) -> Response:
        services = deps.services(request)
        datastream: Datastream | None = None
        try:
            datastream = await _datastream(request, services)
            return await _answer(request, services, datastream, action, v2)
        except Exception as exc:
            error = EdgeError.of(exc)
            if error is None:
                raise
            origin = request.headers.get("origin")
            allowed = (
                origin
                if origin is not None
                and datastream is not None
                and datastream.allows_origin(origin)
                else None
            )
            headers = {**_cors_headers(allowed), **getattr(exc, "headers", {})}
            return Response(
                orjson.dumps(error.body(_request_id(request))),
                error.status,
                media_type="application/problem+json",
                headers=headers,
            )

    endpoint.__name__ = f"edge_{'v2' if v2 else 'v1'}_{action.replace('/', '_').replace('-', '_')}"
    return endpoint


V1_ACTIONS = ("interact", "collect", "identity/acquire", "privacy/set-consent")
V2_ACTIONS = ("interact", "collect")
_METHODS = ["POST", "OPTIONS"]

routes = [
    *(Route(f"/ee/v1/{a}", _endpoint(a, False), methods=_METHODS) for a in V1_ACTIONS),
    *(Route(f"/ee/v2/{a}", _endpoint(a, True), methods=_METHODS) for a in V2_ACTIONS),
    # Adobe's Offer Decisioning page for the Server API writes its curl line without `/ee`.
    *(Route(f"/v2/{a}", _endpoint(a, True), methods=_METHODS) for a in V2_ACTIONS),
    # A location hint (alloy's cluster cookie, the Mobile SDK's locationHint:result) changes
    # nothing here: one Offerbase serves every hint.
    *(Route(f"/ee/{{hint}}/v1/{a}", _endpoint(a, False), methods=_METHODS) for a in V1_ACTIONS),
]
# What api/edge_collect.py serves in front of the middleware stack (the router serves them too).
collect_routes = [r for r in routes if r.path.endswith("/collect")]
