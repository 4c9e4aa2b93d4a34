"""Who is calling and in which tenant: Adobe's four headers, checked in the gateway's order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from offerbase.api import tokens
from offerbase.api.deps import Services, services
from offerbase.api.problems import ApiProblem, GatewayError
from offerbase.store import tenants
from offerbase.store.tenants import Credential, Sandbox


@dataclass(frozen=True)
class Caller:
    client_id: str
    org: str
    sandbox: Sandbox
    credential: Credential


def bearer_token(header: str | None) -> str | None:
    """`Bearer <token>`; any run of spaces is accepted (two of Adobe's own examples send two)."""
    if not header:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _invalid_token(detail: str) -> GatewayError:
    return GatewayError(401, "401013", "Oauth token is not valid", detail, header="Authorization")


def _unusable_token(token: str | None, key: str) -> GatewayError:
    """Why a token did not verify: malformed, not ours, or expired."""
    if token is None:
        return _invalid_token("The Authorization header must be `Bearer <access token>`.")
    expired = tokens.expired_at(token, key)
    if expired is None:
        return _invalid_token("The token was not issued by this server, or is malformed.")
    when = datetime.fromtimestamp(expired, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _invalid_token(f"The token expired at {when}; get a new one from POST /ims/token/v3.")


def _missing(status: int, code: str, message: str, header: str) -> GatewayError:
    return GatewayError(status, code, message, f"The {header} header is missing.", header=header)


async def authenticate_headers(request: Request, found: Services) -> Credential:
    """The calling credential: a valid token of its current generation, not revoked, whose
    client id and organization match the headers."""
    headers = request.headers
    if not headers.get("authorization"):
        raise _missing(403, "403010", "Oauth token is missing.", "Authorization")
    if not headers.get("x-api-key"):
        raise _missing(403, "403000", "Api Key is required", "x-api-key")
    org = headers.get("x-gw-ims-org-id")
    if not org:
        raise _missing(400, "400003", "Missing header", "x-gw-ims-org-id")
    key = found.settings.resolved_secret_key
    token = bearer_token(headers.get("authorization"))
    claims = tokens.verify(token, key) if token else None
    if claims is None:
        raise _unusable_token(token, key)
    # Not cached beyond credential_poll_seconds: a revocation or a rotation ends the token.
    credential = await found.credentials.get(claims.client_id)
    if credential is None or credential.org != claims.org:
        raise _invalid_token("The token's credential does not exist.")
    if credential.revoked is not None:
        raise _invalid_token("The token's credential was revoked.")
    if credential.generation != claims.generation:
        raise _invalid_token(
            "The credential's secret was rotated since this token was issued; get a new token."
        )
    if headers["x-api-key"] != claims.client_id:
        raise GatewayError(
            403,
            "403003",
            "Api Key is invalid",
            "x-api-key must be the client id the token was issued to.",
            header="x-api-key",
        )
    if org != claims.org:
        raise GatewayError(
            403,
            "403025",
            "Profile is not valid",
            "x-gw-ims-org-id must be the organization of the token's credential.",
            header="x-gw-ims-org-id",
        )
    return credential


def require_sandbox(credential: Credential, name: str) -> None:
    """A credential created for one sandbox may use that sandbox only (403 otherwise, whether
    the other sandbox exists or not: the answer tells nothing about other sandboxes)."""
    if not credential.may_use(name):
        raise ApiProblem(
            403,
            "Forbidden",
            f"This credential may only be used in sandbox '{credential.sandbox}', not in '{name}'.",
        )


async def current_caller(request: Request) -> Caller:
    """FastAPI dependency for every /data/core route."""
    found = services(request)
    credential = await authenticate_headers(request, found)
    name = request.headers.get("x-sandbox-name") or tenants.DEFAULT_SANDBOX
    require_sandbox(credential, name)
    sandbox = await found.sandboxes.get(credential.org, name)
    if sandbox is None:
        raise ApiProblem(
            404,
            "Sandbox Not Found",
            f"Organization '{credential.org}' has no sandbox named '{name}'.",
        )
    return Caller(credential.client_id, credential.org, sandbox, credential)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def current_credential(request: Request) -> Credential:
    """FastAPI dependency for organization-wide routes (a container list): the calling
    credential; no `x-sandbox-name` is needed."""
    return await authenticate_headers(request, services(request))


CredentialDep = Annotated[Credential, Depends(current_credential)]
