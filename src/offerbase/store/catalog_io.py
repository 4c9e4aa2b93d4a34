"""A sandbox's whole catalog as one JSON document: exported from one sandbox (or server) and
imported into another, all or nothing. Operators use it to promote a catalog from a test
sandbox to production, to back one up, or to move to another database."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase import catalog
from offerbase.store.clock import now_iso
from offerbase.store.errors import StoreError
from offerbase.store.library import Actor, Library
from offerbase.store.tenants import Sandbox

FORMAT = "offerbase-catalog/1"
# Every entity comes after the entities it may reference (catalog.references), so an import can
# create them one by one with the same reference checks as the API.
ORDER = (
    "tag",
    "placement",
    "decision-rule",
    "ranking-formula",
    "personalized-offer",
    "fallback-offer",
    "collection",
    "ranking-strategy",
    "decision",
)


class CatalogImportError(StoreError):
    """The document, or one of its entities, cannot be imported; nothing was written."""

    status = 422
    title = "Unprocessable Entity"


async def export_catalog(conn: AsyncConnection, sandbox: Sandbox) -> dict[str, Any]:
    """The current catalog: every entity's kind, id and body, in dependency order."""
    version, by_kind = await Library(conn, sandbox).current_bodies()
    entities = []
    for kind in ORDER:
        for stored in sorted(by_kind[kind], key=lambda body: str(body["id"])):
            body = {k: v for k, v in stored.items() if k not in ("id", "etag")}
            entities.append({"kind": kind, "id": stored["id"], "body": body})
    return {
        "format": FORMAT,
        "exported": now_iso(),
        "source": {"org": sandbox.org_id, "sandbox": sandbox.name, "catalogVersion": version},
        "entities": entities,
    }


async def import_catalog(
    conn: AsyncConnection, sandbox: Sandbox, document: object, actor: Actor
) -> dict[str, int]:
    """Create every entity of `document` with its id; returns how many of each kind.

    Runs inside the caller's transaction: on any error it raises CatalogImportError naming
    the entity, and the caller's rollback leaves the sandbox as it was. Ids already used in the
    sandbox are an error, not an overwrite.
    """
    entities = _entities(document)
    library = Library(conn, sandbox)
    # A hand-written file may list entities in any order; references decide the order here.
    indexed = sorted(enumerate(entities), key=lambda pair: ORDER.index(pair[1]["kind"]))
    for index, entity in indexed:
        try:
            await library.create(entity["kind"], entity["body"], actor, entity["id"])
        except (catalog.CatalogValidationError, StoreError) as exc:
            detail = exc.detail if isinstance(exc, StoreError) else str(exc)
            raise CatalogImportError(
                f"/entities/{index} ({entity['kind']} '{entity['id']}'): {detail}"
            ) from exc
    return dict(Counter(entity["kind"] for entity in entities))


def _entities(document: object) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CatalogImportError(f"Not a catalog document: 'format' must be '{FORMAT}'.")
    entities = document.get("entities")
    if not isinstance(entities, list):
        raise CatalogImportError("'entities' must be a list.")
    for index, entity in enumerate(entities):
        if (
            not isinstance(entity, dict)
            or entity.get("kind") not in ORDER
            or not isinstance(entity.get("id"), str)
            or not isinstance(entity.get("body"), dict)
        ):
            raise CatalogImportError(
                f"/entities/{index} must be {{'kind': one of {', '.join(ORDER)},"
                " 'id': a string, 'body': an object}."
            )
    return entities
