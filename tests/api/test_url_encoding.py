"""Percent-encoded bytes that are not UTF-8 in a path or a query: 400 naming the part, and
nothing stored under a U+FFFD id (the ASGI server would otherwise decode them as U+FFFD)."""

from __future__ import annotations

import pytest
from factories import Api, body, problem

PLACEMENTS = "/data/core/dps/placements"
PROFILES = "/data/core/ups/profiles"


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{PLACEMENTS}/web%FF"),  # a lone continuation byte
        ("POST", f"{PLACEMENTS}/web%C3"),  # a truncated sequence
        ("POST", f"{PLACEMENTS}//web%ED%A0%80"),  # an encoded surrogate, after `//`
        ("GET", f"{PLACEMENTS}/web%FF"),
        ("PUT", f"{PROFILES}/ECID/id%FF"),
        ("PUT", f"{PROFILES}/EC%FFID/id"),
    ],
)
async def test_a_path_that_is_not_utf8_is_refused(api: Api, method: str, path: str) -> None:
    response = await api.client.request(
        method, path, json=body("placement") if "placements" in path else {}, headers=api.headers
    )
    assert problem(response, 400)["errors"] == [
        {"pointer": "path", "detail": "Percent-encoded bytes must be UTF-8."}
    ]
    assert (await api.list("placement")).json()["total"] == 0
    stored = await api.client.get(
        f"{PROFILES}/ECID/id\N{REPLACEMENT CHARACTER}", headers=api.headers
    )
    assert stored.status_code == 404


async def test_a_query_that_is_not_utf8_is_refused(api: Api) -> None:
    response = await api.client.get(f"{PLACEMENTS}?property=name%3D%3D%FF", headers=api.headers)
    assert problem(response, 400)["errors"][0]["pointer"] == "query"


async def test_utf8_ids_still_work(api: Api) -> None:
    created = await api.client.post(
        f"{PLACEMENTS}/caf%C3%A9", json=body("placement"), headers=api.headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "café"
    read = await api.client.get(f"{PLACEMENTS}/caf%C3%A9", headers=api.headers)
    assert read.status_code == 200
    listed = await api.client.get(f"{PLACEMENTS}?property=name%3D%3Dcaf%C3%A9", headers=api.headers)
    assert listed.status_code == 200, listed.text
