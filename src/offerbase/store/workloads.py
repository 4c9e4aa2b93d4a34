"""Batch decisioning workloads: the jobs of `POST /data/core/dwm/workloads/decisions`.

A workload is created QUEUED in the caller's sandbox and read back there (scoped through
store/scope.py). The runner (api/workload_runs.py) is deployment-wide, so its functions span
tenants (`across_tenants`), like the counters' housekeeping:

* `claim_next` takes the oldest QUEUED workload whose dataset has fewer than
  `MAX_RUNNING_PER_DATASET` running, with one conditional `UPDATE ... WHERE status = 'QUEUED'`:
  of several runners (workers, hosts) racing for one row exactly one gets it. The dataset's row
  is locked first (`FOR UPDATE` on PostgreSQL; SQLite's write transaction holds the database's
  one write lock), so two runners cannot both see 4 running and start a 6th.
* A running workload carries its runner and a heartbeat the runner renews; `fail_abandoned`
  fails the ones whose heartbeat is older than the lease: their runner is gone (a restart, a
  crash), and a job is never left PROCESSING.
* `advance` moves a workload on only while its runner still owns it: a runner that lost its
  lease cannot overwrite the ERROR another runner wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.clock import now_iso
from offerbase.store.datasets import Dataset
from offerbase.store.scope import Scope, across_tenants
from offerbase.store.tables import datasets, sandboxes, workloads
from offerbase.store.tenants import Sandbox

QUEUED = "QUEUED"
PROCESSING = "PROCESSING"
INGESTING = "INGESTING"
COMPLETED = "COMPLETED"
ERROR = "ERROR"
RUNNING = (PROCESSING, INGESTING)
FINISHED = (COMPLETED, ERROR)
# Adobe: "at most 5 jobs run at once per output dataset; further jobs with the same dataset are
# queued and start when a previous one finishes".
MAX_RUNNING_PER_DATASET = 5
# QUEUED rows a claim looks at per call: the oldest first; a dataset at its limit is skipped.
CLAIM_CANDIDATES = 50
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def valid_id(workload_id: str) -> bool:
    try:
        return str(uuid.UUID(workload_id)) == workload_id
    except ValueError:
        return False


@dataclass(frozen=True)
class Workload:
    id: str
    sandbox: Sandbox
    dataset_id: str
    status: str
    request: Mapping[str, Any] = field(hash=False)
    status_detail: Mapping[str, Any] = field(hash=False)
    created_ms: int

    def shown(self) -> dict[str, Any]:
        """Adobe's shape; `ode:statusDetail` once there is something to say."""
        shown: dict[str, Any] = {
            "@id": self.id,
            "xdm:imsOrgId": self.sandbox.org_id,
            "ode:createDate": self.created_ms,
            "ode:status": self.status,
        }
        if self.status_detail:
            shown["ode:statusDetail"] = dict(self.status_detail)
        return shown


@dataclass(frozen=True)
class Claimed:
    """A workload a runner now owns, with the dataset it writes to."""

    workload: Workload
    dataset: Dataset


_COLUMNS = [
    workloads.c.id,
    workloads.c.dataset_id,
    workloads.c.status,
    workloads.c.request,
    workloads.c.status_detail,
    workloads.c.created_ms,
]


def _workload(row: Any, sandbox: Sandbox) -> Workload:
    return Workload(
        row.id,
        sandbox,
        row.dataset_id,
        row.status,
        dict(row.request),
        dict(row.status_detail),
        int(row.created_ms),
    )


async def create_workload(
    conn: AsyncConnection,
    sandbox: Sandbox,
    dataset: Dataset,
    request: Mapping[str, Any],
    created_ms: int,
) -> Workload:
    """A new QUEUED workload of `sandbox` writing to `dataset` (the caller found it in the
    same sandbox); `request` is the validated request, as the runner will read it."""
    workload_id = str(uuid.uuid4())
    insert = workloads.insert().values(
        id=workload_id,
        dataset_id=dataset.id,
        status=QUEUED,
        request=dict(request),
        status_detail={},
        created_ms=created_ms,
        updated=now_iso(),
    )
    await conn.execute(Scope.of(sandbox).apply(insert))
    return Workload(workload_id, sandbox, dataset.id, QUEUED, dict(request), {}, created_ms)


async def get_workload(
    conn: AsyncConnection, sandbox: Sandbox, workload_id: str
) -> Workload | None:
    """The sandbox's workload with this id; None when it has none (another tenant's is None)."""
    if not valid_id(workload_id):
        return None
    query = sa.select(*_COLUMNS).where(workloads.c.id == workload_id)
    row = (await conn.execute(Scope.of(sandbox).apply(query))).first()
    return None if row is None else _workload(row, sandbox)


# -- the runner's side: deployment-wide -----------------------------------------------------

_WITH_TENANT = workloads.join(sandboxes, sandboxes.c.pk == workloads.c.sandbox_pk).join(
    datasets, datasets.c.id == workloads.c.dataset_id
)


