"""Platform routes: the IMS-like token endpoint and the health checks (readiness, liveness)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response

from offerbase.api import tokens
from offerbase.api.deps import ServicesDep, services
from offerbase.api.responses import json_response

router = APIRouter(tags=["Platform"])

_OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
    }
}
_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}},
        "description": "A bearer token.",
    },
    400: {
        "description": "OAuth2 error: invalid_request or unsupported_grant_type.",
        "content": _OAUTH_ERROR,
    },
    401: {
        "description": "OAuth2 error: invalid_client (unknown, revoked or wrong secret).",
        "content": _OAUTH_ERROR,
    },
    429: {
        "description": "OAuth2 error slow_down: too many failed attempts for the client id or "
        "from the address; Retry-After says when to try again.",
        "content": _OAUTH_ERROR,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TOKEN_REQUEST: dict[str, Any] = {
    "requestBody": {
        # Required, and the credential's members non-empty: token() refuses anything less.
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "client_id", "client_secret"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string", "minLength": 1},
                        "client_secret": {"type": "string", "minLength": 1},
                        "scope": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/ims/token/v2",
    summary="Exchange client credentials for an access token (IMS v2, same as v3)",
    responses=_TOKEN_RESPONSES,
    operation_id="issue_token_v2",
    openapi_extra=_TOKEN_REQUEST,
)
@router.post(
    "/ims/token/v3",
    summary="Exchange client credentials for an access token (OAuth2 client_credentials)",
    responses=_TOKEN_RESPONSES,
    openapi_extra=_TOKEN_REQUEST,
)
async def issue_token(request: Request, services: ServicesDep) -> Response:
    """IMS v3 and v2 alike: the fields come from a form body, and all but the secret may come
    from the query string too (as Adobe's v2 samples send them)."""
    if "client_secret" in request.query_params and not services.settings.token_secret_in_query:
        # RFC 6749 §2.3.1: a secret in the URL ends up in access logs, proxies and history.
        return _oauth_error(
            400,
            "invalid_request",
            "client_secret must be sent in the form body, not in the query string "
            "(OFFERBASE_TOKEN_SECRET_IN_QUERY=true accepts it there).",
        )
    fields: dict[str, str] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith(_FORM_TYPES):
        try:
            form = await request.form()
        except Exception:
            return _oauth_error(400, "invalid_request", "The form body could not be parsed.")
        fields.update({key: value for key, value in form.items() if isinstance(value, str)})
    elif await request.body():
        media = content_type.split(";", 1)[0].strip() or "no Content-Type"
        return _oauth_error(
            400,
            "invalid_request",
            f"The body must be form-encoded (application/x-www-form-urlencoded), as OAuth 2.0 "
            f"token requests are; got {media}.",
        )
    grant_type = fields.get("grant_type")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials.")
    client_id, secret = fields.get("client_id"), fields.get("client_secret")
    if not client_id or not secret:
        return _oauth_error(400, "invalid_request", "client_id and client_secret are required.")
    checker = services.secrets
    address = request.client.host if request.client else ""
    wait = await checker.throttle.retry_after(client_id, address)
    if wait is not None:
        await anyio.sleep(services.settings.token_failure_delay_seconds)
        response = _oauth_error(
            429,
            "slow_down",
            f"Too many failed attempts for this client_id or from this address; retry in {wait} s.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    credential = await checker.check(services.db, client_id, secret)
    if credential is None:
        await checker.throttle.failed(client_id, address)
        await anyio.sleep(services.settings.token_failure_delay_seconds)
        return _oauth_error(401, "invalid_client", "Unknown client_id or wrong client_secret.")
    settings = services.settings
    ttl = settings.token_ttl_seconds
    token = tokens.issue(
        client_id,
        credential.org,
        settings.resolved_secret_key,
        ttl,
        generation=credential.generation,
    )
    return json_response({"access_token": token, "token_type": "bearer", "expires_in": ttl})


_HEALTH = {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
# A dependency that does not answer within this is reported down: a load balancer's probe
# must get an answer, not hang as long as the outage.
HEALTH_TIMEOUT_SECONDS = 2.0


async def _state(probe: Callable[[], Awaitable[bool]]) -> str:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            return "ok" if await probe() else "unavailable"
    except Exception:  # a dependency that fails its probe in any way is down
        return "unavailable"


@router.get(
    "/health",
    summary="Readiness: every dependency of the decision path answers",
    responses={
        200: {"content": _HEALTH, "description": "Ready: every check is ok."},
        503: {"content": _HEALTH, "description": "Not ready: a check is unavailable."},
    },
)
async def health(request: Request) -> Response:
    # The request itself, not ServicesDep: load balancers call this often, and resolving a
    # dependency is most of what it would cost.
    found = services(request)
    probes = {"database": found.db.ping}
    if found.settings.redis_url:
        probes["redis"] = found.counters.ping
    states = await asyncio.gather(*(_state(probe) for probe in probes.values()))
    checks = dict(zip(probes, states, strict=True))
    if all(state == "ok" for state in states):
        return json_response({"status": "ok", "checks": checks})
    return json_response({"status": "unavailable", "checks": checks}, 503)


@router.get(
    "/health/live",
    summary="Liveness: the process answers (no dependency is checked)",
    responses={200: {"content": _HEALTH, "description": "Alive."}},
)
async def live() -> Response:
    # Cheap on purpose: a dependency outage must not make an orchestrator restart healthy
    # processes; readiness (/health) is what takes a worker out of rotation.
    return json_response({"status": "ok"})
