"""Regression tests for bugs the schemathesis run (test_schemathesis.py) found."""

from __future__ import annotations

from urllib.parse import quote


async def test_create_with_non_latin1_id_answers_201_with_an_encoded_location(client, tenant):
    # Was a 500 (after the commit): the Location header held the raw id, and headers are latin-1.
    entity_id = "tag-\u65e5\u672c-\U0007a6dc"
    response = await client.post(
        f"/data/core/dps/tags/{entity_id}", json={"name": "Unicode id"}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == entity_id
    location = response.headers["location"]
    assert location == "/data/core/dps/tags/" + quote(entity_id, safe="")
    found = await client.get(location, headers=tenant.headers)
    assert found.status_code == 200
    assert found.json()["id"] == entity_id


async def test_delete_is_documented_without_a_body(client):
    # The served document promised application/json on DELETE 200; the answer is empty.
    document = (await client.get("/openapi.json")).json()
    delete = document["paths"]["/data/core/dps/tags/{entity_id}"]["delete"]
    assert "content" not in delete["responses"]["200"]


async def test_request_validation_errors_are_documented_as_400_problems(client):
    # FastAPI documents 422 HTTPValidationError; this app answers 400 problem+json instead.
    document = (await client.get("/openapi.json")).json()
    for path_item in document["paths"].values():
        for operation in path_item.values():
            assert "HTTPValidationError" not in str(operation["responses"])
    listing = document["paths"]["/data/core/dps/tags"]["get"]["responses"]
    assert "application/problem+json" in listing["400"]["content"]


async def test_bad_limit_is_a_400_problem(client, tenant):
    response = await client.get("/data/core/dps/tags?limit=0", headers=tenant.headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
