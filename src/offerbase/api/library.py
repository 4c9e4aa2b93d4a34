"""Offer Library API routes (`/data/core/dps`): the same seven operations for every collection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from offerbase import catalog
from offerbase.api import schemas
from offerbase.api.auth import Caller, current_caller
from offerbase.api.bodies import read_json
from offerbase.api.problems import ApiProblem, field_error, store_problem
from offerbase.store import errors as store_errors
from offerbase.store.library import Actor, Library, Page
from offerbase.store.listing import ListQueryError, parse_orderby, parse_properties

ROOT = "/data/core/dps"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 50

# Collections: URL path -> the kinds it holds. `offers` holds both offer kinds.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "offers": ("personalized-offer", "fallback-offer"),
    "placements": ("placement",),
    "offer-collections": ("collection",),
    "tags": ("tag",),
    "offer-rules": ("decision-rule",),
    "ranking-formulas": ("ranking-formula",),
    "offer-decisions": ("decision",),
}
OFFER_TYPES = {"personalized": "personalized-offer", "fallback": "fallback-offer"}

CallerDep = Annotated[Caller, Depends(current_caller)]
OfferType = Annotated[
    str | None,
    Query(alias="offer-type", description="personalized or fallback (case-insensitive)"),
]
PropertyFilter = Annotated[
    list[str] | None,
    Query(description="Filter `[!]field[op]value`; repeat or comma-separate; all are ANDed."),
]
OrderBy = Annotated[
    str | None, Query(description="Comma list of fields; `-` for descending. Default `-modified`.")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (default 50).")]
Start = Annotated[str | None, Query(description="Opaque cursor from `_links.next` or `.prev`.")]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _kinds(path: str, offer_type: str | None, *, required: bool) -> tuple[str, ...]:
    if path != "offers":
        return COLLECTIONS[path]
    if offer_type is None:
        if required:
            raise ApiProblem(
                400,
                "Bad Request",
                "The query parameter 'offer-type' is required: personalized or fallback.",
                errors=[field_error("offer-type", "Missing; use personalized or fallback.")],
            )
        return COLLECTIONS["offers"]
    kind = OFFER_TYPES.get(offer_type.lower())
    if kind is None:
        raise ApiProblem(
            400,
            "Bad Request",
            f"'{offer_type}' is not an offer type; use personalized or fallback.",
            errors=[field_error("offer-type", "Use personalized or fallback.")],
        )
    return (kind,)


@asynccontextmanager
async def _library(request: Request, caller: Caller, *, write: bool) -> AsyncIterator[Library]:
    """One transaction; domain errors become problem responses (nothing is written on error)."""
    db = request.app.state.db
    try:
        async with db.write() if write else db.read() as conn:
            yield Library(conn, caller.sandbox)
    except catalog.CatalogValidationError as exc:
        raise ApiProblem(
            422,
            "Unprocessable Entity",
            "; ".join(f"{e.pointer or '/'}: {e.message}" for e in exc.errors),
            errors=[field_error(e.pointer, e.message) for e in exc.errors],
        ) from exc
    except catalog.PatchTestFailed as exc:
        raise ApiProblem(
            409,
            "Conflict",
            f"A 'test' operation failed: {exc.message}",
            errors=[field_error(exc.pointer, exc.message)],
        ) from exc
    except catalog.PatchError as exc:
        # A broken patch document is a bad request; a well-formed op that cannot apply to
        # this entity (e.g. removing a missing member) is unprocessable.
        status, title = (400, "Invalid Patch") if exc.malformed else (422, "Unprocessable Patch")
        raise ApiProblem(
            status, title, exc.message, errors=[field_error(exc.pointer, exc.message)]
        ) from exc
    except store_errors.StillReferenced as exc:
        raise ApiProblem(
            409,
            exc.title,
            exc.detail,
            extra={
                "referrers": [
                    {"id": r.id, "kind": r.kind, "pointer": r.pointer} for r in exc.referrers
                ]
            },
        ) from exc
    except store_errors.StoreError as exc:
        raise store_problem(exc) from exc


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _actor(caller: Caller) -> Actor:
    return Actor(user=f"{caller.client_id}@{caller.org}", client_id=caller.client_id)


def _page_links(
    path: str, query: list[tuple[str, str]], orderby: str | None, limit: int, page: Page
) -> dict[str, dict[str, str]]:
    """Links relative to the API root; the cursor is opaque and carries the snapshot."""
    kept = [(k, v) for k, v in query if k not in ("start", "orderby", "limit")]
    base = [("orderby", orderby or "-modified"), ("limit", str(limit)), *kept]

    def link(cursor: str | None) -> dict[str, str]:
        items = base if cursor is None else [*base, ("start", cursor)]
        return {"href": f"/{path}?{urlencode(items)}", "type": "application/json"}

    links = {"self": link(page.self_cursor)}
    if page.next_cursor:
        links["next"] = link(page.next_cursor)
    if page.prev_cursor:
        links["prev"] = link(page.prev_cursor)
    return links


def add_collection_routes(router: APIRouter, path: str) -> None:
    kinds_all = COLLECTIONS[path]
    is_offers = path == "offers"
    label = "offers" if is_offers else path
    item = f"/{path}/{{entity_id}}"
    request_body = _json_body({"$ref": f"#/components/schemas/{schemas.request_schema_name(path)}"})
    patch_body = _json_body({"$ref": "#/components/schemas/JsonPatchOrMerge"})

    # The same naming for every collection keeps operation ids unique across the API.
    def operation(
        summary: str, name: str, responses: dict[int | str, dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "responses": responses,
            "summary": f"{summary} ({label})",
            "operation_id": f"{path}-{name}",
        }

    async def create(
        request: Request, caller: CallerDep, entity_id: str | None, offer_type: str | None
    ) -> Response:
        (kind,) = _kinds(path, offer_type, required=True) if is_offers else kinds_all
        raw = await read_json(request)
        async with _library(request, caller, write=True) as library:
            entity = await library.create(kind, raw, _actor(caller), entity_id)
        # Percent-encoded: a chosen id may hold any character, a header only latin-1.
        location = f"{ROOT}/{path}/{quote(entity.id, safe='')}"
        return json_response(
            entity.receipt(caller.sandbox), 201, {"Location": location, "ETag": f'"{entity.etag}"'}
        )

    @router.post(
        f"/{path}",
        status_code=201,
        openapi_extra=request_body,
        **operation("Create", "create", schemas.WRITE_RESPONSES),
    )
    async def create_auto_id(
        request: Request,
        caller: CallerDep,
        offer_type: OfferType = None,
    ) -> Response:
        return await create(request, caller, None, offer_type)

    @router.post(
        item,
        status_code=201,
        openapi_extra=request_body,
        **operation("Create with a chosen id", "create-with-id", schemas.WRITE_RESPONSES),
    )
    async def create_with_id(
        request: Request,
        caller: CallerDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        return await create(request, caller, entity_id, offer_type)

    @router.get(item, **operation("Look up", "get", schemas.READ_RESPONSES))
    async def lookup(
        request: Request,
        caller: CallerDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        kinds = _kinds(path, offer_type, required=False)
        async with _library(request, caller, write=False) as library:
            entity = await library.get(kinds, entity_id)
        return json_response(entity.read_form(), headers={"ETag": f'"{entity.etag}"'})

    @router.get(f"/{path}", **operation("List", "list", schemas.LIST_RESPONSES))
    async def list_entities(
        request: Request,
        caller: CallerDep,
        offer_type: OfferType = None,
        property: PropertyFilter = None,
        orderby: OrderBy = None,
        limit: Limit = DEFAULT_LIMIT,
        start: Start = None,
    ) -> Response:
        kinds = _kinds(path, offer_type, required=False)
        try:
            terms = parse_properties(property or [])
            order = parse_orderby(orderby)
        except ListQueryError as exc:
            raise ApiProblem(
                400, "Bad Request", exc.message, errors=[field_error(exc.parameter, exc.message)]
            ) from exc
        async with _library(request, caller, write=False) as library:
            page = await library.list(kinds, terms, order, limit, start)
        links = _page_links(path, request.query_params.multi_items(), orderby, limit, page)
        body = {
            "results": [item.read_form() for item in page.items],
            "count": len(page.items),
            "total": page.total,
            "_links": links,
        }
        return json_response(body)

    async def _update(
        request: Request,
        caller: Caller,
        entity_id: str,
        offer_type: str | None,
        make: Callable[[Any], Callable[[dict[str, Any]], object]],
    ) -> Response:
        kinds = _kinds(path, offer_type, required=False)
        raw = await read_json(request)
        async with _library(request, caller, write=True) as library:
            entity = await library.update(
                kinds, entity_id, make(raw), _actor(caller), request.headers.get("if-match")
            )
        return json_response(entity.receipt(caller.sandbox), headers={"ETag": f'"{entity.etag}"'})

    @router.patch(
        item,
        openapi_extra=patch_body,
        **operation("Update with a JSON Patch", "patch", schemas.UPDATE_RESPONSES),
    )
    async def patch(
        request: Request,
        caller: CallerDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        def make(raw: Any) -> Callable[[dict[str, Any]], object]:
            # An object is a merge patch: Adobe's ranking-formula example PATCHes a whole object.
            if isinstance(raw, dict):
                return lambda old: catalog.merge_patch(old, raw)
            return lambda old: catalog.apply_patch(old, raw)

        return await _update(request, caller, entity_id, offer_type, make)

    @router.put(
        item,
        openapi_extra=request_body,
        **operation("Replace", "replace", schemas.UPDATE_RESPONSES),
    )
    async def replace(
        request: Request,
        caller: CallerDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        return await _update(request, caller, entity_id, offer_type, lambda raw: lambda _old: raw)

    @router.delete(item, **operation("Delete", "delete", schemas.DELETE_RESPONSES))
    async def delete(
        request: Request,
        caller: CallerDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        kinds = _kinds(path, offer_type, required=False)
        async with _library(request, caller, write=True) as library:
            await library.delete(kinds, entity_id, request.headers.get("if-match"))
        return Response(b"", 200)


def build_router() -> APIRouter:
    router = APIRouter(prefix=ROOT, tags=["Offer Library"])
    for path in COLLECTIONS:
        add_collection_routes(router, path)
    return router
