"""The served OpenAPI document: FastAPI's, plus request-body schemas from the catalog models and
the Decisioning API's own description (decisioning_openapi.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from offerbase import catalog
from offerbase.api import decisioning_openapi
from offerbase.api.library_collections import COLLECTIONS, ROOT
from offerbase.api.schemas import COMMON_RESPONSES, RESPONSE_MODELS, request_schema_name

_JSON_PATCH_OR_MERGE = {
    "description": "An RFC 6902 JSON Patch array, or an RFC 7396 merge-patch object.",
    "oneOf": [
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {
                        "type": "string",
                        "enum": ["add", "remove", "replace", "move", "copy", "test"],
                    },
                    "path": {"type": "string"},
                    "from": {"type": "string"},
                    "value": {},
                },
            },
        },
        {"type": "object"},
    ],
}


def _add_model(components: dict[str, Any], name: str, model: Any) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    for def_name, definition in schema.pop("$defs", {}).items():
        components.setdefault(def_name, definition)
    components[name] = schema


def _document_common_responses(document: dict[str, Any]) -> None:
    """What every operation can answer besides its own codes.

    Request validation errors are 400 problems (app.install_error_handlers), not FastAPI's 422
    `HTTPValidationError`; authenticated operations also answer the gateway's 400/401/403 and
    404 for an unknown sandbox.
    """
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            fastapi_422 = responses.get("422", {})
            schema_ref = (
                fastapi_422.get("content", {}).get("application/json", {}).get("schema", {})
            )
            if schema_ref.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
                responses.setdefault("400", COMMON_RESPONSES[400])
            if "security" in operation:
                for code, response in COMMON_RESPONSES.items():
                    responses.setdefault(str(code), response)
    schemas = document.get("components", {}).get("schemas", {})
    if not any("HTTPValidationError" in str(item) for item in document["paths"].values()):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in RESPONSE_MODELS:
            _add_model(components, model.__name__, model)
        for path, kinds in COLLECTIONS.items():
            names = []
            for kind in kinds:
                name = "Body_" + kind.replace("-", "_")
                _add_model(components, name, catalog.KINDS[kind].model)
                names.append({"$ref": f"#/components/schemas/{name}"})
            # anyOf, not oneOf: `offer-type` picks the kind, and a body valid for both offer kinds
            # is fine (oneOf would reject it, and makes generating examples very slow).
            components[request_schema_name(path)] = (
                names[0] if len(names) == 1 else {"anyOf": names}
            )
        components["JsonPatchOrMerge"] = _JSON_PATCH_OR_MERGE
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Token from POST /ims/token/v3.",
            },
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "org": {"type": "apiKey", "in": "header", "name": "x-gw-ims-org-id"},
        }
        for path, path_item in document["paths"].items():
            for method, operation in path_item.items():
                for parameter in operation.get("parameters", []):
                    # A query string has no null (a generator would send the text "null"): an
                    # absent parameter is the None of FastAPI's `str | None`.
                    parameter["schema"] = decisioning_openapi.without_null(parameter["schema"])
                if operation.get("tags") and operation["tags"][0] != "Platform":
                    operation["security"] = [{"bearer": [], "apiKey": [], "org": []}]
                if method == "post" and path.startswith(f"{ROOT}/offers"):
                    # An offer's kind is chosen by `offer-type`: required to create one
                    # (library_collections.kind_to_create), optional to read, list or delete.
                    for parameter in operation.get("parameters", []):
                        if parameter["name"] == "offer-type":
                            parameter["required"] = True
                if method == "delete" and path.startswith(ROOT):
                    # DELETE answers 200 with an empty body and no content type; FastAPI would
                    # otherwise document an application/json body.
                    operation["responses"]["200"].pop("content", None)
        # The decisioning routes are plain Starlette routes (the lean hot path): described here.
        document["paths"].update(decisioning_openapi.OPENAPI_PATHS)
        for name, schema in decisioning_openapi.REQUEST_COMPONENTS.items():
            if name in components:
                raise ValueError(f"two OpenAPI components are named {name}")
            components[name] = schema
        _document_common_responses(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
