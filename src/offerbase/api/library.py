"""Offer Library API routes (`/data/core/dps`): the same seven operations for every collection.

`CollectionRoutes(path)` holds one collection's operations as plain methods; `build_router`
registers them for every collection in `COLLECTIONS`. Each operation opens one transaction
(`store_problems.transaction`), which also turns store and catalog errors into problems.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from offerbase import catalog
from offerbase.api import schemas
from offerbase.api.auth import Caller, CallerDep
from offerbase.api.bodies import read_json
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.library_collections import (
    COLLECTIONS,
    OFFER_TYPES,
    ROOT,
    kind_to_create,
    kinds_for,
)
from offerbase.api.paging import (
    DEFAULT_PAGE_SIZE,
    LIST_PARAMETERS,
    MAX_PAGE_SIZE,
    CursorSigner,
    boundary,
    is_issued_cursor,
    library_links,
)
from offerbase.api.problems import ApiProblem, field_error
from offerbase.api.responses import json_response
from offerbase.api.store_problems import transaction
from offerbase.catalog.models import any_case_pattern
from offerbase.store.db import Connection
from offerbase.store.library import Actor, Library, Transform
from offerbase.store.listing import (
    MAX_TERMS,
    ORDERBY_PATTERN,
    PROPERTY_TERM_PATTERN,
    ListQueryError,
    parse_orderby,
    parse_properties,
)

# The patterns below are published only (json_schema_extra): the routes check these parameters
# themselves, to answer problems that name them. Each pattern is true of that check.
OfferType = Annotated[
    str | None,
    Query(
        alias="offer-type",
        description="personalized or fallback (case-insensitive); required to create an offer, "
        "ignored outside /offers.",
        json_schema_extra={"pattern": any_case_pattern(list(OFFER_TYPES))},
    ),
]
PropertyFilter = Annotated[
    list[str] | None,
    Query(
        description="Filter `[!]field[op]value`; repeat or comma-separate; all are ANDed. "
        "The published pattern is one term per value without `~`; the server also takes "
        "comma-separated terms (`\\,` escapes a comma) and `field~regex`.",
        json_schema_extra={
            "items": {"type": "string", "pattern": PROPERTY_TERM_PATTERN},
            "maxItems": MAX_TERMS,
        },
    ),
]
OrderBy = Annotated[
    str | None,
    Query(
        description="Comma list of fields; `-` for descending. Default `-modified`.",
        json_schema_extra={"pattern": ORDERBY_PATTERN},
    ),
]
Limit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (default {DEFAULT_PAGE_SIZE}).")
]
Start = Annotated[str | None, Query(description="Opaque cursor from `_links.next` or `.prev`.")]

# PATCH and PUT share one update path: what differs is how the new body comes from the old one.
TransformFor = Callable[[Any, Services], Transform]


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _actor(caller: Caller) -> Actor:
    return Actor(user=f"{caller.client_id}@{caller.org}", client_id=caller.client_id)


@asynccontextmanager
async def _catalog_write(services: Services, caller: Caller) -> AsyncIterator[Connection]:
    """A write transaction on the caller's catalog; once it committed, this worker's next
    decision in the sandbox re-checks the catalog version, so it uses the write."""
    async with transaction(services.db, write=True) as conn:
        yield conn
    services.snapshots.invalidate(caller.sandbox.pk)


def _etag(etag: int) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


def _patch_transform(raw: Any, services: Services) -> Transform:
    # An object is a merge patch: Adobe's ranking-formula example PATCHes a whole object. Its
    # result is at most the old body plus the request body; a JSON Patch's is bounded in
    # catalog.patch (copy can amplify), by the same limit as a request body.
    if isinstance(raw, dict):
        return lambda old: catalog.merge_patch(old, raw)
    limit = services.settings.max_body_bytes
    return lambda old: catalog.apply_patch(old, raw, max_written=limit)


def _replace_transform(raw: Any, _services: Services) -> Transform:
    return lambda _old: raw


class CollectionRoutes:
    """The operations of one collection (`/data/core/dps/{path}`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def register(self, router: APIRouter) -> None:
        path, item = f"/{self.path}", f"/{self.path}/{{entity_id}}"
        body_schema = {"$ref": f"#/components/schemas/{schemas.request_schema_name(self.path)}"}
        request_body = _json_body(body_schema)
        patch_body = _json_body({"$ref": "#/components/schemas/JsonPatchOrMerge"})
        add = router.add_api_route
        add(
            path,
            self.create_auto_id,
            methods=["POST"],
            status_code=201,
            openapi_extra=request_body,
            **self._doc("Create", "create", schemas.WRITE_RESPONSES),
        )
        add(
            item,
            self.create_with_id,
            methods=["POST"],
            status_code=201,
            openapi_extra=request_body,
            **self._doc("Create with a chosen id", "create-with-id", schemas.WRITE_RESPONSES),
        )
        add(
            item,
            self.lookup,
            methods=["GET"],
            **self._doc("Look up", "get", schemas.READ_RESPONSES),
        )
        add(
            path,
            self.list_entities,
            methods=["GET"],
            **self._doc("List", "list", schemas.LIST_RESPONSES),
        )
        add(
            item,
            self.patch,
            methods=["PATCH"],
            openapi_extra=patch_body,
            **self._doc("Update with a JSON Patch", "patch", schemas.UPDATE_RESPONSES),
        )
        add(
            item,
            self.replace,
            methods=["PUT"],
            openapi_extra=request_body,
            **self._doc("Replace", "replace", schemas.UPDATE_RESPONSES),
        )
        add(
            item,
            self.delete,
            methods=["DELETE"],
            **self._doc("Delete", "delete", schemas.DELETE_RESPONSES),
        )

    def _doc(
        self, summary: str, name: str, responses: dict[int | str, dict[str, Any]]
    ) -> dict[str, Any]:
        # The same naming for every collection keeps operation ids unique across the API.
        return {
            "responses": responses,
            "summary": f"{summary} ({self.path})",
            "operation_id": f"{self.path}-{name}",
        }

    async def create_auto_id(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        offer_type: OfferType = None,
    ) -> Response:
        return await self._create(request, caller, services, None, offer_type)

    async def create_with_id(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        return await self._create(request, caller, services, entity_id, offer_type)

    async def _create(
        self,
        request: Request,
        caller: Caller,
        services: ServicesDep,
        entity_id: str | None,
        offer_type: str | None,
    ) -> Response:
        kind = kind_to_create(self.path, offer_type)
        raw = await read_json(request)
        async with _catalog_write(services, caller) as conn:
            entity = await Library(conn, caller.sandbox).create(
                kind, raw, _actor(caller), entity_id
            )
        # Percent-encoded: a chosen id may hold any character, a header only latin-1.
        location = f"{ROOT}/{self.path}/{quote(entity.id, safe='')}"
        headers = {"Location": location, **_etag(entity.etag)}
        return json_response(entity.receipt(caller.sandbox), 201, headers)

    async def lookup(
        self,
        caller: CallerDep,
        services: ServicesDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        kinds = kinds_for(self.path, offer_type)
        async with transaction(services.db, write=False) as conn:
            entity = await Library(conn, caller.sandbox).get(kinds, entity_id)
        return json_response(entity.read_form(), headers=_etag(entity.etag))

    async def list_entities(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        offer_type: OfferType = None,
        property: PropertyFilter = None,
        orderby: OrderBy = None,
        limit: Limit = DEFAULT_PAGE_SIZE,
        start: Start = None,
    ) -> Response:
        unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
        if unknown:
            message = (
                f"'{unknown[0]}' is not a parameter of this list; it takes "
                + ", ".join(sorted(LIST_PARAMETERS - {"orderBy"}))
                + "."
            )
            raise ApiProblem(400, "Bad Request", message, errors=[field_error(unknown[0], message)])
        # Adobe's parameter tables spell it orderBy, their examples orderby.
        orderby = orderby or request.query_params.get("orderBy")
        kinds = kinds_for(self.path, offer_type)
        try:
            terms = parse_properties(property or [])
            order = parse_orderby(orderby)
        except ListQueryError as exc:
            raise ApiProblem(
                400, "Bad Request", exc.message, errors=[field_error(exc.parameter, exc.message)]
            ) from exc
        signer = CursorSigner(services.settings.resolved_secret_key, caller.sandbox.pk)
        position = None
        query = request.query_params.multi_items()
        if start is not None and not is_issued_cursor(start):
            # Adobe's form of `start`: a filter on the first sort key, which the next links
            # carry on as a property term.
            after = boundary(start, order)
            terms = [*terms, after]
            query = [*query, ("property", f"{after.field}{after.op}{after.value}")]
        else:
            position = signer.open(start)
        async with transaction(services.db, write=False) as conn:
            page = await Library(conn, caller.sandbox).list(kinds, terms, order, limit, position)
        return json_response(
            {
                "results": [entity.read_form() for entity in page.items],
                "count": len(page.items),
                "total": page.total,
                "_links": library_links(self.path, query, orderby, limit, page, signer),
            }
        )

    async def patch(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        return await self._update(
            request, caller, services, entity_id, offer_type, _patch_transform
        )

    async def replace(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        return await self._update(
            request, caller, services, entity_id, offer_type, _replace_transform
        )

    async def _update(
        self,
        request: Request,
        caller: Caller,
        services: ServicesDep,
        entity_id: str,
        offer_type: str | None,
        transform_for: TransformFor,
    ) -> Response:
        kinds = kinds_for(self.path, offer_type)
        raw = await read_json(request)
        if_match = request.headers.get("if-match")
        transform = transform_for(raw, services)
        # The patch is applied and the result validated before the write lock is taken; under
        # it, the draft is used unless another write changed the entity meanwhile.
        async with transaction(services.db, write=False) as conn:
            draft = await Library(conn, caller.sandbox).draft(kinds, entity_id, transform, if_match)
        async with _catalog_write(services, caller) as conn:
            entity = await Library(conn, caller.sandbox).update(
                kinds, entity_id, transform, _actor(caller), if_match, draft
            )
        return json_response(entity.receipt(caller.sandbox), headers=_etag(entity.etag))

    async def delete(
        self,
        request: Request,
        caller: CallerDep,
        services: ServicesDep,
        entity_id: str,
        offer_type: OfferType = None,
    ) -> Response:
        kinds = kinds_for(self.path, offer_type)
        async with _catalog_write(services, caller) as conn:
            await Library(conn, caller.sandbox).delete(
                kinds, entity_id, request.headers.get("if-match"), _actor(caller)
            )
        return Response(b"", 200)


def build_router() -> APIRouter:
    router = APIRouter(prefix=ROOT, tags=["Offer Library"])
    for path in COLLECTIONS:
        CollectionRoutes(path).register(router)
    return router
