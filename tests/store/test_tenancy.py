"""Tenancy, proved on every repository of the store, on SQLite and PostgreSQL.

* `test_every_repository_function_has_a_case` walks the store's modules and lists everything
  that can reach the database: each public async function, and each public async method of a
  public class (the store reaches the database only through async calls). Each must have a case
  in CASES, so a new repository function cannot be added without one.
* `test_another_tenant_neither_sees_nor_changes_the_rows` writes rows for tenant A into every
  tenant table, runs every case as tenant B (another organization, and another sandbox of A's
  organization), each case checking that B sees nothing of A, then checks that A's rows are
  exactly as they were. The `tenancy_guard` fixture (conftest.py) runs `scope.check` on every
  statement, so an unscoped query fails even where its answer happens to be right.
* The static tests: no SQL outside `store/`, and inside it SQL is built through scope.py only.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import offerbase.store
from offerbase.store import (
    catalog_io,
    datasets,
    datastreams,
    guardrails,
    ranking,
    reports,
    rollups,
    scope,
    tenants,
    users,
    workloads,
)
from offerbase.store.counters import SqlCounterStore
from offerbase.store.db import Database
from offerbase.store.errors import AlreadyExists, NotFound, Unprocessable
from offerbase.store.events import (
    DecisionEvents,
    EventWriter,
    PendingEvent,
    every_page,
    read_page,
)
from offerbase.store.interactions import (
    InteractionEvent,
    InteractionEvents,
    insert_counted,
    interaction_writer,
)
from offerbase.store.library import Actor, Library, catalog_version, last_changes
from offerbase.store.listing import OrderKey, contains_name, parse_properties
from offerbase.store.profiles import Profiles, find_profile, import_lines, profile_page
from offerbase.store.retention import prune_events
from offerbase.store.scope import Scope, UnscopedTable
from offerbase.store.tables import (
    credentials,
    decision_events,
    entities,
    interaction_events,
    metadata,
    references,
)
from offerbase.store.tenants import Sandbox

SRC = Path(offerbase.store.__file__).parents[1]
WEB = "https://ns.adobe.com/xdm/channel-types/web"
ACTOR = Actor("tenancy-test", "tenancy-client")
ALL_KINDS = catalog_io.ORDER  # every kind, referenced ones first

# Store modules that are not repositories, and why they need no case.
NOT_REPOSITORIES = {
    "db": "the engine and the raw read and batch-insert paths that repositories call",
    "scope": "the tenancy helper itself (tested at the end of this file)",
    "notify": "LISTEN/NOTIFY of catalog changes: no tenant rows, a sandbox pk as payload",
    "tenants": "the tenant directory: it finds the tenant, so it spans tenants (tested below)",
    "tables": "table definitions",
    "listing": "builds list filter expressions; runs none",
    "errors": "exception classes",
    "clock": "timestamps",
    "migrate": "schema migrations, before any tenant exists",
    "migrations": "schema migrations, before any tenant exists",
    "deployment": "the database's own id: one row of a directory table, no tenant's",
    "outages": "classifies exceptions; runs nothing",
    "parquet": "writes exported records (read through events.py) as Parquet; runs no SQL",
}
# Repository functions that reach no SQL table, and why.
NOT_SQL = {
    "counters.CounterStore": "a Protocol: its implementations are enumerated instead",
    "counters.RedisCounterStore": "Redis, not SQL: keys carry the sandbox (counters.redis_key); "
    "tests/store/test_counters.py::test_sandboxes_are_isolated runs on it",
}


# -- tenant A's rows -------------------------------------------------------------------------

JOE = {"identityMap": {"Email": [{"id": "joe@example.com", "primary": True}]}, "tenant": "A"}
A_COUNTER = "cap|a"
A_ORIGIN = "https://a.example"
A_NOW = datetime(2030, 1, 1, tzinfo=UTC)
# Not a real hash: the store takes the hash as given (scrypt runs in the caller's thread).
A_PASSWORD_HASH = "scrypt$16$1$1$00$00"
A_SESSIONS: dict[int, str] = {}  # tenant A's pk -> its user's session token


def _bodies() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, id, body): one entity of every kind, wired together (references included)."""
    representation = {
        "channel": WEB,
        "placement": "placement-a",
        "components": [{"type": "html", "format": "text/html", "content": "Hello"}],
    }
    rule = {"type": "PQL", "format": "pql/text", "value": 'profile.tier.equals("gold", false)'}
    formula = {"type": "PQL", "format": "pql/text", "value": "offer.rank.priority * 2"}
    return [
        ("tag", "tag-a", {"name": "Tag A"}),
        ("placement", "placement-a", {"name": "Placement A", "channel": WEB}),
        ("decision-rule", "rule-a", {"name": "Rule A", "condition": rule}),
        (
            "ranking-formula",
            "formula-a",
            {"name": "Formula A", "returnType": {"type": "INTEGER"}, "expression": formula},
        ),
        (
            "personalized-offer",
            "offer-a",
            {
                "name": "Offer A",
                "status": "approved",
                "rank": {"priority": 1},
                "representations": [representation],
                "tags": ["tag-a"],
                "selectionConstraint": {
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": "rule-a",
                },
            },
        ),
        (
            "fallback-offer",
            "fallback-a",
            {"name": "Fallback A", "status": "approved", "representations": [representation]},
        ),
        (
            "collection",
            "collection-a",
            {"name": "Collection A", "filterType": "any-tags", "ids": ["tag-a"]},
        ),
        (
            "ranking-strategy",
            "strategy-a",
            {"name": "Strategy A", "type": "auto-optimization", "holdoutPercentage": 5},
        ),
        (
            "decision",
            "decision-a",
            {
                "name": "Decision A",
                "status": "live",
                "fallback": "fallback-a",
                "criteria": [
                    {"placements": ["placement-a"], "optionSelection": {"filter": "collection-a"}}
                ],
            },
        ),
    ]


A_IDS = [entity_id for _, entity_id, _ in _bodies()]


