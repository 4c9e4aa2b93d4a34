"""The Decisioning API in the served OpenAPI document: its routes are plain Starlette routes (the
lean hot path), so FastAPI does not describe them; this module does. The request body's schema
is generated from the typed model that parses it (decision_request_model.py)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from offerbase.api import schemas
from offerbase.api.decision_request_model import DecisionRequestBody
from offerbase.api.ode import CONTAINER_PROPERTIES

_REF_TEMPLATE = "#/components/schemas/{name}"


def without_null(node: Any) -> Any:
    """msgspec writes an optional member as `anyOf: [X, null]` with `default: null`. The API
    reads null as absent, but the contract documents the member's own type only (as Adobe's
    does): keep X. Empty `required` lists go too."""
    if isinstance(node, list):
        return [without_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        kept = [option for option in options if option != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k != "anyOf" and (k, v) != ("default", None)}
        node = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **rest}
    return {
        key: without_null(value) for key, value in node.items() if (key, value) != ("required", [])
    }


def request_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body's schema (a reference) and the components it refers to."""
    (body,), components = msgspec.json.schema_components(
        [DecisionRequestBody], ref_template=_REF_TEMPLATE
    )
    return body, {name: without_null(schema) for name, schema in components.items()}


_REQUEST_REF, REQUEST_COMPONENTS = request_schemas()

_REF = {
    "type": "object",
    "required": ["xdm:id", "repo:etag"],
    "properties": {"xdm:id": {"type": "string"}, "repo:etag": {"type": "integer"}},
}
_RESPONSE = {
    "type": "object",
    "required": ["xdm:propositionId", "xdm:propositions", "ode:createDate"],
    "properties": {
        "xdm:propositionId": {"type": "string"},
        "ode:createDate": {"type": "integer"},
        "xdm:propositions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["xdm:activity", "xdm:placement"],
                "properties": {
                    "xdm:activity": _REF,
                    "xdm:placement": _REF,
                    "xdm:options": {"type": "array", "minItems": 1, "items": _REF},
                    "xdm:fallback": _REF,
                },
            },
        },
        "offerbase:trace": {"type": "array", "items": {"type": "object"}},
    },
}


# The 2019 request format the legacy path also takes (ode.py translates it).
_REQUEST_V09 = {
    "type": "object",
    "required": ["xdm:offerActivities"],
    "properties": {
        "xdm:offerActivities": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["xdm:offerActivity"],
                "properties": {
                    "xdm:offerActivity": {"type": "string", "minLength": 1},
                    "xdm:offerPlacement": {"type": "string", "minLength": 1},
                },
            },
        },
        "xdm:identityMap": {"type": "object"},
        "xdm:contextData": {"type": "array", "items": {"type": "object"}},
        "xdm:dryRun": {"type": "boolean"},
        "xdm:validateContextData": {"type": "boolean"},
        "xdm:profileModel": {"type": "string"},
        "xdm:allowDuplicatePropositions": {"type": "object"},
    },
}
_CONTAINER_ID = {
    "name": "container_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


def _operation(
    summary: str,
    operation_id: str,
    extra_params: list[dict[str, Any]],
    request: dict[str, Any] = _REQUEST_REF,
) -> dict[str, Any]:
    return {
        "tags": ["Decisioning"],
        "summary": summary,
        "operationId": operation_id,
        "security": [{"bearer": [], "apiKey": [], "org": []}],
        "parameters": [
            *extra_params,
            {
                "name": "trace",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                "description": "Return `offerbase:trace` (why each candidate was kept or dropped).",
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": request},
                "application/vnd.adobe.xdm+json": {"schema": request},
            },
        },
        "responses": {
            "200": {
                "description": "One proposition per requested scope (Content-Type follows Accept).",
                "content": {
                    "application/vnd.adobe.xdm+json": {"schema": _RESPONSE},
                    "application/json": {"schema": _RESPONSE},
                },
            },
            "400": {
                "description": "Malformed body (problem), or the missing org header (400003).",
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    },
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/GatewayErrorBody"}
                    },
                },
            },
            "401": schemas.gateway_response("Invalid or expired token (401013)."),
            "403": schemas.gateway_response(
                "Missing token or API key, wrong API key, or another organization."
            ),
            "404": schemas.problem_response("Unknown decision, placement, sandbox or container."),
            "413": schemas.problem_response("The body is too large."),
            "422": schemas.problem_response(
                "Semantically invalid: itemCount or scope limits, decision not live."
            ),
            "503": schemas.problem_response("Capping counters under heavy contention; retry."),
        },
    }


def _legacy_read(summary: str, operation_id: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tags": ["Decisioning"],
        "summary": summary,
        "operationId": operation_id,
        "security": [{"bearer": [], "apiKey": [], "org": []}],
        "parameters": params,
        "responses": {
            "200": {"description": "The answer, as JSON.", "content": {"application/json": {}}},
            "400": schemas.problem_response("A missing or malformed query parameter."),
            "401": schemas.gateway_response("Invalid or expired token (401013)."),
            "403": schemas.gateway_response("Missing token or API key, or wrong API key."),
            "404": schemas.problem_response("Unknown container or decision."),
        },
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/data/core/ods/decisions": {
        "post": _operation("Decide: the best offers for a profile", "decisions-decide", [])
    },
    "/data/core/ode/{container_id}/decisions": {
        "post": _operation(
            "Decide (legacy path with the sandbox's container id; 0.9 bodies too)",
            "decisions-decide-legacy",
            [_CONTAINER_ID],
            {"anyOf": [_REQUEST_REF, _REQUEST_V09]},
        )
    },
    "/data/core/ode/{container_id}/offers": {
        "get": _legacy_read(
            "A decision's candidate offers and fallback (legacy)",
            "decisions-activity-offers",
            [
                _CONTAINER_ID,
                {
                    "name": "activityId",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 30},
                    "style": "form",
                    "explode": True,
                },
            ],
        )
    },
    "/data/core/ode/{container_id}/diagnostics": {
        "get": _legacy_read(
            "When the container's offers and activities last changed (legacy)",
            "decisions-diagnostics",
            [_CONTAINER_ID],
        )
    },
    "/data/core/xcore/": {
        "get": _legacy_read(
            "The organization's containers (the xcore repository root)",
            "containers-home",
            [
                {"name": "product", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "property",
                    "in": "query",
                    "description": "NAME==VALUE, NAME one of " + ", ".join(CONTAINER_PROPERTIES),
                    "schema": {
                        "type": "string",
                        "pattern": "^(?:"
                        + "|".join(re.escape(name) for name in CONTAINER_PROPERTIES)
                        + ")==",
                    },
                },
            ],
        )
    },
}
