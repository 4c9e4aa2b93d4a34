"""How store and catalog errors reach the client: one mapping to problem bodies, applied where a
route opens its transaction (`transaction`), so nothing is written when a request fails; and
the answer to a database or Redis outage (`outage_problem`, store/outages.py says which
errors are one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from offerbase import catalog
from offerbase.api.problems import ApiProblem, field_error
from offerbase.store import errors as store_errors
from offerbase.store.db import Connection, Database
from offerbase.store.profiles import IdentityConflict

# Seconds a client is asked to wait after a dependency outage: long enough not to hammer a
# database that is restarting, short enough that a blip costs a client little.
RETRY_AFTER_SECONDS = 2


def store_problem(exc: store_errors.StoreError) -> ApiProblem:
    """The problem for a store error: its own status, title and detail, and what it names (the
    fields at fault, the entities still referring to one, the identity taken by another)."""
    if isinstance(exc, store_errors.InvalidFields):
        errors = [field_error(e.pointer, e.message) for e in exc.errors]
        return ApiProblem(exc.status, exc.title, exc.detail, errors=errors)
    if isinstance(exc, store_errors.StillReferenced):
        referrers = [{"id": r.id, "kind": r.kind, "pointer": r.pointer} for r in exc.referrers]
        return ApiProblem(exc.status, exc.title, exc.detail, extra={"referrers": referrers})
    if isinstance(exc, IdentityConflict):
        identity = {"namespace": exc.namespace, "id": exc.identity}
        return ApiProblem(exc.status, exc.title, exc.detail, extra={"identity": identity})
    return ApiProblem(exc.status, exc.title, exc.detail)


def outage_problem() -> ApiProblem:
    """503 for a database or Redis that could not be reached or used (store.outages)."""
    return ApiProblem(
        503,
        "Service Unavailable",
        "A database or Redis that this server needs is unavailable; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def catalog_problem(
    exc: catalog.CatalogValidationError | catalog.PatchError,
) -> ApiProblem:
    """The problem for a catalog body that fails validation or a patch that cannot apply."""
    if isinstance(exc, catalog.CatalogValidationError):
        return ApiProblem(
            422,
            "Unprocessable Entity",
            "; ".join(f"{e.pointer or '/'}: {e.message}" for e in exc.errors),
            errors=[field_error(e.pointer, e.message) for e in exc.errors],
        )
    errors = [field_error(exc.pointer, exc.message)]
    if isinstance(exc, catalog.PatchTooLarge):
        return ApiProblem(413, "Payload Too Large", exc.message, errors=errors)
    if isinstance(exc, catalog.PatchTestFailed):
        return ApiProblem(
            409, "Conflict", f"A 'test' operation failed: {exc.message}", errors=errors
        )
    # A broken patch document is a bad request; a well-formed op that cannot apply to this
    # entity (e.g. removing a missing member) is unprocessable.
    status, title = (400, "Invalid Patch") if exc.malformed else (422, "Unprocessable Patch")
    return ApiProblem(status, title, exc.message, errors=errors)


@asynccontextmanager
async def transaction(db: Database, *, write: bool) -> AsyncIterator[Connection]:
    """One transaction; a store or catalog error rolls it back and becomes its problem."""
    try:
        async with db.write() if write else db.read() as conn:
            yield conn
    except (catalog.CatalogValidationError, catalog.PatchError) as exc:
        raise catalog_problem(exc) from exc
    except store_errors.StoreError as exc:
        raise store_problem(exc) from exc
