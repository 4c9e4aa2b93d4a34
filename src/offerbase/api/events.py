"""Decision events and containers: what the Decisioning API recorded, and where to send it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from offerbase.api.auth import CallerDep, CredentialDep
from offerbase.api.deps import ServicesDep
from offerbase.api.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorSigner, event_links
from offerbase.api.responses import json_response
from offerbase.api.store_problems import store_problem, transaction
from offerbase.store import errors as store_errors
from offerbase.store import tenants
from offerbase.store.events import DecisionEvents

router = APIRouter(prefix="/data/core/ods", tags=["Decisioning"])

Since = Annotated[
    str | None, Query(description="Only events at or after this ISO-8601 UTC time (…Z).")
]


@router.get("/decision-events", summary="List recorded decision events, oldest first")
async def list_events(
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    start: Annotated[str | None, Query(description="Opaque cursor from `_links.next`.")] = None,
    since: Since = None,
) -> Response:
    events = DecisionEvents(services.db, caller.sandbox)
    signer = CursorSigner(services.settings.resolved_secret_key, caller.sandbox.pk)
    try:
        items, total, position = await events.page(limit, signer.open(start), since)
    except store_errors.BadCursor as exc:
        raise store_problem(exc) from exc
    links = event_links(limit, since, position, signer)
    return json_response({"results": items, "count": len(items), "total": total, "_links": links})


@router.get(
    "/decision-events/export",
    summary="Export every decision event as NDJSON",
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
async def export_events(caller: CallerDep, services: ServicesDep, since: Since = None) -> Response:
    events = DecisionEvents(services.db, caller.sandbox)

    async def lines() -> AsyncIterator[bytes]:
        async for event in events.export(since):
            yield orjson.dumps(event) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


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
