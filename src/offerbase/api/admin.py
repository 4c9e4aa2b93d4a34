"""Credential administration over HTTP, for admin credentials, within their organization.

An admin credential (`offerbase credentials create --admin`, and the first credential that
`offerbase serve` creates on an empty database) may list, revoke and rotate the credentials of
its own organization, itself included. Nothing here shows a secret hash; a rotation shows the
new secret once. The same operations are `offerbase credentials list|revoke|rotate`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from offerbase.api import schemas
from offerbase.api.auth import authenticate_headers
from offerbase.api.deps import ServicesDep, services
from offerbase.api.problems import ApiProblem
from offerbase.api.responses import json_response
from offerbase.api.store_problems import transaction
from offerbase.store import tenants
from offerbase.store.tenants import Credential

ROOT = "/admin/credentials"
router = APIRouter(prefix=ROOT, tags=["Credentials"])

_CREDENTIAL_PROPERTIES: dict[str, Any] = {
    "client_id": {"type": "string"},
    "org": {"type": "string"},
    "name": {"type": "string"},
    "sandbox": {"type": ["string", "null"], "description": "null: every sandbox"},
    "admin": {"type": "boolean"},
    "created": {"type": "string"},
    "revoked": {"type": ["string", "null"]},
}
_CREDENTIAL_SCHEMA = {
    "type": "object",
    "required": list(_CREDENTIAL_PROPERTIES),
    "properties": _CREDENTIAL_PROPERTIES,
}
_ROTATED_SCHEMA = {
    "type": "object",
    "required": [*_CREDENTIAL_PROPERTIES, "client_secret"],
    "properties": {**_CREDENTIAL_PROPERTIES, "client_secret": {"type": "string"}},
}
_NOT_FOUND = schemas.problem_response("No credential with this client id in the organization.")


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


async def _admin(request: Request) -> Credential:
    credential = await authenticate_headers(request, services(request))
    if not credential.admin:
        raise ApiProblem(403, "Forbidden", "Only an admin credential may manage credentials.")
    return credential


AdminDep = Annotated[Credential, Depends(_admin)]


def _missing(client_id: str) -> ApiProblem:
    return ApiProblem(404, "Not Found", f"No credential '{client_id}' in this organization.")


@router.get(
    "",
    summary="List the organization's credentials",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json(
            {
                "type": "object",
                "required": ["results", "count"],
                "properties": {
                    "results": {"type": "array", "items": _CREDENTIAL_SCHEMA},
                    "count": {"type": "integer"},
                },
            },
            "Every credential of the organization, revoked ones included.",
        ),
    },
)
async def list_credentials(admin: AdminDep, found: ServicesDep) -> Response:
    async with transaction(found.db, write=False) as conn:
        listed = await tenants.list_credentials(conn, admin.org)
    results = [credential.shown() for credential in listed]
    return json_response({"results": results, "count": len(results)})


@router.post(
    "/{client_id}/revoke",
    summary="Revoke a credential: its secret and tokens stop working within a second",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json(_CREDENTIAL_SCHEMA, "The revoked credential (revoking again changes nothing)."),
        404: _NOT_FOUND,
    },
)
async def revoke_credential(client_id: str, admin: AdminDep, found: ServicesDep) -> Response:
    async with transaction(found.db, write=True) as conn:
        revoked = await tenants.revoke_credential(conn, client_id, admin.org)
    if revoked is None:
        raise _missing(client_id)
    found.credentials.invalidate()
    return json_response(revoked.shown())


@router.post(
    "/{client_id}/rotate",
    summary="Give a credential a new secret (shown once); the old secret and its tokens end",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json(_ROTATED_SCHEMA, "The credential and its new secret, shown this once."),
        404: _NOT_FOUND,
        409: schemas.problem_response("The credential is revoked."),
    },
)
async def rotate_credential(client_id: str, admin: AdminDep, found: ServicesDep) -> Response:
    try:
        async with transaction(found.db, write=True) as conn:
            rotated = await tenants.rotate_credential(conn, client_id, admin.org)
            current = await tenants.get_credential(conn, client_id)
    except tenants.CredentialRevoked as exc:
        raise ApiProblem(
            409, "Conflict", f"Credential '{client_id}' is revoked; create a new one."
        ) from exc
    if rotated is None or current is None:
        raise _missing(client_id)
    found.credentials.invalidate()
    return json_response({**current.shown(), "client_secret": rotated.client_secret})
