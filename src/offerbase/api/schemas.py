"""Response models and OpenAPI components: what the served /openapi.json promises."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Receipt(BaseModel):
    """Write receipt returned by POST, PATCH and PUT."""

    etag: int
    createdBy: str
    lastModifiedBy: str
    id: str
    sandboxId: str
    createdDate: str
    lastModifiedDate: str
    createdByClientId: str
    lastModifiedByClientId: str


class ReadForm(BaseModel):
    """An entity as read: its own fields plus metadata."""

    model_config = ConfigDict(extra="allow")
    id: str
    etag: int
    created: str
    modified: str
    createdBy: str
    lastModifiedBy: str
    schemas: list[str]


class Link(BaseModel):
    href: str
    type: str


class Links(BaseModel):
    self: Link
    next: Link | None = None
    prev: Link | None = None


class ListEnvelope(BaseModel):
    results: list[ReadForm]
    count: int
    total: int
    links: Links = Field(alias="_links")


class FieldProblem(BaseModel):
    pointer: str
    detail: str


class Problem(BaseModel):
    """RFC 7807 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


class GatewayErrorBody(BaseModel):
    """Authentication failures, in the platform gateway's shape."""

    error_code: str
    message: str
    detail: str = Field(description="What is wrong, for a person (an Offerbase addition).")
    header: str | None = Field(default=None, description="The request header at fault.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class Health(BaseModel):
    status: str = Field(description="`ok`, or `unavailable` when a dependency is down.")
    checks: dict[str, str] | None = Field(
        default=None,
        description="Readiness (`GET /health`): `ok` or `unavailable` for each dependency of the "
        "decision path (`database`, and `redis` when counters are in Redis). Absent from "
        "`GET /health/live`.",
    )


def problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def gateway_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/GatewayErrorBody"}}
        },
    }


_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: gateway_response("Invalid or expired token (401013)."),
    403: {
        "description": "Missing token (403010), missing or invalid API key (403000/403003), "
        "token of another organization (403025); a problem body when the credential may not "
        "use the sandbox (or, on admin routes, is not an admin).",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/GatewayErrorBody"}},
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
    },
}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_AUTH_RESPONSES,
    400: {
        "description": "Malformed request, or the missing org header (gateway body 400003).",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/GatewayErrorBody"}},
        },
    },
    404: problem_response("No such entity (or sandbox) in the caller's organization."),
}
_RECEIPT = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}}}

WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    201: {"description": "Created; the write receipt.", **_RECEIPT},
    409: problem_response("The id is already taken."),
    413: problem_response("The body is too large."),
    422: problem_response("Invalid field values or references; `errors` names each JSON pointer."),
}
UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    200: {"description": "Updated; the write receipt.", **_RECEIPT},
    409: problem_response("A JSON Patch `test` operation failed."),
    412: problem_response("If-Match does not match the current etag."),
    413: problem_response("The body is too large."),
    422: problem_response("The result would be invalid; `errors` names each JSON pointer."),
}
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    200: {
        "description": "The entity.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReadForm"}}},
    },
}
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    200: {
        "description": "One page.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ListEnvelope"}}},
    },
    422: problem_response("Invalid query parameter."),
}
DELETE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    200: {"description": "Deleted; empty body."},
    409: problem_response("Other entities still reference this one; `referrers` lists them."),
    412: problem_response("If-Match does not match the current etag."),
}

RESPONSE_MODELS: list[type[BaseModel]] = [
    Receipt,
    ReadForm,
    ListEnvelope,
    Problem,
    GatewayErrorBody,
    TokenResponse,
    Health,
]


def request_schema_name(path: str) -> str:
    return "Request_" + path.replace("-", "_")
