"""Sandbox-wide guardrails of Adobe's Decision Management that need counts
from the store. Limits of a single entity are the catalog's job (offerbase.catalog)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.errors import InvalidField, Unprocessable
from offerbase.store.scope import Scope
from offerbase.store.tables import alive_entities, entities


@dataclass(frozen=True)
class Total:
    kinds: tuple[str, ...]
    limit: int
    label: str


TOTALS: tuple[Total, ...] = (
    Total(("personalized-offer", "fallback-offer"), 10_000, "offers"),
    Total(("placement",), 1_000, "placements"),
    Total(("collection",), 10_000, "collections"),
    Total(("tag",), 1_000, "collection qualifiers"),
    Total(("decision-rule", "ranking-formula"), 10_000, "decision rules and ranking formulas"),
    Total(("decision",), 10_000, "decisions"),
    Total(("ranking-strategy",), 5, "AI ranking models"),  # Adobe: 5 AI models per sandbox
)
LIVE_DECISIONS = 1_000


async def check_new(conn: AsyncConnection, scope: Scope, kind: str) -> None:
    """Refuse a create that would exceed the sandbox's total for its kind."""
    for total in TOTALS:
        if kind not in total.kinds:
            continue
        query = (
            sa.select(sa.func.count())
            .select_from(entities)
            .where(alive_entities(), entities.c.kind.in_(total.kinds))
        )
        count = await conn.scalar(scope.apply(query))
        if int(count or 0) >= total.limit:
            raise Unprocessable(
                f"A sandbox holds at most {total.limit} {total.label}; delete some first.",
                [InvalidField("", f"Guardrail: at most {total.limit} {total.label} per sandbox.")],
            )


async def check_live_decisions(
    conn: AsyncConnection, scope: Scope, kind: str, entity_id: str, body: Mapping[str, Any]
) -> None:
    """At most LIVE_DECISIONS decisions of a sandbox are live at once."""
    if kind != "decision" or body.get("status") != "live":
        return
    query = sa.select(entities.c.entity_id, entities.c.body).where(
        alive_entities(), entities.c.kind == "decision", entities.c.entity_id != entity_id
    )
    rows = await conn.execute(scope.apply(query))
    live = sum(1 for row in rows if row.body.get("status") == "live")
    if live >= LIVE_DECISIONS:
        raise Unprocessable(
            f"A sandbox holds at most {LIVE_DECISIONS} live decisions.",
            [InvalidField("/status", f"Guardrail: at most {LIVE_DECISIONS} live decisions.")],
        )
