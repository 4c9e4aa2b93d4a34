"""`offerbase batch decide` chooses what the Decisioning API chooses, on SQLite and PostgreSQL.

The comparison is exact, not statistical: the catalog has priority ties (random tie-breaks),
rules, a global cap that runs out during the run and a per-profile cap, and the input repeats
some profiles. The same catalog and profiles are imported into two sandboxes. The API side
decides the rows one request after another in input order, its RNG a `RowRandom` seeded
before each request with `row_seed(seed, profile key)`, which is how batch seeds every row;
the batch side runs the CLI with that seed (in one process and in two). Caps have no period
and every date is wide, so both clocks (each its own `now`) give the same answers. Afterwards
the batch sandbox's counters equal the API sandbox's, and the reports count its decisions.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import builders
from offerbase.batch.partition import RowRandom, row_seed
from offerbase.cli import app as cli

pytestmark = pytest.mark.xdist_group("batch")

SEED = 20261201
WIDE = {"start": "2020-01-01T00:00:00.000Z", "end": "2040-01-01T00:00:00.000Z"}
GLOBAL_LIMIT = 30
ROWS = 2000


def catalog_document() -> dict[str, Any]:
    """An offerbase-catalog/1 document: 24 offers in 3 priority tiers, 4 rules, a global cap
    and a per-profile cap, one decision with a fallback."""
    entities: list[dict[str, Any]] = []

    def add(kind: str, stored: dict[str, Any]) -> None:
        body = {k: v for k, v in stored.items() if k not in ("id", "etag")}
        entities.append({"kind": kind, "id": stored["id"], "body": body})

    add("placement", {**builders.placement("web"), "channel": builders.WEB})
    rules = [
        'profile.tier = "gold"',
        "profile.points >= 300",
        "profile.points < 700",
        'profile.tier = "gold" or profile.points >= 500',
    ]
    for r, source in enumerate(rules):
        add("decision-rule", builders.rule(f"rule{r}", source))
    ids = []
    for i in range(24):
        caps = None
        if i in (3, 9):
            caps = [{"limit": GLOBAL_LIMIT, "scope": "global", "entity": "offer"}]
        elif i in (15, 21):
            caps = [{"limit": 1, "scope": "profile", "entity": "offer"}]
        constraint = (
            {"profileConstraintType": "eligibilityRule", "eligibilityRule": f"rule{i % 4}"}
            if i % 6 != 0
            else {"profileConstraintType": "none"}
        )
        body = builders.offer(
            f"offer{i}", 2 - i % 3, placements=("web",), constraint=constraint, caps=caps, **WIDE
        )
        add("personalized-offer", body)
        ids.append(f"offer{i}")
    add("fallback-offer", builders.fallback("fb", ("web",)))
    add("collection", builders.collection("all", ids))
    add(
        "decision",
        builders.decision(
            "dec", [builders.criterion("all", placements=["web"])], fallback_id="fb", **WIDE
        ),
    )
    return {"format": "offerbase-catalog/1", "entities": entities}


def generated_profiles(count: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    people = [
        {
            "identityMap": {"Email": [{"id": f"person{n}@example.com", "primary": True}]},
            "tier": rng.choice(["gold", "silver", "bronze"]),
            "points": rng.randrange(1000),
        }
        for n in range(count * 9 // 10)
    ]
    # a tenth of the rows repeat a person: the per-profile cap must hold across rows
    return people + [rng.choice(people) for _ in range(count - len(people))]


class Cli:
    def __init__(self, url: str, data_dir: Path, org: str) -> None:
        self.url, self.data_dir, self.org = url, data_dir, org

    async def __call__(self, *args: str, code: int = 0) -> str:
        def invoke() -> Any:
            return CliRunner().invoke(
                cli, [*args, "--database-url", self.url, "--data-dir", str(self.data_dir)]
            )

        result = await asyncio.to_thread(invoke)
        assert result.exit_code == code, result.output
        return str(result.stdout)


async def _api_answers(
    app: Any, rng: random.Random, tenant: Any, rows: list[dict[str, Any]]
) -> list[list[str]]:
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://offerbase.test") as http:
        for row in rows:
            email = row["identityMap"]["Email"][0]["id"]
            rng.seed(row_seed(SEED, f"email:{email}"))
            body = {
                "xdm:propositionRequests": [
                    {"xdm:activityId": "dec", "xdm:placementId": "web", "xdm:itemCount": 2}
                ],
                "xdm:profiles": [
                    {"xdm:identityMap": {"Email": [{"xdm:id": email, "primary": True}]}}
                ],
            }
            response = await http.post(
                "/data/core/ods/decisions", json=body, headers=tenant.headers
            )
            assert response.status_code == 200, response.text
            proposition = response.json()["xdm:propositions"][0]
            if "xdm:options" in proposition:
                answers.append([o["xdm:id"] for o in proposition["xdm:options"]])
            else:
                answers.append([proposition["xdm:fallback"]["xdm:id"]])
    return answers


def _batch_answers(output: Path) -> list[list[str]]:
    by_event: dict[str, list[str]] = {}
    for row in pq.read_table(output).to_pylist():
        by_event.setdefault(row["decision_event_id"], []).append(row["option_id"])
    return list(by_event.values())


async def _counters(database: Any, org: str, sandbox: str) -> dict[str, int]:
    import sqlalchemy as sa

    from offerbase.store import tenants
    from offerbase.store.tables import capping_counters

    async with database.read() as conn:
        found = await tenants.get_sandbox(conn, org, sandbox)
        rows = await conn.execute(
            sa.select(capping_counters.c.key, capping_counters.c.value).where(
                capping_counters.c.sandbox_pk == found.pk
            )
        )
        return dict(rows.tuples().all())


async def test_batch_chooses_what_the_api_chooses(
    database: Any, make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import offerbase.batch.run as run
    from conftest import make_tenant

    # several partitions, so two workers decide in parallel and the cap runs out in flight
    monkeypatch.setattr(run, "ROWS_PER_PARTITION", 250)
    monkeypatch.setenv("OFFERBASE_DATABASE_URL", database.url)  # restored after (the CLI sets it)
    monkeypatch.setenv("OFFERBASE_DATA_DIR", str(tmp_path / "data"))
    rng = RowRandom()  # the batch row's RNG kind, seeded per request below
    api = make_app(rng=rng)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://offerbase.test") as http:
        tenant = await make_tenant(api, http, ("prod", "batch"))
    command = Cli(database.url, tmp_path / "data", tenant.org)
    rows = generated_profiles(ROWS)
    profiles = tmp_path / "profiles.ndjson"
    profiles.write_bytes(b"\n".join(orjson.dumps(row) for row in rows) + b"\n")
    document = tmp_path / "catalog.json"
    document.write_text(json.dumps(catalog_document()))
    for sandbox in ("prod", "batch"):
        await command("catalog", "import", str(document), "--org", tenant.org, "--sandbox", sandbox)
        await command(
            "profiles", "import", str(profiles), "--org", tenant.org, "--sandbox", sandbox
        )
    online = await _api_answers(api, rng, tenant, rows)
    api_counters = await _counters(database, tenant.org, "prod")
    assert GLOBAL_LIMIT in api_counters.values()  # the global cap ran out during the run

    async def batch(output: Path, *options: str) -> dict[str, Any]:
        summary = await command(
            "batch", "decide", "--org", tenant.org, "--sandbox", "batch",
            "--input", str(profiles), "--activity", "dec", "--placement", "web",
            "--item-count", "2", "--output", str(output), "--seed", str(SEED), "--json", *options,
        )  # fmt: skip
        return dict(json.loads(summary))

    async def events() -> list[str]:
        exported = await command("events", "export", "--org", tenant.org, "--sandbox", "batch")
        return exported.split()

    async def report(group: str) -> dict[str, Any]:
        headers = {**tenant.headers, "x-sandbox-name": "batch"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            got = await client.get(
                "/data/core/ods/reports", params={"groupBy": group}, headers=headers
            )
        assert got.status_code == 200, got.text
        return dict(got.json())

    # A dry run in one process: the same answers, and nothing counted or recorded.
    summary = await batch(tmp_path / "dry", "--dry-run")
    assert summary["rows"] == ROWS
    assert summary["fallbacks"] == sum(answer == ["fb"] for answer in online)
    assert _batch_answers(tmp_path / "dry") == online
    assert await _counters(database, tenant.org, "batch") == {}
    assert (await report("offer"))["results"] == []

    # For real, in two worker processes: the same answers, the API's counters, and the
    # reports count every decision of the job.
    summary = await batch(tmp_path / "out", "--workers", "2")
    assert summary["rows"] == ROWS
    assert _batch_answers(tmp_path / "out") == online
    assert await _counters(database, tenant.org, "batch") == api_counters
    by_offer = {row["offerId"]: row for row in (await report("offer"))["results"]}
    chosen = Counter(offer for answer in online if answer != ["fb"] for offer in answer)
    assert {k: row["decisions"] for k, row in by_offer.items() if row["decisions"]} == chosen
    assert sum(row["fallbacks"] for row in by_offer.values()) == online.count(["fb"])
    (by_scope,) = (await report("activity,placement"))["results"]
    assert (by_scope["activityId"], by_scope["placementId"]) == ("dec", "web")
    assert by_scope["propositions"] == ROWS
    assert by_scope["fallbackRate"] == online.count(["fb"]) / ROWS
    # the job's decision events are its output rows: none is copied into the event store
    assert await events() == []
