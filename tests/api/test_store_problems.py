"""Store errors become problem bodies in one place (store_problems.store_problem)."""

from __future__ import annotations

import base64
import time

import orjson

from offerbase import catalog
from offerbase.api.store_problems import catalog_problem, store_problem
from offerbase.store.errors import (
    InvalidField,
    NotFound,
    Referrer,
    StillReferenced,
    StoreError,
    Unprocessable,
)
from offerbase.store.profiles import IdentityConflict, InvalidProfile

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


def test_conflicts_name_what_they_conflict_with() -> None:
    referenced = StillReferenced("In use.", [Referrer("d1", "decision", "/criteria/0")])
    assert body(referenced) == {
        "type": "https://offerbase.dev/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "In use.",
        "referrers": [{"id": "d1", "kind": "decision", "pointer": "/criteria/0"}],
    }
    taken = body(IdentityConflict("email", "a@b.c"))
    assert taken["status"] == 409
    assert taken["identity"] == {"namespace": "email", "id": "a@b.c"}


def test_catalog_errors_keep_their_status_and_pointer() -> None:
    def catalog_body(exc: catalog.CatalogValidationError | catalog.PatchError) -> dict[str, object]:
        return dict(orjson.loads(catalog_problem(exc).response().body))

    invalid = catalog_body(catalog.CatalogValidationError([catalog.FieldError("/name", "Bad.")]))
    assert (invalid["status"], invalid["detail"]) == (422, "/name: Bad.")
    assert invalid["errors"] == [{"pointer": "/name", "detail": "Bad."}]
    failed = catalog_body(catalog.PatchTestFailed("/0", "differs"))
    assert (failed["status"], failed["title"]) == (409, "Conflict")
    assert failed["detail"] == "A 'test' operation failed: differs"
    malformed = catalog_body(catalog.PatchError("/0/op", "unknown op", malformed=True))
    assert (malformed["status"], malformed["title"]) == (400, "Invalid Patch")
    unappliable = catalog_body(catalog.PatchError("/0/path", "no such member"))
    assert (unappliable["status"], unappliable["title"]) == (422, "Unprocessable Patch")


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