async def _fill(db: Database, a: Sandbox) -> None:
    """Rows for tenant A in every tenant table."""
    async with db.write() as conn:
        library = Library(conn, a)
        for kind, entity_id, body in _bodies():
            await library.create(kind, body, ACTOR, entity_id)
        await library.update(["tag"], "tag-a", lambda body: {**body, "name": "Tag A2"}, ACTOR, None)
        await Profiles(conn, a).put("Email", "joe@example.com", JOE)
    writer = EventWriter(db)
    writer.record(PendingEvent(a.pk, "proposition-a", "2024-01-01T00:00:00.000Z", A_DECISION))
    assert await writer.flush() == 1
    interactions = interaction_writer(db)
    interactions.record(_interaction(a, "event-a"))
    for event_id, kind in (("display-a", "display"), ("purchase-a", "custom")):
        interactions.record(_feedback(a, event_id, kind))
    assert await interactions.flush() == 3
    await _learn_ranked_display(db, a, "ranked-a")  # ranking_stats and ranking_state rows
    interactions.record(_ranked_display(a, "waiting-a", "proposition-missing"))  # stays queued
    assert await interactions.flush() == 1
    assert await SqlCounterStore(db).try_consume(a.pk, [(A_COUNTER, 1)])
    async with db.write() as conn:
        await datastreams.create_datastream(
            conn,
            a,
            name="A",
            origins=[A_ORIGIN],
            item_counts={"placement-a": 2},
            datastream_id=a_datastream(a),
        )
        user = await users.create_user(
            conn, a.org_id, a_user(a), "editor", [a.name], A_PASSWORD_HASH, now=A_NOW
        )
        A_SESSIONS[a.pk], _ = await users.start_session(
            conn, user, now=A_NOW, lifetime=timedelta(days=1)
        )

    # A dataset and a finished workload: a runner claims the oldest QUEUED first (created 0).
    async with db.write() as conn:
        dataset = await datasets.create_dataset(conn, a, data_dir=Path("/nonexistent"), name="A")
        workload = await workloads.create_workload(conn, a, dataset, {"tenant": "A"}, 0)
        claimed = await workloads.claim_next(conn, "runner-a", 1)
        assert claimed is not None
        assert claimed.workload.id == workload.id
        assert await workloads.advance(conn, workload.id, "runner-a", "COMPLETED", {"a": 1}, 2)
    A_BATCH[a.pk] = (dataset.id, workload.id)


# Tenant A's dataset id and workload id, by A's sandbox pk.
A_BATCH: dict[int, tuple[str, str]] = {}


def a_user(a: Sandbox) -> str:
    """Tenant A's admin UI user (emails are global: one per test's tenant A)."""
    return f"a-{a.pk}-{a.org_id[:8]}@example.com"


def a_datastream(a: Sandbox) -> str:
    """Tenant A's datastream id (ids are global: one per test's tenant A)."""
    return f"ds-a-{a.pk}-{a.org_id[:8]}"


# A decision event that feeds every rollup: an offer proposed, one capped.
A_DECISION = {
    "a": 1,
    "xdm:propositions": [
        {
            "xdm:activity": {"xdm:id": "decision-a"},
            "xdm:placement": {"xdm:id": "placement-a"},
            "xdm:selections": [{"xdm:id": "offer-a"}],
            "offerbase:cappedOptions": ["offer-a2"],
        }
    ],
}


# A decision event ranked by a strategy (AI ranking): what the learner attributes to.
A_RANKED = {
    "xdm:propositions": [
        {
            "xdm:activity": {"xdm:id": "decision-a"},
            "xdm:placement": {"xdm:id": "placement-a"},
            "xdm:selections": [{"xdm:id": "offer-a"}],
            "offerbase:ranking": {"strategyId": "strategy-a", "arm": "model", "contextKey": ""},
        }
    ]
}


def _ranked_display(sandbox: Sandbox, event_id: str, proposition: str) -> InteractionEvent:
    body = {"activityId": "decision-a", "placementId": "placement-a", "itemIds": ["offer-a"]}
    return InteractionEvent(
        sandbox.pk, event_id, 0, proposition, "2024-01-01T00:00:00.000Z", "display", body
    )


async def _learn_ranked_display(db: Database, sandbox: Sandbox, event_id: str) -> None:
    """A ranked decision (the same proposition id in every tenant), a display of it, learned."""
    writer = EventWriter(db)
    writer.record(
        PendingEvent(sandbox.pk, "proposition-ranked", "2024-01-01T00:00:00.000Z", A_RANKED)
    )
    assert await writer.flush() == 1
    interactions = interaction_writer(db)
    interactions.record(_ranked_display(sandbox, event_id, "proposition-ranked"))
    assert await interactions.flush() == 1
    while (await ranking.learn(db, sandbox.pk, 10**13, lambda _strategy: None)).done:
        pass


def _feedback(sandbox: Sandbox, event_id: str, kind: str) -> InteractionEvent:
    """A display (or custom event) of offer-a by one visitor: the same in every tenant."""
    body = {
        "activityId": "decision-a",
        "placementId": "placement-a",
        "itemIds": ["offer-a"],
        "identity": {"namespace": "ECID", "id": "1234"},
        "eventType": "commerce.purchases" if kind == "custom" else None,
    }
    return InteractionEvent(
        sandbox.pk, event_id, 0, "proposition-a", "2024-01-01T00:00:00.000Z", kind, body
    )


def _interaction(sandbox: Sandbox, event_id: str) -> InteractionEvent:
    """A click on proposition-a: the same event id and seq in every tenant."""
    body = {"eventId": event_id, "tenant": sandbox.pk}
    return InteractionEvent(
        sandbox.pk, event_id, 0, "proposition-a", "2024-01-01T00:00:00.000Z", "interact", body
    )


async def _rows_of(db: Database, a: Sandbox) -> dict[str, list[str]]:
    """Every row of A in every tenant table, comparable."""
    found: dict[str, list[str]] = {}
    async with db.read() as conn:
        for table in scope.tenant_tables():
            rows = await conn.execute(Scope.of(a).apply(sa.select(table)))
            found[table.name] = sorted(repr(sorted(row._mapping.items())) for row in rows)
    return found


# -- the cases: tenant B calls every repository function -----------------------------------


@dataclass
class Ctx:
    db: Database
    a: Sandbox
    b: Sandbox
    monkeypatch: pytest.MonkeyPatch


