"""Limits on the request head, in-process (HeadLimits): 431 past the header limits, 414 past the
target limit, 400 for an x-request-id that could not be echoed or logged safely. The same
limits on a real server (where httptools counts them while parsing): tests/cli/test_serve.py."""

from __future__ import annotations

import pytest

from offerbase.api.http_limits import (
    MAX_HEADER_BYTES,
    MAX_HEADER_COUNT,
    MAX_REQUEST_ID_CHARS,
    MAX_TARGET_BYTES,
)


def headers_of(total_bytes: int) -> dict[str, str]:
    """Headers whose names and values add up to `total_bytes`, with what httpx adds itself."""
    base = {"host": "offerbase.test", "accept": "*/*", "accept-encoding": "gzip, deflate"}
    base |= {"connection": "keep-alive", "user-agent": "t"}
    used = sum(len(k) + len(v) for k, v in base.items())
    return {**base, "x-fill": "a" * (total_bytes - used - len("x-fill"))}


async def test_headers_up_to_the_limit_are_served(client) -> None:
    response = await client.get("/health", headers=headers_of(MAX_HEADER_BYTES))
    assert response.status_code == 200, response.text


async def test_headers_past_the_limit_are_431(client) -> None:
    response = await client.get("/health", headers=headers_of(MAX_HEADER_BYTES + 1))
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert f"larger than {MAX_HEADER_BYTES} bytes" in response.json()["detail"]


async def test_too_many_header_fields_are_431(client) -> None:
    many = [(f"x-h{i}", "1") for i in range(MAX_HEADER_COUNT)]
    response = await client.get("/health", headers=many)  # with httpx's own: past the count
    assert response.status_code == 431
    assert f"at most {MAX_HEADER_COUNT} header fields" in response.json()["detail"]
    assert (await client.get("/health", headers=many[:90])).status_code == 200


async def test_a_target_past_the_limit_is_414(client) -> None:
    path = "/health?x=" + "a" * (MAX_TARGET_BYTES - len("/health") - len("x="))
    assert (await client.get(path)).status_code == 200
    response = await client.get(path + "a")
    assert response.status_code == 414
    assert f"longer than {MAX_TARGET_BYTES} bytes" in response.json()["detail"]


async def test_a_request_id_within_the_limit_is_echoed(client) -> None:
    rid = "r" * MAX_REQUEST_ID_CHARS
    response = await client.get("/health", headers={"x-request-id": rid})
    assert response.headers["x-request-id"] == rid


@pytest.mark.parametrize("rid", ["r" * (MAX_REQUEST_ID_CHARS + 1), "has space", "tab\t", ""])
async def test_a_request_id_that_cannot_be_echoed_is_400_naming_it(client, rid) -> None:
    response = await client.get("/health", headers={"x-request-id": rid})
    assert response.status_code == 400
    assert "x-request-id" not in response.headers
    assert [e["pointer"] for e in response.json()["errors"]] == ["x-request-id"]
