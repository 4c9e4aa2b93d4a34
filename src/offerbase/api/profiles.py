"""Stored profiles (`/data/core/ups/profiles`): put, read, patch, delete, and NDJSON bulk import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from offerbase.api import schemas
from offerbase.api.auth import CallerDep
from offerbase.api.bodies import read_json
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.responses import json_response
from offerbase.api.store_problems import transaction
from offerbase.catalog.schema import NOT_SPACE
from offerbase.store import profiles as store
from offerbase.store.profiles import LineTooLong, Profiles

ROOT = "/data/core/ups/profiles"
# The longest NDJSON line read (a profile is at most 256 KB as compact JSON; allow whitespace).
MAX_IMPORT_LINE = 2 * store.MAX_PROFILE_BYTES
IMPORT_MEDIA_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json"}
)

_TOO_LONG = LineTooLong(f"The line is longer than {MAX_IMPORT_LINE} bytes.")


_PROFILE = {"content": {"application/json": {"schema": {"type": "object"}}}}
_STORED = {"description": "The stored profile.", **_PROFILE}
_COMMON: dict[int | str, dict[str, Any]] = {
    **schemas.COMMON_RESPONSES,  # auth (401/403) and 400, as for the Offer Library
    404: schemas.problem_response(
        "No profile with this identity (or no such sandbox) in the caller's tenant."
    ),
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    200: _STORED,
    409: schemas.problem_response(
        "An identity belongs to another profile, or a JSON Patch `test` failed."
    ),
    413: schemas.problem_response("The profile is larger than 256 KB."),
}
router = APIRouter(prefix=ROOT, tags=["profiles"])
_BY_IDENTITY = "/{namespace}/{identity:path}"

# What store.prepare_body checks of a profile, published (any other member is free-form XDM).
# A profile has at most MAX_PROFILE_IDENTITIES identities in all, which JSON Schema cannot
# count across namespaces; it is said in the description.
_NAMESPACE_SCHEMA = {
    "type": "string",
    "pattern": NOT_SPACE,
    "maxLength": store.MAX_NAMESPACE_CHARS,
}
_IDENTITY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": store.MAX_IDENTITY_CHARS}
PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": f"An XDM profile, at most {store.MAX_PROFILE_BYTES // 1024} KB as JSON and "
    f"{store.MAX_PROFILE_IDENTITIES} identities in all.",
    "properties": {
        "identityMap": {
            "type": "object",
            "propertyNames": _NAMESPACE_SCHEMA,
            "additionalProperties": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": _IDENTITY_SCHEMA, "primary": {"type": "boolean"}},
                },
            },
        },
        "segmentMembership": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"status": {"enum": sorted(store.SEGMENT_STATUSES)}},
                },
            },
        },
    },
}
Namespace = Annotated[str, Path(json_schema_extra=_NAMESPACE_SCHEMA)]
Identity = Annotated[str, Path(json_schema_extra=_IDENTITY_SCHEMA)]


def _body(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


def _not_found(namespace: str, identity: str) -> ApiProblem:
    return ApiProblem(
        404,
        "Not Found",
        f"No profile with identity {store.profile_key(namespace, identity)} in this sandbox.",
    )


@router.post(
    "/import",
    summary="Import profiles (NDJSON, one profile per line)",
    openapi_extra=_body("application/x-ndjson", {"type": "string"}),
    responses={
        **_COMMON,
        200: {"description": "Import summary.", **_PROFILE},
        415: schemas.problem_response("Not NDJSON."),
    },
)
async def import_profiles(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in IMPORT_MEDIA_TYPES:
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            "Send one profile per line with Content-Type: application/x-ndjson.",
        )
    summary = await store.import_lines(services.db, caller.sandbox, _lines(request))
    return json_response(summary.as_dict())


async def _lines(request: Request) -> AsyncIterator[str | bytes]:
    """The body's lines as they arrive; a line longer than the limit becomes a LineTooLong."""
    buffer = bytearray()
    skipping = False
    async for chunk in request.stream():
        buffer.extend(chunk)
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if skipping:
                skipping = False
                yield _TOO_LONG
            else:
                yield line
        if not skipping and len(buffer) > MAX_IMPORT_LINE:
            skipping = True
        if skipping:
            buffer.clear()
    if skipping:
        yield _TOO_LONG
    elif buffer.strip():
        yield bytes(buffer)


@router.put(
    _BY_IDENTITY,
    summary="Create or replace a profile",
    openapi_extra=_body("application/json", PROFILE_SCHEMA),
    responses={**_WRITE, 201: {"description": "Created; the stored profile.", **_PROFILE}},
)
async def put_profile(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    namespace: Namespace,
    identity: Identity,
) -> Response:
    body = await read_json(request)
    async with transaction(services.db, write=True) as conn:
        result = await Profiles(conn, caller.sandbox).upsert(namespace, identity, body)
    return json_response(result.body, 201 if result.created else 200)


@router.get(
    _BY_IDENTITY,
    summary="Read a profile by any of its identities",
    responses={**_COMMON, 200: _STORED},
)
async def get_profile(
    caller: CallerDep, services: ServicesDep, namespace: Namespace, identity: Identity
) -> Response:
    async with transaction(services.db, write=False) as conn:
        body = await Profiles(conn, caller.sandbox).get(namespace, identity)
    if body is None:
        raise _not_found(namespace, identity)
    return json_response(body)


@router.patch(
    _BY_IDENTITY,
    summary="Update a profile: JSON merge patch (object) or JSON Patch (array)",
    openapi_extra=_body("application/json", {"$ref": "#/components/schemas/JsonPatchOrMerge"}),
    responses=_WRITE,
)
async def patch_profile(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    namespace: Namespace,
    identity: Identity,
) -> Response:
    patch = await read_json(request)
    async with transaction(services.db, write=True) as conn:
        body = await Profiles(conn, caller.sandbox).merge(namespace, identity, patch)
    return json_response(body)


@router.delete(
    _BY_IDENTITY,
    summary="Delete a profile and all its identities",
    response_class=Response,  # 200 with an empty body, no content type
    responses={**_COMMON, 200: {"description": "Deleted; empty body."}},
)
async def delete_profile(
    caller: CallerDep, services: ServicesDep, namespace: Namespace, identity: Identity
) -> Response:
    async with transaction(services.db, write=True) as conn:
        deleted = await Profiles(conn, caller.sandbox).delete(namespace, identity)
    if not deleted:
        raise _not_found(namespace, identity)
    return Response(status_code=200)
