"""Decision events, interaction events and containers: what the Decisioning API and the Edge
endpoints recorded, and where to send it. Both event lists are paged and exported the same
way (`_page` and `_export`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from offerbase.api.auth import Caller, CallerDep, CredentialDep
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorSigner, event_links
from offerbase.api.responses import json_response
from offerbase.api.store_problems import store_problem, transaction
from offerbase.store import errors as store_errors
from offerbase.store import tenants
from offerbase.store.events import DecisionEvents, Page
from offerbase.store.interactions import INTERACTION_TYPES, InteractionEvents

router = APIRouter(prefix="/data/core/ods", tags=["Decisioning"])

Since = Annotated[
    str | None, Query(description="Only events at or after this ISO-8601 UTC time (…Z).")
]


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Start = Annotated[str | None, Query(description="Opaque cursor from `_links.next`.")]
InteractionType = Literal["display", "interact", "dismiss", "trigger", "suppressDisplay", "custom"]
# The stored types (store/interactions.py), spelled out for the OpenAPI document.
assert set(get_args(InteractionType)) == set(INTERACTION_TYPES)
TypeFilter = Annotated[InteractionType | None, Query(description="Only events of this type.")]
_NDJSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
}


async def _page(
    caller: Caller,
    services: Services,
    read: Callable[[int, str | None], Awaitable[Page]],
    limit: int,
    start: str | None,
    since: str | None,
    *,
    path: str,
    filters: list[tuple[str, str]] | None = None,
) -> Response:
    """One page of an event list, its cursor signed for the caller's sandbox."""
    signer = CursorSigner(services.settings.resolved_secret_key, caller.sandbox.pk)
    try:
        items, total, position = await read(limit, signer.open(start))
    except store_errors.BadCursor as exc:
        raise store_problem(exc) from exc
    links = event_links(limit, since, position, signer, path=path, filters=filters)
    return json_response({"results": items, "count": len(items), "total": total, "_links": links})


def _export(events: AsyncIterator[dict[str, Any]]) -> Response:
    async def lines() -> AsyncIterator[bytes]:
        async for event in events:
            yield orjson.dumps(event) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/decision-events", summary="List recorded decision events, oldest first")
async def list_events(
    caller: CallerDep,
    services: ServicesDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    start: Start = None,
    since: Since = None,
) -> Response:
    events = DecisionEvents(services.db, caller.sandbox)

    def read(count: int, position: str | None) -> Awaitable[Page]:
        return events.page(count, position, since)

    return await _page(caller, services, read, limit, start, since, path="decision-events")


@router.get(
    "/decision-events/export", summary="Export every decision event as NDJSON", responses=_NDJSON
)
async def export_events(caller: CallerDep, services: ServicesDep, since: Since = None) -> Response:
    return _export(DecisionEvents(services.db, caller.sandbox).export(since))


@router.get(
    "/interaction-events",
    summary="List recorded interaction events (Edge feedback), oldest first",
)
async def list_interactions(
    caller: CallerDep,
    services: ServicesDep,
    limit: Limit = DEFAULT_PAGE_SIZE,
    start: Start = None,
    since: Since = None,
    type: TypeFilter = None,
) -> Response:
    events = InteractionEvents(services.db, caller.sandbox)

    def read(count: int, position: str | None) -> Awaitable[Page]:
        return events.page(count, position, since, type)

    filters: list[tuple[str, str]] = [("type", type)] if type else []
    return await _page(
        caller, services, read, limit, start, since, path="interaction-events", filters=filters
    )


@router.get(
    "/interaction-events/export",
    summary="Export every interaction event as NDJSON",
    responses=_NDJSON,
)
async def export_interactions(
    caller: CallerDep, services: ServicesDep, since: Since = None, type: TypeFilter = None
) -> Response:
    return _export(InteractionEvents(services.db, caller.sandbox).export(since, type))


@router.get("/containers", summary="The organization's sandboxes and their container ids")
async def containers(credential: CredentialDep, services: ServicesDep) -> Response:
    """The legacy `/data/core/ode/{containerId}/decisions` endpoint takes a container id.
    Organization-wide: no `x-sandbox-name` is needed."""
    async with transaction(services.db, write=False) as conn:
        sandboxes = await tenants.list_sandboxes(conn, credential.org)
    results = [
        {"containerId": s.container_id, "sandboxName": s.name, "sandboxId": s.sandbox_id}
        for s in sandboxes
        if credential.may_use(s.name)  # a sandbox credential sees its sandbox only
    ]
    return json_response({"results": results, "count": len(results)})
