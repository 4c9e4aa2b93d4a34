"""Store errors become problem bodies in one place (problems.store_problem)."""

from __future__ import annotations

import base64
import time

import orjson

from offerbase.api.problems import store_problem
from offerbase.store.errors import InvalidField, NotFound, StoreError, Unprocessable
from offerbase.store.profiles import InvalidProfile

BAD_CURSOR = {
    "type": "https://offerbase.dev/problems/bad-request",
    "title": "Bad Request",
    "status": 400,
    "detail": "The 'start' cursor is not one this server issued.",
}


def body(exc: StoreError) -> dict[str, object]:
    return dict(orjson.loads(store_problem(exc).response().body))


def test_field_errors_keep_the_status_of_their_class() -> None:
    fields = [InvalidField("/name", "Taken.")]
    assert body(Unprocessable("No.", fields)) == {
        "type": "https://offerbase.dev/problems/unprocessable-entity",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "No.",
        "errors": [{"pointer": "/name", "detail": "Taken."}],
    }
    assert body(InvalidProfile("Bad.", fields)) == {
        "type": "https://offerbase.dev/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "Bad.",
        "errors": [{"pointer": "/name", "detail": "Taken."}],
    }


def test_other_store_errors_have_no_errors_member() -> None:
    assert body(NotFound("Gone.")) == {
        "type": "https://offerbase.dev/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Gone.",
    }


async def test_negative_offset_cursor_is_one_this_server_did_not_issue(client, tenant):
    raw = f"0.-1.{int(time.time())}".encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = await client.get(
        "/data/core/dps/tags", params={"start": cursor}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert response.json() == BAD_CURSOR


async def test_bad_decision_event_cursor_is_a_400_problem(client, tenant):
    response = await client.get(
        "/data/core/ods/decision-events", params={"start": "x"}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == BAD_CURSOR
