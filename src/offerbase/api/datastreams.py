"""Datastreams over HTTP (`/data/core/edge/datastreams`): create, list, read and delete the
caller's sandbox's datastreams, authenticated like the Offer Library API. The Edge endpoints
themselves (`/ee/...`) find a datastream through `Services.datastreams` (api/datastream_cache.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from offerbase.api import schemas
from offerbase.api.auth import CallerDep
from offerbase.api.bodies import read_json
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem, field_error
from offerbase.api.responses import json_response
from offerbase.api.store_problems import transaction
from offerbase.catalog.specs import MAX_ITEM_COUNT
from offerbase.store import datastreams as store
from offerbase.store.errors import MAX_NAME_CHARS

ROOT = "/data/core/edge/datastreams"
router = APIRouter(prefix=ROOT, tags=["Edge datastreams"])

# What the routes check of a body, published as it is checked (store/datastreams.py).
_ORIGIN_SCHEMA = {
    "type": "string",
    "maxLength": store.MAX_ORIGIN_CHARS,
    "pattern": store.ORIGIN_PATTERN,
    "description": "scheme://host[:port] (http or https), no path; stored lower-case, without "
    "the scheme's default port.",
}
_ORIGINS_SCHEMA = {"type": "array", "maxItems": store.MAX_ORIGINS, "items": _ORIGIN_SCHEMA}
_ITEM_COUNTS_SCHEMA = {
    "type": "object",
    "maxProperties": store.MAX_ITEM_COUNTS,
    "propertyNames": {"minLength": 1, "maxLength": store.MAX_PLACEMENT_ID_CHARS},
    "additionalProperties": {"type": "integer", "minimum": 1, "maximum": MAX_ITEM_COUNT},
    "description": "Placement id -> the itemCount of a decision scope that names none.",
}
_NAME_SCHEMA = {"type": "string", "maxLength": MAX_NAME_CHARS}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": _NAME_SCHEMA,
        "origins": _ORIGINS_SCHEMA,
        "itemCounts": _ITEM_COUNTS_SCHEMA,
    },
}
_ID_SCHEMA = {"type": "string", "pattern": store.ID_PATTERN, "maxLength": store.MAX_ID_CHARS}
DATASTREAM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "org", "sandbox", "name", "origins", "itemCounts", "created"],
    "properties": {
        "id": _ID_SCHEMA,
        "org": {"type": "string"},
        "sandbox": {"type": "string"},
        "name": {"type": "string"},
        "origins": {"type": "array", "items": {"type": "string"}},
        "itemCounts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "created": {"type": "string"},
    },
}
_LIST_SCHEMA = {
    "type": "object",
    "required": ["results", "count"],
    "properties": {
        "results": {"type": "array", "items": DATASTREAM_SCHEMA},
        "count": {"type": "integer"},
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NOT_FOUND = schemas.problem_response("No datastream with this id in the caller's sandbox.")
DatastreamId = Annotated[
    str,
    # Published only: a malformed id is answered like an unknown one, 404.
    Path(alias="datastreamId", json_schema_extra=_ID_SCHEMA),
]
_FIELDS = frozenset(CREATE_SCHEMA["properties"])


def _not_found(datastream_id: str) -> ApiProblem:
    return ApiProblem(
        404, "Not Found", f"No datastream with id '{datastream_id[:80]}' in this sandbox."
    )


def _unprocessable(pointer: str, message: str) -> ApiProblem:
    return ApiProblem(
        422, "Unprocessable Entity", f"{pointer}: {message}", errors=[field_error(pointer, message)]
    )


def _create_fields(body: Any) -> tuple[str, list[Any], dict[Any, Any]]:
    """The body's name, origins and itemCounts, of the right JSON types (their values are the
    store's to check)."""
    if not isinstance(body, dict):
        raise _unprocessable("", "The body is a JSON object.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _unprocessable(
            f"/{unknown[0]}", f"Unknown field; a datastream has {', '.join(sorted(_FIELDS))}."
        )
    name, origins, item_counts = (
        body.get("name", ""),
        body.get("origins", []),
        body.get("itemCounts", {}),
    )
    if not isinstance(name, str):
        raise _unprocessable("/name", "The name is a string.")
    if not isinstance(origins, list):
        raise _unprocessable("/origins", "The origins are an array of strings.")
    if not isinstance(item_counts, dict):
        raise _unprocessable("/itemCounts", "The itemCounts are an object: placement id -> n.")
    return name, origins, item_counts


@router.post(
    "",
    summary="Create a datastream (its id is generated)",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CREATE_SCHEMA}},
        }
    },
    responses={
        **schemas.COMMON_RESPONSES,
        201: _json("Created; the datastream. Location names it.", DATASTREAM_SCHEMA),
        413: schemas.problem_response("The body is too large."),
        422: schemas.problem_response("Invalid field values; `errors` names each JSON pointer."),
    },
)
async def create_datastream(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    name, origins, item_counts = _create_fields(await read_json(request))
    async with transaction(services.db, write=True) as conn:
        created = await store.create_datastream(
            conn, caller.sandbox, name=name, origins=origins, item_counts=item_counts
        )
    services.datastreams.forget(created.id)  # a cached "not found" of this id is stale
    return json_response(created.shown(), 201, headers={"Location": f"{ROOT}/{created.id}"})


@router.get(
    "",
    summary="List the sandbox's datastreams, oldest first",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json(f"Every datastream (at most {store.MAX_PER_SANDBOX}).", _LIST_SCHEMA),
    },
)
async def list_datastreams(caller: CallerDep, services: ServicesDep) -> Response:
    async with transaction(services.db, write=False) as conn:
        found = await store.list_datastreams(conn, caller.sandbox)
    results = [datastream.shown() for datastream in found]
    return json_response({"results": results, "count": len(results)})


@router.get(
    "/{datastreamId}",
    summary="Read a datastream",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json("The datastream.", DATASTREAM_SCHEMA),
        404: _NOT_FOUND,
    },
)
async def get_datastream(
    caller: CallerDep, services: ServicesDep, datastream_id: DatastreamId
) -> Response:
    async with transaction(services.db, write=False) as conn:
        found = await store.get_datastream(conn, caller.sandbox, datastream_id)
    if found is None:
        raise _not_found(datastream_id)
    return json_response(found.shown())


@router.delete(
    "/{datastreamId}",
    summary="Delete a datastream; Edge requests naming it are refused within a second",
    status_code=204,
    response_class=Response,
    responses={
        **schemas.COMMON_RESPONSES,
        204: {"description": "Deleted; no body."},
        404: _NOT_FOUND,
    },
)
async def delete_datastream(
    caller: CallerDep, services: ServicesDep, datastream_id: DatastreamId
) -> Response:
    async with transaction(services.db, write=True) as conn:
        deleted = await store.delete_datastream(conn, caller.sandbox, datastream_id)
    if not deleted:
        raise _not_found(datastream_id)
    services.datastreams.forget(datastream_id)
    return Response(status_code=204)