async def claim_next(conn: AsyncConnection, runner: str, now_s: int) -> Claimed | None:
    """Take the oldest QUEUED workload whose dataset has room (fewer than
    MAX_RUNNING_PER_DATASET running): it becomes PROCESSING, owned by `runner`. None when
    nothing can start. Run it in a write transaction (Database.write)."""
    candidates = (
        sa.select(
            *_COLUMNS,
            sandboxes.c.pk,
            sandboxes.c.org_id,
            sandboxes.c.name.label("sandbox_name"),
            sandboxes.c.sandbox_id,
            sandboxes.c.container_id,
            datasets.c.name.label("dataset_name"),
            datasets.c.path,
            datasets.c.created.label("dataset_created"),
        )
        .select_from(_WITH_TENANT)
        .where(workloads.c.status == QUEUED)
        .order_by(workloads.c.created_ms, workloads.c.id)
        .limit(CLAIM_CANDIDATES)
    )
    full: set[str] = set()
    for row in (await conn.execute(across_tenants(candidates))).all():
        if row.dataset_id in full:
            continue
        lock = sa.select(datasets.c.id).where(datasets.c.id == row.dataset_id).with_for_update()
        await conn.execute(across_tenants(lock))
        running = (
            sa.select(sa.func.count())
            .select_from(workloads)
            .where(workloads.c.dataset_id == row.dataset_id, workloads.c.status.in_(RUNNING))
        )
        if int(await conn.scalar(across_tenants(running)) or 0) >= MAX_RUNNING_PER_DATASET:
            full.add(row.dataset_id)
            continue
        detail = {"runner": runner}
        claim = (
            workloads.update()
            .where(workloads.c.id == row.id, workloads.c.status == QUEUED)
            .values(
                status=PROCESSING,
                runner=runner,
                heartbeat=now_s,
                status_detail=detail,
                updated=now_iso(),
            )
        )
        if (await conn.execute(across_tenants(claim))).rowcount != 1:
            continue  # another runner took it meanwhile
        sandbox = Sandbox(row.pk, row.org_id, row.sandbox_name, row.sandbox_id, row.container_id)
        workload = Workload(
            row.id, sandbox, row.dataset_id, PROCESSING, dict(row.request), detail, row.created_ms
        )
        dataset = Dataset(row.dataset_id, sandbox, row.dataset_name, row.path, row.dataset_created)
        return Claimed(workload, dataset)
    return None


async def heartbeat(conn: AsyncConnection, runner: str, workload_ids: list[str], now_s: int) -> int:
    """Renew the lease of `runner`'s running workloads; how many it still owns."""
    if not workload_ids:
        return 0
    renew = (
        workloads.update()
        .where(
            workloads.c.id.in_(workload_ids),
            workloads.c.runner == runner,
            workloads.c.status.in_(RUNNING),
        )
        .values(heartbeat=now_s)
    )
    return int((await conn.execute(across_tenants(renew))).rowcount)


async def advance(
    conn: AsyncConnection,
    workload_id: str,
    runner: str,
    status: str,
    detail: Mapping[str, Any],
    now_s: int,
) -> bool:
    """Move `runner`'s running workload to `status` with `detail`; False when the runner no
    longer owns it (its lease ran out and another runner failed it)."""
    update = (
        workloads.update()
        .where(
            workloads.c.id == workload_id,
            workloads.c.runner == runner,
            workloads.c.status.in_(RUNNING),
        )
        .values(status=status, status_detail=dict(detail), heartbeat=now_s, updated=now_iso())
    )
    return bool((await conn.execute(across_tenants(update))).rowcount)


async def fail_abandoned(
    conn: AsyncConnection, now_s: int, lease_s: int
) -> list[tuple[str, Dataset]]:
    """Fail every running workload whose heartbeat is older than `lease_s`: its runner is gone.
    Returns them with their datasets, so that the caller removes what they left unpublished."""
    cutoff = now_s - lease_s
    stale = (
        sa.select(
            workloads.c.id,
            workloads.c.status,
            sandboxes.c.pk,
            sandboxes.c.org_id,
            sandboxes.c.name.label("sandbox_name"),
            sandboxes.c.sandbox_id,
            sandboxes.c.container_id,
            datasets.c.id.label("dataset_id"),
            datasets.c.name.label("dataset_name"),
            datasets.c.path,
            datasets.c.created.label("dataset_created"),
        )
        .select_from(_WITH_TENANT)
        .where(workloads.c.status.in_(RUNNING), workloads.c.heartbeat < cutoff)
        .limit(CLAIM_CANDIDATES)
    )
    failed: list[tuple[str, Dataset]] = []
    for row in (await conn.execute(across_tenants(stale))).all():
        detail = {
            "errors": [
                {
                    "code": "runner-lost",
                    "message": f"The server running this workload stopped (restarted or "
                    f"crashed) while it was {row.status}; nothing was published. Submit it "
                    "again.",
                }
            ]
        }
        fail = (
            workloads.update()
            .where(
                workloads.c.id == row.id,
                workloads.c.status.in_(RUNNING),
                workloads.c.heartbeat < cutoff,
            )
            .values(status=ERROR, status_detail=detail, updated=now_iso())
        )
        if (await conn.execute(across_tenants(fail))).rowcount == 1:
            sandbox = Sandbox(
                row.pk, row.org_id, row.sandbox_name, row.sandbox_id, row.container_id
            )
            dataset = Dataset(
                row.dataset_id, sandbox, row.dataset_name, row.path, row.dataset_created
            )
            failed.append((row.id, dataset))
    return failed
