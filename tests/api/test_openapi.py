"""The served OpenAPI document describes what the API does."""

from __future__ import annotations

from typing import Any

from offerbase.catalog import METADATA_FIELDS


def _bodies(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a request schema stands for (through references and anyOf)."""
    if "$ref" in schema:
        return _bodies(document, document["components"]["schemas"][schema["$ref"].split("/")[-1]])
    if "anyOf" in schema:
        return [body for option in schema["anyOf"] for body in _bodies(document, option)]
    return [schema]


async def test_entity_bodies_refuse_unknown_members_as_the_api_does(client) -> None:
    document = (await client.get("/openapi.json")).json()
    bodies = []
    for path, item in document["paths"].items():
        if not path.startswith("/data/core/dps/"):
            continue
        for method in ("post", "put"):
            operation = item.get(method)
            if operation is None or "requestBody" not in operation:
                continue
            for media in operation["requestBody"]["content"].values():
                bodies.extend(_bodies(document, media["schema"]))
    # Eight kinds, each created by POST and replaced by PUT.
    assert {body["title"] for body in bodies} >= {"PlacementBody", "DecisionBody", "TagBody"}
    assert len(bodies) >= 16
    for schema in bodies:
        assert schema["additionalProperties"] is False, schema.get("title")
        # Read-only metadata echoed back on PUT is accepted (and ignored): it is listed.
        assert METADATA_FIELDS <= set(schema["properties"]), schema.get("title")
