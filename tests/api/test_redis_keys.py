"""Redis counter keys of one deployment never meet another's (issue 9, point 7).

Sandbox pks start at 1 in every database, so two deployments sharing a Redis used to share
the counters of their first sandboxes: a decision in one spent the other's caps. Keys now carry
the database's deployment id (and OFFERBASE_REDIS_PREFIX).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from decisioning_catalog import Catalog, criterion, decision_request, option_ids
from typer.testing import CliRunner

from conftest import SIGNING_KEY, make_tenant
from offerbase.api.app import create_app
from offerbase.api.deps import services_of
from offerbase.cli import app as cli
from offerbase.config import Settings
from offerbase.store.db import Database
from offerbase.store.deployment import deployment_id
from offerbase.store.migrate import upgrade

BASE = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
REDIS_URL = f"{BASE}/13"  # a database of its own; each test deletes the keys it made
ODS = "/data/core/ods/decisions"


@pytest.fixture
async def redis_keys() -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    made: list[str] = []
    yield made
    for prefix in made:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    await client.aclose()


class Deployment:
    """`offerbase serve` on its own SQLite database, its counters in the shared Redis."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.db = Database(f"sqlite+aiosqlite:///{path}")
        settings = Settings(
            data_dir=path.parent,
            secret_key=SIGNING_KEY,
            database_url=self.db.url,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            snapshot_poll_seconds=0,
        )
        self.app = create_app(settings, db=self.db)
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://t")

    async def served(self, tenant: Any) -> str:
        response = await self.client.post(
            ODS, json=decision_request([("dec", "web")]), headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        return option_ids(response.json()["xdm:propositions"][0])[0]

    async def close(self) -> None:
        await self.client.aclose()
        await services_of(self.app).counters.close()
        await self.db.dispose()


@pytest.fixture
async def deployments(tmp_path: Path, redis_keys: list[str]) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Deployment] = []
    test_id = uuid.uuid4().hex[:12]

    async def open_deployment(name: str, *, prefix: str = "", new: bool = True) -> Any:
        # A prefix of this test's own: the cleanup deletes it, and only it.
        prefix = f"test-keys-{test_id}-{prefix}:"
        path = tmp_path / name / "offerbase.db"
        path.parent.mkdir(exist_ok=True)
        deployment = Deployment(path, prefix)
        if new:
            await upgrade(deployment.db)
        redis_keys.append(prefix)
        opened.append(deployment)
        return deployment

    yield open_deployment
    for deployment in opened:
        await deployment.close()


async def offerbase(*args: str) -> Any:
    """The CLI, on a thread of its own: its commands run their own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def capped_catalog(deployment: Deployment) -> Any:
    """A tenant whose offer 'capped' may be served once in all, then 'plain'."""
    tenant = await make_tenant(deployment.app, deployment.client)
    catalog = Catalog(deployment.client, tenant)
    await catalog.placement("web")
    cap = {"limit": 1, "scope": "global", "entity": "offer"}
    await catalog.offer("capped", ["web"], priority=9, frequencyCappingConstraints=[cap])
    await catalog.offer("plain", ["web"], priority=1)
    await catalog.collection("all", ["capped", "plain"])
    await catalog.decision("dec", [criterion("all")])
    return tenant


async def test_two_deployments_on_one_redis_count_apart(deployments: Any) -> None:
    a, b = await deployments("a"), await deployments("b")
    tenant_a, tenant_b = await capped_catalog(a), await capped_catalog(b)
    # Both first sandboxes have pk 1 in their own databases: the same key before the fix.
    assert await a.served(tenant_a) == "capped"
    assert await b.served(tenant_b) == "capped"
    assert await a.served(tenant_a) == "plain"
    assert await b.served(tenant_b) == "plain"
    assert await deployment_id(a.db) != await deployment_id(b.db)


async def test_the_prefix_separates_deployments_too(deployments: Any, tmp_path: Path) -> None:
    a = await deployments("a", prefix="blue")
    tenant = await capped_catalog(a)
    assert await a.served(tenant) == "capped"
    await a.close()
    # The same database under another prefix (e.g. a second environment on the same Redis).
    green = await deployments("a", prefix="green", new=False)
    assert await green.served(tenant) == "capped"
    assert await green.served(tenant) == "plain"


async def test_a_restored_database_and_a_copy(
    deployments: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database restored in place keeps its id, and so its counters (caps keep holding); a
    copy made a deployment of its own with `offerbase deployment new-id` counts from zero and
    leaves the original's counters alone."""
    a = await deployments("a")
    tenant = await capped_catalog(a)
    assert await a.served(tenant) == "capped"
    await a.close()
    (tmp_path / "copy").mkdir()
    shutil.copy(a.path, tmp_path / "copy" / "offerbase.db")  # the backup, restored elsewhere

    restored = await deployments("a", new=False)  # the original, restored in place
    assert await restored.served(tenant) == "plain"

    url = f"sqlite+aiosqlite:///{tmp_path / 'copy' / 'offerbase.db'}"
    # The CLI passes its flags on to worker processes through the environment: restored after.
    monkeypatch.setenv("OFFERBASE_DATABASE_URL", url)
    monkeypatch.setenv("OFFERBASE_DATA_DIR", str(tmp_path / "copy"))
    shown = await offerbase("deployment", "id", "--database-url", url)
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == await deployment_id(restored.db)
    renewed = await offerbase("deployment", "new-id", "--database-url", url)
    assert renewed.exit_code == 0, renewed.output
    assert renewed.output.strip() != shown.output.strip()

    copy = await deployments("copy", new=False)
    assert await deployment_id(copy.db) == renewed.output.strip()
    assert await copy.served(tenant) == "capped"  # its own counters, from zero
    assert await restored.served(tenant) == "plain"
