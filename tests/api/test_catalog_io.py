"""`offerbase catalog export` / `import`: a catalog built through the API is exported from one
sandbox and imported into another by the real CLI, on both backends, and decides the same."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from decisioning_catalog import Catalog, criterion, decision_request
from typer.testing import CliRunner

from offerbase.api.deps import services_of
from offerbase.cli import app as cli
from offerbase.store.catalog_io import ORDER

ODS = "/data/core/ods/decisions"
runner = CliRunner()


@pytest.fixture
def cli_env(database, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The CLI on the test database. The CLI exports its settings to the environment (for
    `serve`'s workers); monkeypatch puts the environment back afterwards."""
    monkeypatch.setenv("OFFERBASE_DATABASE_URL", database.url)
    monkeypatch.setenv("OFFERBASE_DATA_DIR", str(tmp_path / "data"))

    async def invoke(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        # In a thread: the CLI runs its own event loop.
        return await asyncio.to_thread(runner.invoke, cli, list(args), input=stdin)

    return invoke


@pytest.fixture
def fixed_decisions(app, monkeypatch):  # type: ignore[no-untyped-def]
    """A fixed clock and RNG; catalog changes seen at once."""
    services = services_of(app)
    monkeypatch.setattr(services, "clock", lambda: datetime(2026, 11, 24, 12, tzinfo=UTC))
    monkeypatch.setattr(services, "rng", random.Random(3))
    monkeypatch.setattr(services.snapshots, "poll_seconds", 0)


async def build_catalog(catalog: Catalog) -> None:
    await catalog.post("tags", "vip", {"name": "VIP"})
    await catalog.placement("web")
    await catalog.rule("gold", 'loyalty.tier = "gold"')
    await catalog.formula("boost", "offer.rank.priority * 2")
    await catalog.offer("o-gold", ["web"], priority=5, tags=["vip"])
    await catalog.offer(
        "o-rule",
        ["web"],
        priority=9,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00.000Z",
            "endDate": "2040-01-01T00:00:00.000Z",
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": "gold",
        },
    )
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["o-gold", "o-rule"])
    await catalog.post(
        "offer-collections", "tagged", {"name": "tagged", "filterType": "any-tags", "ids": ["vip"]}
    )
    await catalog.decision(
        "dec", [criterion("all", formula="boost"), criterion("tagged")], fallback="fb"
    )


async def export(invoke, org: str, sandbox: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = await invoke("catalog", "export", "--org", org, "--sandbox", sandbox)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_export_import_round_trip_decides_the_same(
    client, tenant, cli_env, fixed_decisions, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await build_catalog(Catalog(client, tenant))
    document = await export(cli_env, tenant.org, "prod")
    assert document["format"] == "offerbase-catalog/1"
    assert document["source"]["sandbox"] == "prod"
    kinds = [entity["kind"] for entity in document["entities"]]
    assert kinds == sorted(kinds, key=ORDER.index)  # references come first
    assert len(kinds) == 10

    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document))
    imported = await cli_env(
        "catalog", "import", str(path), "--org", tenant.org, "--sandbox", "dev"
    )
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["imported"] == {
        "tag": 1,
        "placement": 1,
        "decision-rule": 1,
        "ranking-formula": 1,
        "personalized-offer": 2,
        "fallback-offer": 1,
        "collection": 2,
        "decision": 1,
    }
    copy = await export(cli_env, tenant.org, "dev")
    assert copy["entities"] == document["entities"]

    # The same request decides the same in both sandboxes, with the rule, formula and tags.
    headers = {**tenant.headers, "Content-Type": "application/json"}
    for tier, expected in (("gold", "o-rule"), ("silver", "o-gold")):
        body = decision_request(
            [("dec", "web")], **{"profile": {"offerbase:profile": {"loyalty": {"tier": tier}}}}
        )
        chosen = []
        for sandbox in ("prod", "dev"):
            response = await client.post(
                ODS, json=body, headers={**headers, "x-sandbox-name": sandbox}
            )
            assert response.status_code == 200, response.text
            chosen.append(response.json()["xdm:propositions"][0]["xdm:options"][0]["xdm:id"])
        assert chosen == [expected, expected]


async def test_an_import_is_all_or_nothing(client, tenant, cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    taken = Catalog(client, tenant.in_sandbox("dev"))
    await taken.placement("web")  # the same id already exists in the target sandbox
    document = await export(cli_env, tenant.org, "prod")
    document["entities"].insert(
        0, {"kind": "tag", "id": "new-tag", "body": {"name": "would be new"}}
    )
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document))

    result = await cli_env("catalog", "import", str(path), "--org", tenant.org, "--sandbox", "dev")
    assert result.exit_code == 1
    assert "Nothing imported: /entities/1 (placement 'web')" in result.output
    assert "already used" in result.output
    after = await export(cli_env, tenant.org, "dev")
    assert [e["id"] for e in after["entities"]] == ["web"]  # the tag was not kept


async def test_entities_in_any_order_and_refused_documents(
    client, tenant, cli_env, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await build_catalog(Catalog(client, tenant))
    document = await export(cli_env, tenant.org, "prod")
    document["entities"].reverse()  # decisions first, as a hand-written file might
    path = tmp_path / "reversed.json"
    path.write_text(json.dumps(document))
    result = await cli_env("catalog", "import", str(path), "--org", tenant.org, "--sandbox", "dev")
    assert result.exit_code == 0, result.output

    bad_entity = {
        "format": "offerbase-catalog/1",
        "entities": [{"kind": "offer", "id": "x", "body": {}}],
    }
    cases = [
        ("not json", 1, "Not JSON"),
        (json.dumps({"entities": []}), 1, "Not a catalog document"),
        (json.dumps(bad_entity), 1, "/entities/0 must be"),
        (
            json.dumps(
                {
                    "format": "offerbase-catalog/1",
                    "entities": [
                        {"kind": "placement", "id": "p2", "body": {"componentType": "hologram"}}
                    ],
                }
            ),
            1,
            "/entities/0 (placement 'p2')",
        ),
    ]
    for text, code, message in cases:
        result = await cli_env("catalog", "import", "-", "--org", tenant.org, stdin=text)
        assert result.exit_code == code, result.output
        assert message in result.output

    missing = await cli_env("catalog", "export", "--org", tenant.org, "--sandbox", "nope")
    assert missing.exit_code == 2
    assert "has no sandbox named 'nope'" in missing.output
    no_file = await cli_env("catalog", "import", str(tmp_path / "absent.json"), "--org", tenant.org)
    assert no_file.exit_code == 2


def test_every_kind_has_a_place_in_the_order() -> None:
    from offerbase import catalog

    assert sorted(ORDER) == sorted(catalog.KINDS)
