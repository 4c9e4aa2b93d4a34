"""The served OpenAPI document describes what the API does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema_rs

from offerbase.catalog import METADATA_FIELDS

SEEDS = Path(__file__).parents[1] / "fixtures" / "seeds"


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


# -- the document's rules are the API's: what it calls valid is accepted, and the limits it
# publishes are the ones refused. Validity is judged by jsonschema_rs, an ECMA-262 regex
# implementation like a client's, not by the Python `re` module the server runs.


def _valid(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> bool:
    root = {**schema, "components": document["components"]}
    return bool(jsonschema_rs.validator_for(root).is_valid(instance))


def _component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    parameters = document["paths"][path][method]["parameters"]
    found: dict[str, Any] = next(p for p in parameters if p["name"] == name)
    return found


async def test_non_blank_strings_are_whitespace_as_the_api_strips_it(client, tenant) -> None:
    document = (await client.get("/openapi.json")).json()
    # U+001C and U+3000 are whitespace to str.strip (not U+001C to ECMA's \s); U+FEFF is not.
    for name, accepted in [("\x1c \u3000", False), ("\t", False), ("\ufeff", True), ("a", True)]:
        assert _valid(document, _component("Body_tag"), {"name": name}) is accepted, repr(name)
        response = await client.post(
            "/data/core/dps/tags", json={"name": name}, headers=tenant.headers
        )
        assert (response.status_code == 201) is accepted, (repr(name), response.text)


async def test_published_patterns_and_bounds_are_the_apis(client, tenant) -> None:
    document = (await client.get("/openapi.json")).json()
    placement = json.loads((SEEDS / "placement-web.json").read_text())
    response = await client.post(
        "/data/core/dps/placements/offerPlacement1234", json=placement, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    offer = json.loads((SEEDS / "fallback-offer-create.json").read_text())
    cases = [
        # a channel URI: no whitespace after the scheme, U+001C included
        ({**offer, "representations": [{**offer["representations"][0], "channel": "a:\x1c"}]}, 0),
        ({**offer, "characteristics": {f"k{i}": "v" for i in range(30)}}, 1),
        ({**offer, "characteristics": {f"k{i}": "v" for i in range(31)}}, 0),
        ({**offer, "rank": {"priority": 2**63 - 1}}, 1),
        ({**offer, "rank": {"priority": 2**64}}, 0),  # read as a float by the JSON parser
    ]
    for body, accepted in cases:
        assert _valid(document, _component("Body_fallback_offer"), body) is bool(accepted)
        response = await client.post(
            "/data/core/dps/offers?offer-type=fallback", json=body, headers=tenant.headers
        )
        assert (response.status_code == 201) is bool(accepted), response.text
    formula = {"name": "f", "expression": {"value": "1"}}
    for spelling, accepted in [("InTeGeR", True), ("integers", False)]:
        body = {**formula, "returnType": {"type": spelling}}
        assert _valid(document, _component("Body_ranking_formula"), body) is accepted
        response = await client.post(
            "/data/core/dps/ranking-formulas", json=body, headers=tenant.headers
        )
        assert (response.status_code == 201) is accepted, response.text


async def test_query_parameters_are_published_as_checked(client, tenant) -> None:
    document = (await client.get("/openapi.json")).json()
    offers = "/data/core/dps/offers"
    create = _parameter(document, offers, "post", "offer-type")
    assert create["required"] is True
    assert _parameter(document, offers, "get", "offer-type")["required"] is False
    lists = [
        (offers, "offer-type", "FallBack", True),
        (offers, "offer-type", "null", False),  # no `null` branch: a query has no null
        ("/data/core/dps/tags", "property", ["name==x", " !a.b <= 3", "etag"], True),
        ("/data/core/dps/tags", "property", ["etag==x"], False),  # etag compares numbers
        ("/data/core/dps/tags", "property", ["-1.1"], False),
        ("/data/core/dps/tags", "property", ["x"] * 21, False),
        ("/data/core/dps/tags", "orderby", "-name,+modified", True),
        ("/data/core/dps/tags", "orderby", ",".join(["name"] * 6), False),
    ]
    for path, name, value, accepted in lists:
        schema = _parameter(document, path, "get", name)["schema"]
        assert _valid(document, schema, value) is accepted, (name, value)
        response = await client.get(path, params={name: value}, headers=tenant.headers)
        assert (response.status_code == 200) is accepted, (name, value, response.text)
    containers = _parameter(document, "/data/core/xcore/", "get", "property")["schema"]
    for value, accepted in [("instanceId==x", True), ("sandbox==x", False)]:
        assert _valid(document, containers, value) is accepted
        response = await client.get(
            "/data/core/xcore/", params={"property": value}, headers=tenant.headers
        )
        assert (response.status_code == 200) is accepted, response.text


async def test_profile_identities_are_published_as_checked(client, tenant) -> None:
    document = (await client.get("/openapi.json")).json()
    path = "/data/core/ups/profiles/{namespace}/{identity}"
    namespace = _parameter(document, path, "put", "namespace")["schema"]
    identity = _parameter(document, path, "put", "identity")["schema"]
    for ns, ident, accepted in [
        ("email", "i" * 1024, True),
        ("email", "i" * 1025, False),
        ("n" * 255, "a", True),
        ("n" * 256, "a", False),
        ("\u3000", "a", False),
    ]:
        valid = _valid(document, namespace, ns) and _valid(document, identity, ident)
        assert valid is accepted, (ns[:5], len(ident))
        response = await client.put(
            f"/data/core/ups/profiles/{quote(ns)}/{ident}", json={}, headers=tenant.headers
        )
        assert (response.status_code in (200, 201)) is accepted, response.text


async def test_a_token_request_needs_a_non_empty_credential(client) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/ims/token/v3"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
    form = {"grant_type": "client_credentials", "client_id": "", "client_secret": "s"}
    assert not _valid(document, schema, form)
    response = await client.post("/ims/token/v3", data=form)
    assert response.status_code == 400


async def test_a_large_number_in_a_profile_reads_back(client, tenant) -> None:
    # PostgreSQL's jsonb writes 1e20 as an integer literal; it must still read back (not 500).
    url = "/data/core/ups/profiles/email/big@example.com"
    response = await client.put(url, json={"x": 1e20}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    response = await client.get(url, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["x"] == 1e20


async def test_an_etag_compared_with_a_non_number_is_a_400(client, tenant) -> None:
    # Both the filter and Adobe's form of `start` (orderby=etag) compare etags as numbers.
    for params, parameter in [
        ({"property": "etag>=x"}, "property"),
        ({"orderby": "etag", "start": "x"}, "start"),
    ]:
        response = await client.get("/data/core/dps/tags", params=params, headers=tenant.headers)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["pointer"] == parameter
