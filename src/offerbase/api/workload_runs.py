"""The job runner of batch decisioning: takes QUEUED workloads (store/workloads.py), runs each
in a worker process (api/workload_runner.py `execute`), publishes the result into its dataset.

One runner per server process (`offerbase serve --workers N` has N; any number of hosts may
share the database): a workload is claimed with one conditional UPDATE, so each runs once, and
at most MAX_RUNNING_PER_DATASET run per dataset whoever runs them. Status, as Adobe's:

* QUEUED -> PROCESSING: claimed; the audience is read from the profile store into a staging
  file, the catalog and the capping counters are read once, and the worker process decides.
* INGESTING: the decided rows are complete in the staging directory; they are being published
  into the dataset (a rename: `<dataset path>/<workload id>/part-*.parquet` appears whole).
* COMPLETED with `ode:statusDetail` (profiles, rowsWritten, fallbacks, failed rows and their
  first errors, seconds), or ERROR with `errors`: nothing of a failed job is published.

A runner renews the lease of its jobs (a heartbeat); a job whose lease ran out (the server was
killed) is failed by the next runner that looks, and its staging directory removed. A graceful
stop fails its running jobs at once. A job is never left PROCESSING.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from offerbase.api.batch_records import record_batch
from offerbase.api.workload_runner import JobFailed, JobSpec, Summary, execute, profile_key
from offerbase.catalog import load_catalog
from offerbase.config import Settings
from offerbase.engine import (
    DecisionError,
    DecisionRequest,
    ScopeRequest,
    build_snapshot,
    capping_keys,
)
from offerbase.pql.functions import in_segment
from offerbase.store import workloads
from offerbase.store.counters import CounterStore
from offerbase.store.datasets import Dataset
from offerbase.store.db import Database
from offerbase.store.library import Library
from offerbase.store.profiles import IMPORT_BATCH, profile_page

log = structlog.get_logger("offerbase.batch")


def _error(message: str, code: str = "failed") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message[:2000]}]}


class WorkloadRunner:
    def __init__(
        self,
        db: Database,
        counters: CounterStore,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.counters = counters
        self.slots = settings.batch_runners
        self.lease = settings.batch_lease_seconds
        self.poll = settings.batch_poll_seconds
        self.clock = clock
        self.name = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.running: dict[str, asyncio.Task[None]] = {}
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.slots == 0:
            return
        # spawn: a fork of a process running an event loop and threads is not safe.
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=self.slots, mp_context=context)
        self.tasks = [
            asyncio.create_task(self._claim_loop()),
            asyncio.create_task(self._heartbeat_loop()),
        ]

    def wake(self) -> None:
        """A workload was queued in this process: look now, not at the next poll."""
        self.wakeup.set()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        jobs = list(self.running.items())
        for _, task in jobs:
            task.cancel()
        for task in [*self.tasks, *(task for _, task in jobs)]:
            with contextlib.suppress(BaseException):
                await task
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # -- loops -----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            try:
                await self._fail_abandoned()
                while len(self.running) < self.slots:
                    async with self.db.write() as conn:
                        claimed = await workloads.claim_next(conn, self.name, int(time.time()))
                    if claimed is None:
                        break
                    job_id = claimed.workload.id
                    self.running[job_id] = asyncio.create_task(self._run(claimed))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again at the next poll
                log.warning("batch runner cannot claim", error=str(exc)[:200])
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), self.poll)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(Exception):
                async with self.db.write() as conn:
                    await workloads.heartbeat(conn, self.name, list(self.running), int(time.time()))

    async def _fail_abandoned(self) -> None:
        async with self.db.write() as conn:
            failed = await workloads.fail_abandoned(conn, int(time.time()), self.lease)
        for workload_id, dataset in failed:
            log.warning("batch workload failed: its runner is gone", workload=workload_id)
            shutil.rmtree(dataset.staging_dir(workload_id), ignore_errors=True)

    # -- one job ---------------------------------------------------------------------------

    async def _advance(self, workload_id: str, status: str, detail: dict[str, Any]) -> bool:
        async with self.db.write() as conn:
            return await workloads.advance(
                conn, workload_id, self.name, status, detail, int(time.time())
            )

    async def _run(self, claimed: workloads.Claimed) -> None:
        workload, dataset = claimed.workload, claimed.dataset
        staging = dataset.staging_dir(workload.id)
        try:
            summary = await self._decide(claimed, staging)
            await self._advance(workload.id, workloads.INGESTING, {"profiles": summary.profiles})
            # Recorded before the rows are published: a job that fails here publishes nothing.
            await record_batch(
                self.db, self.counters, workload.sandbox, summary.consumption, summary.tally
            )
            target = dataset.workload_dir(workload.id)
            await asyncio.to_thread(os.rename, staging / "result", target)
            detail = {**summary.as_detail(), "path": str(target)}
            await self._advance(workload.id, workloads.COMPLETED, detail)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                message = "The server stopped while the workload ran; nothing was published."
                await asyncio.shield(
                    self._advance(workload.id, workloads.ERROR, _error(message, "stopped"))
                )
            raise
        except (JobFailed, DecisionError) as exc:
            await self._advance(workload.id, workloads.ERROR, _error(str(exc), "invalid"))
        except OSError as exc:  # the dataset's directory: gone, not a directory, full, ...
            message = f"The dataset's directory cannot be written: {exc}"  # names the path
            await self._advance(workload.id, workloads.ERROR, _error(message, "storage"))
        except Exception as exc:
            log.error("batch workload failed", workload=workload.id, error=repr(exc)[:300])
            with contextlib.suppress(Exception):
                await self._advance(workload.id, workloads.ERROR, _error(f"{exc!r}"))
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
            self.running.pop(workload.id, None)
            self.wakeup.set()  # a slot and a dataset place are free

    async def _decide(self, claimed: workloads.Claimed, staging: Path) -> Summary:
        """Read what the job needs (catalog, audience, counters) once, then decide in a
        worker process."""
        workload = claimed.workload
        request = workload.request
        now = self.clock()
        async with self.db.read() as conn:
            version, bodies = await Library(conn, workload.sandbox).current_bodies()
        snapshot = await asyncio.to_thread(
            lambda: build_snapshot(load_catalog(bodies), version=version)
        )
        scopes = [
            (str(s["activityId"]), str(s["placementId"]), s.get("itemCount"))
            for s in request["propositionRequests"]
        ]
        engine_scopes = [ScopeRequest(a, p, n) for a, p, n in scopes]
        await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
        input_path = staging / "audience.ndjson"
        counters = await self._write_audience(
            claimed, str(request["segmentId"]), input_path, snapshot, engine_scopes, now
        )
        spec = JobSpec(
            workload_id=workload.id,
            catalog=bodies,
            catalog_version=version,
            scopes=scopes,
            include_content=bool(request.get("includeContent", False)),
            now=now,
            seed=int(request.get("seed", secrets.randbits(63))),
            counters=counters,
            input_path=str(input_path),
            output_dir=str(staging / "result"),
        )
        assert self.pool is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, execute, spec)

    async def _write_audience(
        self,
        claimed: workloads.Claimed,
        segment_id: str,
        path: Path,
        snapshot: Any,
        scopes: list[ScopeRequest],
        now: datetime,
    ) -> dict[str, int]:
        """The audience's profiles (realized or existing membership of `segment_id`, as PQL's
        inSegment) into an NDJSON file, page by page; the capping counters their decisions
        may read, fetched once per page: the counters as they are at job start."""
        sandbox = claimed.workload.sandbox
        counters: dict[str, int] = {}
        fetched: set[str] = set()
        after = 0
        with open(path, "wb") as handle:
            while True:
                async with self.db.read() as conn:
                    page = await profile_page(conn, sandbox, after, IMPORT_BATCH)
                if not page:
                    break
                after = page[-1][0]
                keys: set[str] = set()
                for _pk, body in page:
                    if not in_segment(body, segment_id):
                        continue
                    handle.write(orjson.dumps(body) + b"\n")
                    request = DecisionRequest(scopes=scopes, profile_key=profile_key(body))
                    keys.update(capping_keys(snapshot, request, now))
                keys.difference_update(fetched)
                fetched.update(keys)
                if keys:
                    counters.update(await self.counters.get_many(sandbox.pk, sorted(keys)))
        return counters


def dataset_files(dataset: Dataset, workload_id: str) -> list[Path]:
    """The published Parquet files of a workload (none while it runs or when it failed)."""
    directory = dataset.workload_dir(workload_id)
    return sorted(directory.glob("part-*.parquet")) if directory.is_dir() else []
