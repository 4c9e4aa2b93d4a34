"""Store errors become problem bodies in one place (store_problems.store_problem)."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from offerbase import catalog
from offerbase.api.paging import CursorSigner
from offerbase.api.store_problems import catalog_problem, store_problem
from offerbase.store import tenants
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
FORGED_CURSOR = {
    "type": "https://offerbase.dev/problems/bad-request",
    "title": "Bad Request",
    "status": 400,
    "detail": "The 'start' cursor is not one this server issued for this sandbox.",
    "errors": [
        {
            "pointer": "start",
            "detail": "The 'start' cursor is not one this server issued for this sandbox.",
        }
    ],
}


async def signer_for(services, tenant) -> CursorSigner:  # type: ignore[no-untyped-def]
    """Signs like the server: for tests that need a cursor the store itself must refuse."""
    async with services.db.read() as conn:
        sandbox = await tenants.get_sandbox(conn, tenant.org, tenant.sandbox)
    return CursorSigner(services.settings.resolved_secret_key, sandbox.pk)


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


@pytest.mark.parametrize(
    "position",
    ["0.-1.{now}", "-1.0.{now}", f"{2**63}.0.{{now}}", f"0.{2**31}.{{now}}", "0.0.9" + "9" * 15],
)
async def test_a_signed_cursor_out_of_range_is_400_not_500(services, client, tenant, position):
    raw = position.format(now=int(time.time())).encode()
    cursor = (await signer_for(services, tenant)).sign(
        base64.urlsafe_b64encode(raw).decode().rstrip("=")
    )
    response = await client.get(
        "/data/core/dps/tags", params={"start": cursor}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert response.json() == BAD_CURSOR


@pytest.mark.parametrize("row_id", ["-1", str(2**63), "x"])
async def test_a_signed_event_cursor_out_of_range_is_400_not_500(services, client, tenant, row_id):
    position = base64.urlsafe_b64encode(row_id.encode()).decode().rstrip("=")
    cursor = (await signer_for(services, tenant)).sign(position)
    response = await client.get(
        "/data/core/ods/decision-events", params={"start": cursor}, headers=tenant.headers
    )
    assert response.status_code == 400
    assert response.json() == BAD_CURSOR


@pytest.mark.parametrize("path", ["/data/core/dps/tags", "/data/core/ods/decision-events"])
async def test_unsigned_or_forged_cursors_are_400(client, tenant, path):
    raw = base64.urlsafe_b64encode(f"0.{2**70}.{int(time.time())}".encode()).decode()
    forged = f"{raw.rstrip('=')}.AAAAAAAAAAAAAAAAAAAAAA"  # the form this server issues
    for cursor in ["x", raw, forged, "." * 300, "a" * 300]:
        response = await client.get(path, params={"start": cursor}, headers=tenant.headers)
        assert response.status_code == 400, cursor
        assert response.headers["content-type"] == "application/problem+json"
        if cursor == forged or path.endswith("decision-events"):
            assert response.json() == FORGED_CURSOR
        else:
            # A library list reads any other `start` as Adobe's boundary value of the first
            # sort key (modified): not a time, so a 400 naming start too.
            assert response.json()["errors"][0]["pointer"] == "start"
