"""Batch decisioning over HTTP (`/data/core/dwm/workloads/decisions`, `/data/core/dwm/datasets`)
and its job runner (api/workload_runs.py), on SQLite and PostgreSQL. The restart case runs a
real `offerbase serve`: tests/api/test_workloads_restart.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from decisioning_catalog import Catalog, criterion, decision_request

from conftest import Tenant
from offerbase.batch.partition import schema as batch_schema
from offerbase.store import datasets, tenants, workloads
from offerbase.store.db import Database

DATASETS = "/data/core/dwm/datasets"
DECISIONS = "/data/core/dwm/workloads/decisions"
UPS = "/data/core/ups/profiles"
SEGMENT = "609028e4-e66c-4776-b0d9-c782887e2273"


def member(status: str = "realized") -> dict[str, Any]:
    return {"ups": {SEGMENT: {"status": status}}}


async def _catalog(client, tenant: Tenant) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(client, tenant)
    await catalog.placement("P")
    await catalog.rule("gold", 'profile.tier.equals("gold", false)')
    await catalog.offer(
        "gold-offer",
        ["P"],
        priority=5,
        selectionConstraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "gold"},
    )
    await catalog.offer("plain-offer", ["P"], priority=1)
    await catalog.fallback("fb", ["P"])
    await catalog.collection("all", ["gold-offer", "plain-offer"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")


async def _profiles(client, tenant: Tenant) -> None:  # type: ignore[no-untyped-def]
    people = {
        "ann@example.com": {"tier": "gold", "segmentMembership": member()},
        "bob@example.com": {"tier": "silver", "segmentMembership": member("existing")},
        "cid@example.com": {"tier": "gold", "segmentMembership": member("exited")},
        "dan@example.com": {"tier": "gold"},
    }
    for email, body in people.items():
        response = await client.put(f"{UPS}/Email/{email}", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text


async def _dataset(client, tenant: Tenant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.post(DATASETS, json={"name": "emails"}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _request(dataset_id: str, **scope: Any) -> dict[str, Any]:
    return {
        "xdm:segmentIds": [SEGMENT],
        "xdm:dataSetId": dataset_id,
        "xdm:propositionRequests": [
            {"xdm:activityId": "dec", "xdm:placementId": "P", "xdm:itemCount": 1, **scope}
        ],
        "xdm:includeContent": True,
    }


@asynccontextmanager
async def _running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` with its lifespan running: the job runner claims and runs workloads."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def _until_finished(client, tenant: Tenant, workload_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    seen = []
    for _ in range(600):  # at most a minute: a worker process starts, then decides 2 profiles
        response = await client.get(f"{DECISIONS}/{workload_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if not seen or seen[-1] != body["ode:status"]:
            seen.append(body["ode:status"])
        if body["ode:status"] in workloads.FINISHED:
            return {**body, "seen": seen}
        await asyncio.sleep(0.1)
    raise AssertionError(f"the workload did not finish: {seen}")


async def test_a_workload_decides_every_member_of_the_audience(make_app, tmp_path: Path) -> None:
    from conftest import make_tenant

    app = make_app(batch_poll_seconds=0.1)
    async with _running(app) as client:
        tenant = await make_tenant(app, client)
        await _catalog(client, tenant)
        await _profiles(client, tenant)
        dataset = await _dataset(client, tenant)
        started = await client.post(DECISIONS, json=_request(dataset["id"]), headers=tenant.headers)
        assert started.status_code == 200, started.text
        body = started.json()
        assert set(body) == {"@id", "xdm:imsOrgId", "ode:createDate", "ode:status"}
        assert (body["xdm:imsOrgId"], body["ode:status"]) == (tenant.org, "QUEUED")
        assert isinstance(body["ode:createDate"], int)
        done = await _until_finished(client, tenant, body["@id"])
        # The job's decisions are counted in the reports (before any online decision: these
        # are the job's alone); its decision events are its rows, not copied into the
        # decision events of the API.
        events = await client.get(
            "/data/core/ods/decision-events", params={"limit": 100}, headers=tenant.headers
        )
        assert events.status_code == 200, events.text
        recorded = {event["xdm:propositionId"] for event in events.json()["results"]}
        report = await client.get(
            "/data/core/ods/reports", params={"groupBy": "offer"}, headers=tenant.headers
        )
        assert report.status_code == 200, report.text
        reported = {row["offerId"]: row["decisions"] for row in report.json()["results"]}
        # The online answers for the same profiles, to compare with.
        online = {}
        for email in ("ann@example.com", "bob@example.com"):
            answer = await client.post(
                "/data/core/ods/decisions",
                json=decision_request([("dec", "P")], identity=email),
                headers=tenant.headers,
            )
            assert answer.status_code == 200, answer.text
            online[email] = answer.json()["xdm:propositions"][0]["xdm:options"][0]["xdm:id"]
    assert done["ode:status"] == "COMPLETED", done
    assert done["seen"][-1] == "COMPLETED"
    assert "ERROR" not in done["seen"]
    detail = done["ode:statusDetail"]
    # Ann (realized) and Bob (existing) are members; Cid exited; Dan never joined.
    assert (detail["profiles"], detail["rowsWritten"], detail["failed"]) == (2, 2, 0)
    directory = Path(dataset["path"]) / body["@id"]
    assert detail["path"] == str(directory)
    files = sorted(directory.glob("part-*.parquet"))
    assert files
    table = pq.read_table(directory)
    # the columns `offerbase batch decide` writes: the job runs the same pipeline
    assert table.schema.names == batch_schema(True).names
    rows = table.to_pylist()
    chosen = {row["identity_id"]: row["option_id"] for row in rows}
    assert chosen == {"ann@example.com": "gold-offer", "bob@example.com": "plain-offer"}
    assert chosen == online
    assert recorded == set()
    assert reported == {"gold-offer": 1, "plain-offer": 1}
    for row in rows:
        assert row["identity_namespace"] == "email"
        assert row["workload_id"] == body["@id"]
        assert (row["activity_id"], row["placement_id"], row["rank"]) == ("dec", "P", 1)
        assert row["is_fallback"] is False
        assert row["option_etag"] >= 1
        assert row["content"] is not None
        assert row["format"] is not None
    # Nothing is left in staging.
    assert not any((Path(dataset["path"]) / ".staging").glob("*"))


async def test_queued_until_a_runner_runs_it(client, tenant: Tenant) -> None:
    # The shared app runs no lifespan, so no runner: the workload stays QUEUED, readable.
    await _catalog(client, tenant)
    dataset = await _dataset(client, tenant)
    started = await client.post(DECISIONS, json=_request(dataset["id"]), headers=tenant.headers)
    assert started.status_code == 200, started.text
    workload_id = started.json()["@id"]
    assert started.headers["location"] == f"{DECISIONS}/{workload_id}"
    read = await client.get(f"{DECISIONS}/{workload_id}", headers=tenant.headers)
    assert (read.status_code, read.json()) == (200, started.json())


async def test_another_tenant_reads_neither_the_workload_nor_the_dataset(
    client, tenant: Tenant, other_tenant
) -> None:
    await _catalog(client, tenant)
    dataset = await _dataset(client, tenant)
    started = await client.post(DECISIONS, json=_request(dataset["id"]), headers=tenant.headers)
    workload_id = started.json()["@id"]
    other = await other_tenant()
    for who in (other, tenant.in_sandbox("dev")):
        assert (
            await client.get(f"{DECISIONS}/{workload_id}", headers=who.headers)
        ).status_code == 404
        assert (
            await client.get(f"{DATASETS}/{dataset['id']}", headers=who.headers)
        ).status_code == 404
        assert (await client.get(DATASETS, headers=who.headers)).json()["count"] == 0
        # Nor write into it: another tenant's dataset id is an unknown one.
        if who is other:
            await _catalog(client, who)
        refused = await client.post(DECISIONS, json=_request(dataset["id"]), headers=who.headers)
        assert refused.status_code == 404, refused.text
    mine = await client.get(f"{DATASETS}/{dataset['id']}", headers=tenant.headers)
    assert (mine.status_code, mine.json()) == (200, dataset)
    listed = await client.get(DATASETS, headers=tenant.headers)
    assert listed.json() == {"results": [dataset], "count": 1}


@pytest.mark.parametrize(
    ("change", "status", "pointer"),
    [
        (lambda b: b.pop("xdm:segmentIds"), 400, "/xdm:segmentIds"),
        (lambda b: b.update({"xdm:segmentIds": []}), 400, "/xdm:segmentIds"),
        (lambda b: b.update({"xdm:segmentIds": ["a", "b"]}), 400, "/xdm:segmentIds"),
        (lambda b: b.update({"xdm:segmentIds": [7]}), 400, "/xdm:segmentIds/0"),
        (lambda b: b.pop("xdm:dataSetId"), 400, "/xdm:dataSetId"),
        (lambda b: b.update({"xdm:dataSetId": "no-such-dataset"}), 404, "/xdm:dataSetId"),
        (lambda b: b.pop("xdm:propositionRequests"), 400, "/xdm:propositionRequests"),
        (lambda b: b.update({"xdm:propositionRequests": []}), 400, "/xdm:propositionRequests"),
        (
            lambda b: b["xdm:propositionRequests"][0].update({"xdm:itemCount": 31}),
            400,
            "/xdm:propositionRequests/0/xdm:itemCount",
        ),
        (
            lambda b: b["xdm:propositionRequests"][0].update({"xdm:itemCount": 0}),
            400,
            "/xdm:propositionRequests/0/xdm:itemCount",
        ),
        (
            lambda b: b["xdm:propositionRequests"][0].pop("xdm:placementId"),
            400,
            "/xdm:propositionRequests/0/xdm:placementId",
        ),
        (
            lambda b: b["xdm:propositionRequests"][0].update({"xdm:activityId": "missing"}),
            404,
            "/xdm:propositionRequests/0/xdm:activityId",
        ),
        (lambda b: b.update({"xdm:includeContent": "yes"}), 400, "/xdm:includeContent"),
    ],
)
async def test_bad_input_names_the_field(
    client, tenant: Tenant, change: Any, status: int, pointer: str
) -> None:
    await _catalog(client, tenant)
    dataset = await _dataset(client, tenant)
    body = _request(dataset["id"])
    change(body)
    response = await client.post(DECISIONS, json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


async def test_unknown_workload_and_dataset_are_404(client, tenant: Tenant) -> None:
    for path in (
        f"{DECISIONS}/47efef25-4bcf-404f-96e2-67c4f784a1f5",
        f"{DECISIONS}/not-a-uuid",
        f"{DATASETS}/6196b4a1a63bd118dafe093c",
    ):
        response = await client.get(path, headers=tenant.headers)
        assert response.status_code == 404, path
    refused = await client.post(DATASETS, json={"path": "/etc"}, headers=tenant.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/path"


async def test_at_most_five_run_per_dataset(database: Database, tmp_path: Path) -> None:
    """The claim itself, as several runners would race for it: a dataset with 5 running
    workloads starts no 6th until one finishes; another dataset is not held up."""
    async with database.write() as conn:
        sandbox = await tenants.ensure_sandbox(conn, "LIMIT@AdobeOrg", "prod")
        full = await datasets.create_dataset(conn, sandbox, data_dir=tmp_path)
        other = await datasets.create_dataset(conn, sandbox, data_dir=tmp_path)
        queued = [
            await workloads.create_workload(conn, sandbox, full, {"n": i}, 1000 + i)
            for i in range(7)
        ]
        later = await workloads.create_workload(conn, sandbox, other, {"n": 9}, 2000)
    claimed = []
    for runner in ("r1", "r2", "r1", "r2", "r1", "r2"):
        async with database.write() as conn:
            found = await workloads.claim_next(conn, runner, 100)
        if found is not None:
            claimed.append(found.workload.id)
    # The 5 oldest of the full dataset, then the other dataset's (not its 6th).
    assert claimed == [w.id for w in queued[:5]] + [later.id]
    async with database.read() as conn:
        sixth = await workloads.get_workload(conn, sandbox, queued[5].id)
    assert sixth is not None
    assert sixth.status == "QUEUED"
    async with database.write() as conn:
        # Only the owner moves a workload on.
        assert not await workloads.advance(conn, queued[0].id, "r2", "COMPLETED", {}, 101)
        assert await workloads.advance(conn, queued[0].id, "r1", "COMPLETED", {}, 101)
        found = await workloads.claim_next(conn, "r2", 102)
    assert found is not None
    assert found.workload.id == queued[5].id
    # A runner that stops renewing its lease loses its workloads: failed, never left running.
    async with database.write() as conn:
        assert await workloads.heartbeat(conn, "r2", [queued[5].id, later.id], 200) == 2
        assert await workloads.fail_abandoned(conn, 120, 30) == []  # every lease still runs
        failed = await workloads.fail_abandoned(conn, 229, 30)  # r1's lapsed at 130, r2's run
    assert {workload_id for workload_id, _ in failed} == {w.id for w in queued[1:5]}
    async with database.read() as conn:
        lost = await workloads.get_workload(conn, sandbox, queued[1].id)
    assert lost is not None
    assert lost.status == "ERROR"
    assert lost.status_detail["errors"][0]["code"] == "runner-lost"


async def _token(client, tenant: Tenant) -> Tenant:  # type: ignore[no-untyped-def]
    """The tenant with a token of this app (another app may sign with another key)."""
    import dataclasses

    response = await client.post(
        "/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    return dataclasses.replace(tenant, token=response.json()["access_token"])


async def test_an_audience_no_profile_has_completes_with_one_empty_file(make_app) -> None:
    from conftest import make_tenant

    app = make_app(batch_poll_seconds=0.1)
    async with _running(app) as client:
        tenant = await make_tenant(app, client)
        await _catalog(client, tenant)
        await _profiles(client, tenant)
        dataset = await _dataset(client, tenant)
        body = {**_request(dataset["id"]), "xdm:segmentIds": ["no-such-audience"]}
        started = await client.post(DECISIONS, json=body, headers=tenant.headers)
        assert started.status_code == 200, started.text
        done = await _until_finished(client, tenant, started.json()["@id"])
    assert done["ode:status"] == "COMPLETED", done
    detail = done["ode:statusDetail"]
    assert (detail["profiles"], detail["rowsWritten"], detail["files"]) == (0, 0, 1)
    table = pq.read_table(Path(detail["path"]))
    assert (table.num_rows, "option_id" in table.column_names) == (0, True)


async def test_a_decision_gone_before_the_job_runs_is_an_error_and_nothing_is_published(
    make_app,
) -> None:
    """Accepted while the decision existed, removed before a runner took the job: ERROR with
    `ode:statusDetail.errors` naming the activity, no workload directory, nothing in staging."""
    from decisioning_catalog import DPS

    from conftest import make_tenant

    queueing = make_app(batch_runners=0)  # no runner: the job stays QUEUED
    async with _running(queueing) as client:
        tenant = await make_tenant(queueing, client)
        await _catalog(client, tenant)
        await _profiles(client, tenant)
        dataset = await _dataset(client, tenant)
        started = await client.post(DECISIONS, json=_request(dataset["id"]), headers=tenant.headers)
        assert started.status_code == 200, started.text
        gone = await client.delete(f"{DPS}/offer-decisions/dec", headers=tenant.headers)
        assert gone.status_code < 300, gone.text
    running = make_app(batch_poll_seconds=0.1)
    async with _running(running) as client:
        tenant = await _token(client, tenant)
        done = await _until_finished(client, tenant, started.json()["@id"])
    assert done["ode:status"] == "ERROR", done
    assert done["seen"][-1] == "ERROR"
    [error] = done["ode:statusDetail"]["errors"]
    assert error["code"] == "invalid"
    assert "'dec'" in error["message"]
    assert not (Path(dataset["path"]) / started.json()["@id"]).exists()
    assert not any((Path(dataset["path"]) / ".staging").glob("*"))


async def test_a_dataset_directory_that_cannot_be_written_is_an_error_naming_it(
    make_app,
) -> None:
    import shutil

    from conftest import make_tenant

    app = make_app(batch_poll_seconds=0.1)
    async with _running(app) as client:
        tenant = await make_tenant(app, client)
        await _catalog(client, tenant)
        await _profiles(client, tenant)
        dataset = await _dataset(client, tenant)
        where = Path(dataset["path"])
        shutil.rmtree(where, ignore_errors=True)
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text("not a directory")  # the job's staging directory cannot be made
        started = await client.post(DECISIONS, json=_request(dataset["id"]), headers=tenant.headers)
        assert started.status_code == 200, started.text
        done = await _until_finished(client, tenant, started.json()["@id"])
    assert done["ode:status"] == "ERROR", done
    [error] = done["ode:statusDetail"]["errors"]
    assert error["code"] == "storage"
    assert str(where) in error["message"]
    assert where.read_text() == "not a directory"
