"""Who is calling and in which tenant: Adobe's four headers, checked in the gateway's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from offerbase.api import tokens
from offerbase.api.deps import services
from offerbase.api.problems import ApiProblem, GatewayError
from offerbase.store import tenants
from offerbase.store.tenants import Sandbox


@dataclass(frozen=True)
class Caller:
    client_id: str
    org: str
    sandbox: Sandbox


def bearer_token(header: str | None) -> str | None:
    """`Bearer <token>`; any run of spaces is accepted (two of Adobe's own examples send two)."""
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def authenticate_headers(request: Request, signing_key: str) -> tokens.Claims:
    headers = request.headers
    if not headers.get("authorization"):
        raise GatewayError(403, "403010", "Oauth token is missing.")
    if not headers.get("x-api-key"):
        raise GatewayError(403, "403000", "Api Key is required")
    org = headers.get("x-gw-ims-org-id")
    if not org:
        raise GatewayError(400, "400003", "Missing header")
    token = bearer_token(headers.get("authorization"))
    claims = tokens.verify(token, signing_key) if token else None
    if claims is None:
        raise GatewayError(401, "401013", "Oauth token is not valid")
    if headers["x-api-key"] != claims.client_id:
        raise GatewayError(403, "403003", "Api Key is invalid")
    if org != claims.org:
        raise GatewayError(403, "403025", "Profile is not valid")
    return claims


async def current_caller(request: Request) -> Caller:
    """FastAPI dependency for every /data/core route."""
    found = services(request)
    claims = authenticate_headers(request, found.settings.resolved_secret_key)
    name = request.headers.get("x-sandbox-name") or tenants.DEFAULT_SANDBOX
    sandbox = await found.sandboxes.get(claims.org, name)
    if sandbox is None:
        raise ApiProblem(
            404,
            "Sandbox Not Found",
            f"Organization '{claims.org}' has no sandbox named '{name}'.",
        )
    return Caller(claims.client_id, claims.org, sandbox)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def current_org(request: Request) -> str:
    """FastAPI dependency for organization-wide routes (a container list): the credential's
    organization; no `x-sandbox-name` is needed."""
    return authenticate_headers(request, services(request).settings.resolved_secret_key).org


OrgDep = Annotated[str, Depends(current_org)]