Case = Callable[[Ctx], Awaitable[None]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        CASES[name] = function
        return function

    return register


@case("library.catalog_version")
async def _catalog_version(t: Ctx) -> None:
    assert await catalog_version(t.db, t.a) > 0
    assert await catalog_version(t.db, t.b) == 0


@case("library.last_changes")
async def _last_changes(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await last_changes(conn, t.a) != {}
        assert await last_changes(conn, t.b) == {}


@case("library.Library.version")
async def _version(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await Library(conn, t.b).version() == 0


@case("library.Library.get")
async def _get(t: Ctx) -> None:
    async with t.db.read() as conn:
        for entity_id in A_IDS:
            with pytest.raises(NotFound):
                await Library(conn, t.b).get(ALL_KINDS, entity_id)


@case("library.Library.history")
async def _history(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await Library(conn, t.a).history(ALL_KINDS, A_IDS[0]), "the case saw nothing"
        for entity_id in A_IDS:
            assert await Library(conn, t.b).history(ALL_KINDS, entity_id) == []


@case("library.Library.current_bodies")
async def _current_bodies(t: Ctx) -> None:
    async with t.db.read() as conn:
        version, by_kind = await Library(conn, t.b).current_bodies()
    assert version == 0
    assert all(bodies == [] for bodies in by_kind.values())


@case("library.Library.list")
async def _list(t: Ctx) -> None:
    async with t.db.write() as conn:
        library = Library(conn, t.b)
        for entity_id in ("p-b1", "p-b2"):
            await library.create(
                "placement", {"name": "Placement A", "channel": WEB}, ACTOR, entity_id
            )
    by_id = [OrderKey("id", False)]
    async with t.db.read() as conn:
        library = Library(conn, t.b)
        everything = await library.list(ALL_KINDS, [], by_id, 100, None)
        assert ([item.id for item in everything.items], everything.total) == (["p-b1", "p-b2"], 2)
        named = await library.list(
            ALL_KINDS, parse_properties(["name==Placement A"]), by_id, 1, None
        )
        assert ([item.id for item in named.items], named.total) == (["p-b1"], 2)
        found = await library.list(ALL_KINDS, [contains_name("placement")], by_id, 100, None)
        assert [item.id for item in found.items] == ["p-b1", "p-b2"]
        assert named.next_cursor is not None
        second = await library.list(ALL_KINDS, [], by_id, 1, named.next_cursor)
        assert ([item.id for item in second.items], second.next_cursor) == (["p-b2"], None)
        assert second.prev_cursor is not None
        past_end = await library.list(ALL_KINDS, [], by_id, 2, second.prev_cursor)
        assert past_end.total == 2


@case("library.Library.names")
async def _names(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await Library(conn, t.a).names(ALL_KINDS, 100), "the case saw nothing"
        assert await Library(conn, t.b).names(ALL_KINDS, 100) == []


@case("library.Library.create")
async def _create(t: Ctx) -> None:
    async with t.db.write() as conn:
        library = Library(conn, t.b)
        # A's ids and A's unique names are free in B.
        await library.create("tag", {"name": "Tag A2"}, ACTOR, "tag-a")
        # A's entities cannot be referenced from B.
        offer = {"name": "Offer B", "status": "draft", "rank": {"priority": 0}}
        constraint = {"profileConstraintType": "eligibilityRule", "eligibilityRule": "rule-a"}
        with pytest.raises(Unprocessable):
            await library.create(
                "personalized-offer", {**offer, "selectionConstraint": constraint}, ACTOR
            )
        with pytest.raises(Unprocessable):
            await library.create(
                "collection", {"name": "C", "filterType": "offers", "ids": ["offer-a"]}, ACTOR
            )


@case("library.Library.update")
async def _update(t: Ctx) -> None:
    async with t.db.write() as conn:
        for entity_id in A_IDS:
            with pytest.raises(NotFound):
                await Library(conn, t.b).update(ALL_KINDS, entity_id, dict, ACTOR, None)


@case("library.Library.draft")
async def _draft(t: Ctx) -> None:
    async with t.db.read() as conn:
        for entity_id in A_IDS:
            with pytest.raises(NotFound):
                await Library(conn, t.b).draft(ALL_KINDS, entity_id, dict, None)


@case("library.Library.delete")
async def _delete(t: Ctx) -> None:
    async with t.db.write() as conn:
        library = Library(conn, t.b)
        for entity_id in A_IDS:
            with pytest.raises(NotFound):
                await library.delete(ALL_KINDS, entity_id, None)
        # B's own placement with A's id: A's offers refer to A's, not to this one.
        await library.create("placement", {"name": "P", "channel": WEB}, ACTOR, "placement-a")
        assert (await library.delete(["placement"], "placement-a", None)).id == "placement-a"


@case("guardrails.check_new")
async def _check_new(t: Ctx) -> None:
    one_each = tuple(guardrails.Total(total.kinds, 1, total.label) for total in guardrails.TOTALS)
    t.monkeypatch.setattr(guardrails, "TOTALS", one_each)
    async with t.db.read() as conn:
        with pytest.raises(Unprocessable):  # A is full...
            await guardrails.check_new(conn, Scope.of(t.a), "placement")
        for kind in ALL_KINDS:  # ...and B is empty
            await guardrails.check_new(conn, Scope.of(t.b), kind)


@case("guardrails.check_live_decisions")
async def _check_live_decisions(t: Ctx) -> None:
    t.monkeypatch.setattr(guardrails, "LIVE_DECISIONS", 1)
    live = {"status": "live"}
    async with t.db.read() as conn:
        with pytest.raises(Unprocessable):
            await guardrails.check_live_decisions(conn, Scope.of(t.a), "decision", "new", live)
        await guardrails.check_live_decisions(conn, Scope.of(t.b), "decision", "new", live)


@case("profiles.find_profile")
async def _find_profile(t: Ctx) -> None:
    identity_map = {"Email": [{"id": "joe@example.com"}]}
    assert (await find_profile(t.db, t.a, identity_map))[1] == JOE
    assert await find_profile(t.db, t.b, identity_map) == ("email:joe@example.com", {})


@case("profiles.import_lines")
async def _import_lines(t: Ctx) -> None:
    line = b'{"identityMap": {"Email": [{"id": "joe@example.com"}]}, "tenant": "B"}'
    summary = await import_lines(t.db, t.b, [line])
    assert (summary.imported, summary.failed) == (1, 0)
    # Replaces in bulk (update, unlink, link) reach B's rows only, within and across chunks.
    with_ecid = b'{"identityMap": {"Email": [{"id": "joe@example.com"}], "ECID": [{"id": "1"}]}}'
    lines = [with_ecid, line, with_ecid]
    summary = await import_lines(t.db, t.b, lines, batch_size=2)
    assert (summary.imported, summary.failed) == (3, 0)


@case("profiles.Profiles.get")
async def _profiles_get(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await Profiles(conn, t.b).get("Email", "joe@example.com") is None


@case("profiles.Profiles.put")
async def _profiles_put(t: Ctx) -> None:
    async with t.db.write() as conn:
        stored = await Profiles(conn, t.b).put("Email", "joe@example.com", {"tenant": "B"})
    assert stored["tenant"] == "B"


@case("profiles.Profiles.upsert")
async def _profiles_upsert(t: Ctx) -> None:
    async with t.db.write() as conn:
        result = await Profiles(conn, t.b).upsert("email", "joe@example.com", {"tenant": "B"})
    assert result.created  # A's profile is not B's


@case("profiles.Profiles.merge")
async def _profiles_merge(t: Ctx) -> None:
    async with t.db.write() as conn:
        with pytest.raises(NotFound):
            await Profiles(conn, t.b).merge("Email", "joe@example.com", {"tenant": "B"})


@case("profiles.Profiles.delete")
async def _profiles_delete(t: Ctx) -> None:
    async with t.db.write() as conn:
        assert await Profiles(conn, t.b).delete("Email", "joe@example.com") is False


@case("profiles.Profiles.import_ndjson")
async def _profiles_import_ndjson(t: Ctx) -> None:
    line = '{"identityMap": {"Email": [{"id": "joe@example.com"}]}, "tenant": "B"}'
    async with t.db.write() as conn:
        summary = await Profiles(conn, t.b).import_ndjson([line])
    assert (summary.imported, summary.failed) == (1, 0)


async def _b_events(t: Ctx) -> list[dict[str, Any]]:
    items, total, _cursor = await DecisionEvents(t.db, t.b).page(100, None)
    assert total == len(items)
    return items


@case("events.EventWriter.flush")
async def _events_flush(t: Ctx) -> None:
    writer = EventWriter(t.db)
    writer.record(PendingEvent(t.b.pk, "proposition-b", "2024-01-02T00:00:00.000Z", {"b": 1}))
    assert await writer.flush() == 1
    assert await _b_events(t) == [{"b": 1}]


@case("counters.SqlCounterStore.ping")
async def _counters_ping(t: Ctx) -> None:
    assert await SqlCounterStore(t.db).ping()  # SELECT 1: reads no table


@case("events.EventWriter.commit")
async def _events_commit(t: Ctx) -> None:
    writer = EventWriter(t.db, durable=True)
    await writer.commit(PendingEvent(t.b.pk, "proposition-b", "2024-01-02T00:00:00.000Z", {"b": 3}))
    assert await _b_events(t) == [{"b": 3}]


@case("events.EventWriter.stop")
async def _events_stop(t: Ctx) -> None:
    writer = EventWriter(t.db)
    writer.record(PendingEvent(t.b.pk, "proposition-b", "2024-01-02T00:00:00.000Z", {"b": 2}))
    await writer.stop()
    assert await _b_events(t) == [{"b": 2}]


@case("events.DecisionEvents.page")
async def _events_page(t: Ctx) -> None:
    assert await _b_events(t) == []
    items, total, _ = await DecisionEvents(t.db, t.b).page(10, None, since="2000-01-01")
    assert (items, total) == ([], 0)


@case("events.DecisionEvents.export")
async def _events_export(t: Ctx) -> None:
    assert [item async for item in DecisionEvents(t.db, t.b).export()] == []


@case("events.read_page")
async def _read_page(t: Ctx) -> None:
    for table in (decision_events, interaction_events):
        assert await read_page(t.db, Scope.of(t.a), table, [], 10, None) != ([], 0, None)
        assert await read_page(t.db, Scope.of(t.b), table, [], 10, None) == ([], 0, None)


@case("events.every_page")
async def _every_page(t: Ctx) -> None:
    reads = InteractionEvents(t.db, t.b)
    assert [item async for item in every_page(reads.page)] == []


async def _b_interactions(t: Ctx, **filters: Any) -> list[dict[str, Any]]:
    items, total, _cursor = await InteractionEvents(t.db, t.b).page(100, None, **filters)
    assert total == len(items)
    return items


@case("interactions.InteractionEvents.page")
async def _interactions_page(t: Ctx) -> None:
    assert await _b_interactions(t) == []
    assert await _b_interactions(t, since="2000-01-01", type="interact") == []
    # A's event id and seq are free in B: B's copy is stored, A's row stays as it was.
    writer = interaction_writer(t.db, durable=True)
    await writer.commit(_interaction(t.b, "event-a"))
    assert await _b_interactions(t) == [{"eventId": "event-a", "tenant": t.b.pk}]


@case("interactions.InteractionEvents.export")
async def _interactions_export(t: Ctx) -> None:
    assert [item async for item in InteractionEvents(t.db, t.b).export()] == []
    assert [item async for item in InteractionEvents(t.db, t.b).export(type="interact")] == []


@case("retention.prune_events")
async def _prune_events(t: Ctx) -> None:
    """Pruning spans every sandbox by design (each statement scoped to one): B's events older
    than the cutoff go, A's newer ones (2024-01-01) stay, whoever asks."""
    old = "2023-06-01T00:00:00.000Z"
    writer = EventWriter(t.db)
    writer.record(PendingEvent(t.b.pk, "proposition-b", old, {"b": 1}))
    assert await writer.flush() == 1
    interactions = interaction_writer(t.db)
    interactions.record(dataclasses.replace(_interaction(t.b, "event-b"), timestamp=old))
    assert await interactions.flush() == 1
    pruned = await prune_events(t.db, "2023-12-31T00:00:00.000Z", pause=0)
    assert pruned.decision_events >= 1
    assert pruned.interaction_events >= 1
    assert await _b_interactions(t) == []
    assert (await DecisionEvents(t.db, t.b).page(10, None))[1] == 0


def _report_query() -> reports.ReportQuery:
    return reports.ReportQuery(("offer", "day"), "2024-01-01", "2024-01-31")


async def _b_report(t: Ctx) -> list[dict[str, Any]]:
    return (await reports.report(t.db, t.b, _report_query())).results


@case("reports.report")
async def _reports_report(t: Ctx) -> None:
    assert (await reports.report(t.db, t.a, _report_query())).results != []
    assert await _b_report(t) == []
    everything = reports.ReportQuery(("activity",), "2024-01-01", "2024-01-31")
    assert (await reports.report(t.db, t.b, everything)).totals["propositions"] == 0


@case("rollups.decision_rollup")
async def _rollups_decision(t: Ctx) -> None:
    writer = EventWriter(t.db)
    writer.record(PendingEvent(t.b.pk, "proposition-a", "2024-01-01T00:00:00.000Z", A_DECISION))
    assert await writer.flush() == 1
    counted = {(r["offerId"], r["decisions"], r["capHits"]) for r in await _b_report(t)}
    assert counted == {("offer-a", 1, 0), ("offer-a2", 0, 1)}  # B's own, not A's + B's


@case("rollups.add_batch_decisions")
async def _rollups_batch(t: Ctx) -> None:
    offers = {("dec", "web", "offer-a"): [2, 0], ("dec", "web", "fb"): [0, 1]}
    await rollups.add_batch_decisions(
        t.db, t.b.pk, "2024-01-01", offers, {("dec", "web"): [3, 1, 0]}
    )
    counted = {(r["offerId"], r["decisions"], r["fallbacks"]) for r in await _b_report(t)}
    assert counted == {("offer-a", 2, 0), ("fb", 0, 1)}  # B's own, not A's + B's


@case("rollups.interaction_rollup")
async def _rollups_interaction(t: Ctx) -> None:
    writer = interaction_writer(t.db)
    writer.record(_feedback(t.b, "display-a", "display"))  # A's event id and identity
    assert await writer.flush() == 1
    (row,) = await _b_report(t)
    assert (row["displays"], row["uniqueDisplays"]) == (1, 1)  # new in B, though A has it


@case("interactions.after_insert")
@case("ranking.enqueue")
async def _ranking_enqueue(t: Ctx) -> None:
    assert await ranking.pending(t.db, t.a.pk) == 1
    assert await ranking.pending(t.db, t.b.pk) == 0
    writer = interaction_writer(t.db)  # its batches run after_insert, which runs enqueue
    writer.record(_ranked_display(t.b, "waiting-a", "proposition-missing"))  # A's event id
    assert await writer.flush() == 1
    assert await ranking.pending(t.db, t.b.pk) == 1


@case("ranking.learn")
@case("ranking.strategy_totals")
async def _ranking_learn(t: Ctx) -> None:
    assert await ranking.strategy_totals(t.db, t.a.pk, "strategy-a") != []
    assert await ranking.strategy_totals(t.db, t.b.pk, "strategy-a") == []
    assert (await ranking.learn(t.db, t.b.pk, 10**13, lambda _strategy: None)).done == 0
    await _learn_ranked_display(t.db, t.b, "ranked-a")  # A's proposition and event ids
    (totals,) = await ranking.strategy_totals(t.db, t.b.pk, "strategy-a")
    assert (totals.offer_id, totals.arm, totals.trials, totals.successes) == (
        "offer-a",
        "model",
        1,
        0,
    )


@case("ranking.sandboxes_with_work")
async def _ranking_sandboxes(t: Ctx) -> None:
    """Housekeeping across tenants by design (the learner's pass): it names sandboxes only."""
    due = await ranking.sandboxes_with_work(t.db, 10**13)
    assert t.b.pk not in due


@case("ranking.changed_since")
@case("ranking.pending")
async def _ranking_changed(t: Ctx) -> None:
    version, rows = await ranking.changed_since(t.db, t.a.pk, 0)
    assert version > 0
    assert rows
    assert await ranking.changed_since(t.db, t.b.pk, 0) == (0, [])
    assert await ranking.pending(t.db, t.b.pk) == 0


@case("counters.SqlCounterStore.get_many")
async def _counters_get_many(t: Ctx) -> None:
    counters = SqlCounterStore(t.db)
    assert await counters.get_many(t.a.pk, [A_COUNTER]) == {A_COUNTER: 1}
    assert await counters.get_many(t.b.pk, [A_COUNTER]) == {}


@case("counters.SqlCounterStore.read_prefixed")
async def _counters_read_prefixed(t: Ctx) -> None:
    counters = SqlCounterStore(t.db)
    assert await counters.read_prefixed(t.a.pk, ["cap|"]) == {A_COUNTER: 1}
    assert await counters.read_prefixed(t.b.pk, ["cap|"]) == {}


@case("counters.SqlCounterStore.try_consume")
async def _counters_try_consume(t: Ctx) -> None:
    counters = SqlCounterStore(t.db)
    assert await counters.try_consume(t.b.pk, [(A_COUNTER, 1)])  # A's unit is not B's
    assert not await counters.try_consume(t.b.pk, [(A_COUNTER, 1)])


@case("counters.SqlCounterStore.add")
async def _counters_add(t: Ctx) -> None:
    counters = SqlCounterStore(t.db)
    await counters.add(t.b.pk, [A_COUNTER, A_COUNTER])  # A's counter is not B's
    assert await counters.get_many(t.b.pk, [A_COUNTER]) == {A_COUNTER: 2}


@case("counters.SqlCounterStore.add_in")
async def _counters_add_in(t: Ctx) -> None:
    counters = SqlCounterStore(t.db)
    async with t.db.write() as conn:
        await counters.add_in(conn, t.b.pk, [A_COUNTER])
    assert await counters.get_many(t.b.pk, [A_COUNTER]) == {A_COUNTER: 1}


@case("interactions.insert_counted")
async def _interactions_insert_counted(t: Ctx) -> None:
    # A's event id and seq are free in B: B's copy is new and counts in B only.
    counters = SqlCounterStore(t.db)
    counted = await insert_counted(t.db, counters, t.b.pk, [(_interaction(t.b, "event-a"), ["k"])])
    assert counted.new == 1
    again = await insert_counted(t.db, counters, t.b.pk, [(_interaction(t.b, "event-a"), ["k"])])
    assert again.new == 0
    assert await counters.get_many(t.b.pk, ["k"]) == {"k": 1}
    assert await _b_interactions(t) == [{"eventId": "event-a", "tenant": t.b.pk}]


@case("counters.SqlCounterStore.purge_expired")
async def _counters_purge_expired(t: Ctx) -> None:
    # Housekeeping spans sandboxes on purpose, and deletes only expired counters.
    await SqlCounterStore(t.db).purge_expired()


@case("counters.SqlCounterStore.close")
async def _counters_close(t: Ctx) -> None:
    await SqlCounterStore(t.db).close()


@case("catalog_io.export_catalog")
async def _export_catalog(t: Ctx) -> None:
    async with t.db.read() as conn:
        document = await catalog_io.export_catalog(conn, t.b)
    assert document["entities"] == []


@case("catalog_io.import_catalog")
async def _import_catalog(t: Ctx) -> None:
    async with t.db.read() as conn:
        document = await catalog_io.export_catalog(conn, t.a)
    assert len(document["entities"]) == len(A_IDS)
    async with t.db.write() as conn:  # A's ids and names are all free in B
        counts = await catalog_io.import_catalog(conn, t.b, document, ACTOR)
    assert sum(counts.values()) == len(A_IDS)


@case("datastreams.create_datastream")
async def _datastreams_create(t: Ctx) -> None:
    async with t.db.write() as conn:
        # Ids are global: A's is taken in B too (a clear conflict, nothing of A changed)...
        with pytest.raises(AlreadyExists):
            await datastreams.create_datastream(conn, t.b, datastream_id=a_datastream(t.a))
        # ...but A's origins and placements are B's to use as well.
        created = await datastreams.create_datastream(
            conn, t.b, origins=[A_ORIGIN], item_counts={"placement-a": 3}
        )
    assert created.sandbox == t.b
    async with t.db.read() as conn:
        assert [d.id for d in await datastreams.list_datastreams(conn, t.b)] == [created.id]


@case("datastreams.list_datastreams")
async def _datastreams_list(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert [d.id for d in await datastreams.list_datastreams(conn, t.a)] == [a_datastream(t.a)]
        assert await datastreams.list_datastreams(conn, t.b) == []


@case("tenants.in_each_sandbox")
async def _in_each_sandbox(t: Ctx) -> None:
    async with t.db.read() as conn:
        in_b_org = await tenants.in_each_sandbox(conn, datastreams.list_datastreams, t.b.org_id)
        in_b = await tenants.in_each_sandbox(
            conn, datastreams.list_datastreams, t.b.org_id, t.b.name
        )
        datasets_in_b_org = await tenants.in_each_sandbox(conn, datasets.list_datasets, t.b.org_id)
    # The organization's listing spans its sandboxes (A's when B is in A's organization), and
    # never another organization's.
    assert {d.sandbox.org_id for d in in_b_org} <= {t.b.org_id}
    listed_a = a_datastream(t.a) in [d.id for d in in_b_org]
    assert listed_a == (t.a.org_id == t.b.org_id)
    assert in_b == []
    assert {d.sandbox.org_id for d in datasets_in_b_org} <= {t.b.org_id}
    listed_a = A_BATCH[t.a.pk][0] in [d.id for d in datasets_in_b_org]
    assert listed_a == (t.a.org_id == t.b.org_id)


@case("datastreams.get_datastream")
async def _datastreams_get(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await datastreams.get_datastream(conn, t.b, a_datastream(t.a)) is None
        found = await datastreams.get_datastream(conn, t.a, a_datastream(t.a))
    assert found is not None
    assert found.allows_origin(A_ORIGIN)


@case("datastreams.delete_datastream")
async def _datastreams_delete(t: Ctx) -> None:
    async with t.db.write() as conn:
        assert await datastreams.delete_datastream(conn, t.b, a_datastream(t.a)) is False


@case("datastreams.resolve_datastream")
async def _datastreams_resolve(t: Ctx) -> None:
    # The directory lookup of an Edge request: the id alone finds A's datastream and sandbox,
    # whoever asks; an unknown id finds nothing.
    async with t.db.read() as conn:
        found = await datastreams.resolve_datastream(conn, a_datastream(t.a))
        assert await datastreams.resolve_datastream(conn, f"ds-b-{t.b.pk}") is None
    assert found is not None
    assert found.sandbox == t.a


@case("datasets.create_dataset")
async def _datasets_create(t: Ctx) -> None:
    async with t.db.write() as conn:
        created = await datasets.create_dataset(conn, t.b, data_dir=Path("/nonexistent"))
    async with t.db.read() as conn:
        assert [d.id for d in await datasets.list_datasets(conn, t.b)] == [created.id]


@case("datasets.list_datasets")
async def _datasets_list(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert [d.id for d in await datasets.list_datasets(conn, t.a)] == [A_BATCH[t.a.pk][0]]
        assert await datasets.list_datasets(conn, t.b) == []


@case("datasets.get_dataset")
async def _datasets_get(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await datasets.get_dataset(conn, t.b, A_BATCH[t.a.pk][0]) is None
        assert await datasets.get_dataset(conn, t.a, A_BATCH[t.a.pk][0]) is not None


@case("workloads.create_workload")
async def _workloads_create(t: Ctx) -> None:
    async with t.db.write() as conn:
        own = await datasets.create_dataset(conn, t.b, data_dir=Path("/nonexistent"))
        created = await workloads.create_workload(conn, t.b, own, {"tenant": "B"}, 5)
        assert await workloads.get_workload(conn, t.a, created.id) is None
        # Leave nothing QUEUED for the runner cases that follow.
        claimed = await workloads.claim_next(conn, "runner-b", 6)
        assert claimed is not None
        assert claimed.workload.id == created.id
        assert await workloads.advance(conn, created.id, "runner-b", "ERROR", {}, 7)


@case("workloads.get_workload")
async def _workloads_get(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await workloads.get_workload(conn, t.b, A_BATCH[t.a.pk][1]) is None
        found = await workloads.get_workload(conn, t.a, A_BATCH[t.a.pk][1])
    assert found is not None
    assert found.status == "COMPLETED"


@case("workloads.claim_next")
async def _workloads_claim(t: Ctx) -> None:
    # The runner spans tenants, but takes only QUEUED workloads: A's finished one stays.
    async with t.db.write() as conn:
        claimed = await workloads.claim_next(conn, "runner-b", 10)
    assert claimed is None or claimed.workload.id != A_BATCH[t.a.pk][1]


@case("workloads.heartbeat")
async def _workloads_heartbeat(t: Ctx) -> None:
    async with t.db.write() as conn:
        assert await workloads.heartbeat(conn, "runner-b", [A_BATCH[t.a.pk][1]], 10) == 0


@case("workloads.advance")
async def _workloads_advance(t: Ctx) -> None:
    async with t.db.write() as conn:
        moved = await workloads.advance(conn, A_BATCH[t.a.pk][1], "runner-a", "ERROR", {}, 10)
    assert moved is False  # finished: nobody moves it on


@case("workloads.fail_abandoned")
async def _workloads_fail_abandoned(t: Ctx) -> None:
    async with t.db.write() as conn:
        failed = await workloads.fail_abandoned(conn, 10, 5)
    assert A_BATCH[t.a.pk][1] not in [workload_id for workload_id, _ in failed]


@case("profiles.profile_page")
async def _profile_page(t: Ctx) -> None:
    async with t.db.read() as conn:
        assert await profile_page(conn, t.b, 0, 10) == []
        assert [body["tenant"] for _pk, body in await profile_page(conn, t.a, 0, 10)] == ["A"]


# Users of the admin UI are in the directory, per organization: another organization (B's)
# neither sees nor changes A's; within A's organization a user is the organization's, whichever
# sandbox B is.


def _same_org(t: Ctx) -> bool:
    return t.a.org_id == t.b.org_id


@case("users.create_user")
async def _users_create(t: Ctx) -> None:
    async with t.db.write() as conn:
        with pytest.raises(AlreadyExists):  # an email is one person, in one organization
            await users.create_user(
                conn, t.b.org_id, a_user(t.a), "admin", None, A_PASSWORD_HASH, now=A_NOW
            )
        email = f"b-{t.b.pk}@example.com"
        created = await users.create_user(
            conn, t.b.org_id, email, "admin", None, A_PASSWORD_HASH, now=A_NOW
        )
        assert created.org_id == t.b.org_id
        assert await users.delete_user(conn, t.b.org_id, email)


@case("users.list_users")
async def _users_list(t: Ctx) -> None:
    async with t.db.read() as conn:
        listed = [user.email for user in await users.list_users(conn, t.b.org_id)]
    assert (a_user(t.a) in listed) == _same_org(t)


@case("users.get_user")
async def _users_get(t: Ctx) -> None:
    async with t.db.read() as conn:
        found = await users.get_user(conn, t.b.org_id, a_user(t.a))
    assert (found is not None) == _same_org(t)


@case("users.find_for_sign_in")
async def _users_find(t: Ctx) -> None:
    # Sign-in names no organization: the email finds its one user, which carries its org.
    async with t.db.read() as conn:
        found = await users.find_for_sign_in(conn, a_user(t.a).upper())
        assert await users.find_for_sign_in(conn, f"b-{t.b.pk}@example.com") is None
    assert found is not None
    assert found[0].org_id == t.a.org_id


@case("users.set_role")
async def _users_set_role(t: Ctx) -> None:
    if _same_org(t):
        return  # the organization's own user: changing it is no breach (and A's rows stay)
    async with t.db.write() as conn:
        assert await users.set_role(conn, t.b.org_id, a_user(t.a), "admin") is None
        found = await users.get_user(conn, t.a.org_id, a_user(t.a))
    assert found is not None
    assert found.role == users.Role.EDITOR


@case("users.delete_user")
async def _users_delete(t: Ctx) -> None:
    if _same_org(t):
        return
    async with t.db.write() as conn:
        assert await users.delete_user(conn, t.b.org_id, a_user(t.a)) is False
        assert await users.get_user(conn, t.a.org_id, a_user(t.a)) is not None


@case("users.start_session")
async def _users_start_session(t: Ctx) -> None:
    async with t.db.write() as conn:
        user = await users.create_user(
            conn, t.b.org_id, f"b-{t.b.pk}@example.com", "viewer", None, A_PASSWORD_HASH, now=A_NOW
        )
        token, session = await users.start_session(
            conn, user, now=A_NOW, lifetime=timedelta(hours=1)
        )
        found = await users.session_of(conn, token, now=A_NOW)
        assert found is not None
        assert found.user.org_id == t.b.org_id
        assert session.csrf_token == found.csrf_token
        assert await users.delete_user(conn, t.b.org_id, user.email)
        # A's session (started the same moment) is untouched by B's sign-in.
        assert await users.session_of(conn, A_SESSIONS[t.a.pk], now=A_NOW) is not None


@case("users.session_of")
async def _users_session_of(t: Ctx) -> None:
    async with t.db.read() as conn:
        found = await users.session_of(conn, A_SESSIONS[t.a.pk], now=A_NOW)
        assert await users.session_of(conn, "not-a-token", now=A_NOW) is None
    assert found is not None
    assert found.user.org_id == t.a.org_id
    assert found.user.sandboxes == (t.a.name,)


@case("users.end_session")
async def _users_end_session(t: Ctx) -> None:
    async with t.db.write() as conn:
        await users.end_session(conn, "not-a-token")
        assert await users.session_of(conn, A_SESSIONS[t.a.pk], now=A_NOW) is not None


# -- the tests -------------------------------------------------------------------------------


def _is_async(value: object) -> bool:
    return inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)


def repository_functions() -> set[str]:
    """'module.function' and 'module.Class.method' for everything in the store that can reach
    the database, outside NOT_REPOSITORIES and NOT_SQL."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(offerbase.store.__path__):
        if info.name in NOT_REPOSITORIES:
            continue
        module = importlib.import_module(f"offerbase.store.{info.name}")
        for name, value in vars(module).items():
            qualified = f"{info.name}.{name}"
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if qualified in NOT_SQL:
                continue
            if _is_async(value):
                found.add(qualified)
            elif inspect.isclass(value):
                found.update(
                    f"{qualified}.{attr}"
                    for attr, member in vars(value).items()
                    if not attr.startswith("_") and _is_async(member)
                )
    return found


def test_every_repository_function_has_a_case() -> None:
    functions = repository_functions()
    assert functions, "no repository found: the walk is broken"
    assert functions - set(CASES) == set(), "repository functions without a tenancy case"
    # Directory functions (module tenants) that list tenant rows get a case too, by choice.
    directory = {name for name in CASES if name.startswith("tenants.")}
    assert set(CASES) - functions - directory == set(), "cases for functions that no longer exist"


@pytest.fixture
async def tenant_a(database: Database) -> Sandbox:
    async with database.write() as conn:
        a = await tenants.ensure_sandbox(conn, f"{uuid.uuid4().hex}@AdobeOrg", "prod")
    await _fill(database, a)
    return a


@pytest.mark.parametrize("other", ["other organization", "other sandbox of the organization"])
async def test_another_tenant_neither_sees_nor_changes_the_rows(
    database: Database, tenant_a: Sandbox, other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await _rows_of(database, tenant_a)
    assert all(before.values()), f"tenant A has no rows in some table: {before}"
    org = f"{uuid.uuid4().hex}@AdobeOrg" if other == "other organization" else tenant_a.org_id
    for name, run in CASES.items():
        async with database.write() as conn:  # a fresh tenant B per case: cases stay independent
            b = await tenants.ensure_sandbox(conn, org, f"b-{uuid.uuid4().hex[:12]}")
        with monkeypatch.context() as patch:
            try:
                await run(Ctx(database, tenant_a, b, patch))
            except Exception as exc:
                raise AssertionError(f"{name} as {other}: {exc!r}") from exc
    assert await _rows_of(database, tenant_a) == before


async def test_the_directory_keeps_organizations_apart(
    database: Database, tenant_a: Sandbox
) -> None:
    other = f"{uuid.uuid4().hex}@AdobeOrg"
    async with database.write() as conn:
        assert await tenants.get_sandbox(conn, other, tenant_a.name) is None
        own = await tenants.ensure_sandbox(conn, other, tenant_a.name)
        assert own.pk != tenant_a.pk
        assert await tenants.list_sandboxes(conn, other) == [own]
        assert await tenants.get_sandbox(conn, tenant_a.org_id, tenant_a.name) == tenant_a


# -- the helper ------------------------------------------------------------------------------


def test_every_table_declares_its_tenancy() -> None:
    for table in metadata.sorted_tables:
        declared = {"tenant", "directory"} & set(table.info)
        assert len(declared) == 1, f"{table.name}: say info={{'tenant': ...}} or directory"
        if "tenant" in table.info and table.name != "sandboxes":
            column = scope.tenant_column(table)
            assert {fk.column.table.name for fk in column.foreign_keys} == {"sandboxes"}


def test_scope_filters_every_table_it_reads_or_writes() -> None:
    joined = sa.select(entities.c.entity_id).select_from(
        entities.join(references, references.c.from_id == entities.c.entity_id)
    )
    sql = str(Scope(7).apply(joined).compile(compile_kwargs={"literal_binds": True}))
    assert "entities.sandbox_pk = 7" in sql
    assert "entity_references.sandbox_pk = 7" in sql
    sql = str(Scope(7).apply(entities.delete()).compile(compile_kwargs={"literal_binds": True}))
    assert sql.endswith("WHERE entities.sandbox_pk = 7")
    insert = Scope(7).apply(references.insert().values(from_id="x"))
    assert insert.compile().params["sandbox_pk"] == 7
    with pytest.raises(UnscopedTable):
        Scope(7).apply(sa.select(credentials))


def test_check_refuses_what_scope_did_not_build() -> None:
    scope.check(Scope(7).apply(sa.select(entities)))
    scope.check(sa.select(credentials))  # the directory holds no tenant rows
    with pytest.raises(UnscopedTable):
        scope.check(sa.select(entities))
    with pytest.raises(UnscopedTable):  # a tenant table joined after scoping
        scope.check(Scope(7).apply(sa.select(entities)).join(references, sa.true()))
    inner = sa.select(references.c.to_id)
    with pytest.raises(UnscopedTable):  # ...or reached through a subquery
        scope.check(Scope(7).apply(sa.select(entities).where(entities.c.entity_id.in_(inner))))
    with pytest.raises(UnscopedTable):
        scope.check("SELECT body FROM entities WHERE entity_id = 'x'")
    raw = scope.raw_sql(sa.select(entities.c.body))
    scope.check_raw(raw, Scope(7).params())
    with pytest.raises(UnscopedTable):
        scope.check_raw(raw, {})
    with pytest.raises(UnscopedTable):
        scope.check_raw("SELECT body FROM entities", Scope(7).params())


# -- static: SQL lives in store/ and goes through scope.py ---------------------------------

_DATABASE_LIBRARIES = {"sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "alembic", "psycopg"}
_DATABASE_CALLS = {"execute", "executemany", "exec_driver_sql", "point_read", "insert_rows"}
_SQL = re.compile(
    r"\bSELECT\s+[\w*\"(]|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\b(CREATE|DROP|ALTER)\s+(TABLE|INDEX|DATABASE)\b|\bPRAGMA\b"
)


def _texts(tree: ast.AST) -> Iterator[str]:
    """The string literals of a module; an f-string's literal parts also joined up."""
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def _sql_strings(tree: ast.AST) -> list[str]:
    return [text for text in _texts(tree) if _SQL.search(text)]


def _outside_store() -> list[Path]:
    return [path for path in SRC.rglob("*.py") if "store" not in path.relative_to(SRC).parts]


def test_no_sql_outside_the_store() -> None:
    assert _outside_store()
    wrong = []
    for path in _outside_store():
        tree = ast.parse(path.read_text())
        name = path.relative_to(SRC)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                modules = []
            wrong += [
                f"{name} imports {m}" for m in modules if m.split(".")[0] in _DATABASE_LIBRARIES
            ]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in _DATABASE_CALLS:
                    wrong.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
        wrong += [f"{name} has SQL: {text!r}" for text in _sql_strings(tree)]
    assert wrong == []


def test_store_sql_is_built_through_scope() -> None:
    """Repositories write no SQL text: it comes from Core statements through scope.py. Only
    db.py has SQL text (connection settings and the batch insert, which names no table itself;
    migrations and migrate.py read and write the schema's version),
    and only the directory (tenants.py, and the Edge's datastream lookup) and housekeeping mark
    statements as spanning tenants."""
    store = SRC / "store"
    wrong = []
    for path in store.rglob("*.py"):
        name = path.relative_to(store)
        if name.parts[0] == "migrations" or name.name == "migrate.py":
            continue  # schema bookkeeping: Alembic's own version table, no tenant rows
        source = path.read_text()
        for text in _sql_strings(ast.parse(source)):
            if name.name != "db.py" or scope._named_in(text):
                wrong.append(f"{name} has SQL text: {text!r}")
        if "across_tenants(" in source and name.name not in {
            "scope.py",
            "tenants.py",
            "counters.py",
            "datastreams.py",
            "workloads.py",
            "ranking.py",  # the learner's pass: which sandboxes have due work (pks only)
        }:
            wrong.append(f"{name} spans tenants")
    assert wrong == []
    counters_source = (store / "counters.py").read_text()
    assert counters_source.count("across_tenants(") == 1  # purge_expired
    datastreams_source = (store / "datastreams.py").read_text()
    assert datastreams_source.count("across_tenants(") == 1  # resolve_datastream
    # The batch runner (deployment-wide): claim_next (4), heartbeat, advance, fail_abandoned (2).
    assert (store / "workloads.py").read_text().count("across_tenants(") == 8
