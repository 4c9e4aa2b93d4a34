"""One batch decisioning workload, executed: the job runner (api/workload_runs.py) calls
`execute` in a worker process, off the event loop, and `execute` runs the same pipeline as
`offerbase batch decide`: `offerbase.batch.run.run_batch` (vectorised eligibility, the columnar
fast path, partitions streamed from the input, the output columns of
`offerbase.batch.partition.schema`). One path, so the HTTP Batch API and the command line give
the same rows for the same catalog, profiles, clock and seed.

Inputs are plain, picklable values (the catalog's stored bodies, the counters read at job
start, a seed), so a worker process rebuilds the snapshot itself and the result depends on
nothing else. Capping: the counters are read once at job start (Adobe: "frozen for the duration
of a snapshot"); within the job every proposal counts against them, in input order, so a
global cap is honoured across the whole job. The job's counter increments and what the reports
count of its decisions (`Summary.consumption`, `Summary.tally`) go back to the runner, which
stores them before it publishes the rows (api/batch_records.py, as the command line does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from offerbase.batch.partition import BatchInputError, BatchJob, schema
from offerbase.batch.run import BatchError, Tally, run_batch
from offerbase.engine import DecisionError, ScopeRequest
from offerbase.store.profiles import request_identities

MAX_ERRORS = 20  # errors a summary lists (all are counted)


@dataclass(frozen=True)
class JobSpec:
    workload_id: str
    catalog: Mapping[str, Sequence[Mapping[str, Any]]]  # kind -> stored bodies (id, etag)
    catalog_version: int
    scopes: Sequence[tuple[str, str, int | None]]  # activity id, placement id, itemCount
    include_content: bool
    now: datetime
    seed: int
    counters: Mapping[str, int]  # the capping counters read at job start
    input_path: str  # NDJSON, one stored profile body per line
    output_dir: str  # must not exist: created complete (written aside, then renamed)


@dataclass
class Summary:
    profiles: int = 0
    rows: int = 0
    fallbacks: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    files: int = 0
    # For the runner to record (not in the status detail): the job's counter increments and
    # what the reports count of its decisions.
    consumption: dict[str, int] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)

    def as_detail(self) -> dict[str, Any]:
        return {
            "profiles": self.profiles,
            "rowsWritten": self.rows,
            "fallbacks": self.fallbacks,
            "failed": self.failed,
            "errors": self.errors,
            "files": self.files,
            "seconds": round(self.seconds, 3),
        }


class JobFailed(Exception):
    """The whole job cannot run (the decision is no longer live, ...): nothing is written."""


def profile_identity(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """The identity a batch row names and per-profile caps count on: the primary identity of
    the profile's identityMap, else its first (as `offerbase profiles import` files it)."""
    found = request_identities(body.get("identityMap"))
    return found[0] if found else None


def profile_key(body: Mapping[str, Any]) -> str | None:
    identity = profile_identity(body)
    return None if identity is None else f"{identity[0]}:{identity[1]}"


def execute(spec: JobSpec) -> Summary:
    """Decide every profile of `spec.input_path` and publish the rows into `spec.output_dir`
    (batch/run.py `run_batch`, in this process). Raises JobFailed when the job cannot run (a
    decision no longer live, a malformed row); then nothing exists at `output_dir`."""
    job = BatchJob(
        catalog=spec.catalog,
        catalog_version=spec.catalog_version,
        scopes=tuple(ScopeRequest(a, p, n) for a, p, n in spec.scopes),
        include_content=spec.include_content,
        now=spec.now,
        seed=spec.seed,
        counters=spec.counters,
        workload_id=spec.workload_id,
    )
    output = Path(spec.output_dir)
    try:
        done = run_batch(job, Path(spec.input_path), output)
    except DecisionError as exc:
        raise JobFailed(f"{exc.pointer or ''} {exc.detail}".strip()) from exc
    except (BatchInputError, BatchError) as exc:
        raise JobFailed(str(exc)) from exc
    parts = sorted(output.glob("part-*.parquet"))
    if not parts:  # an empty audience: one empty file, so the schema is readable
        pq.write_table(schema(spec.include_content).empty_table(), output / "part-00000.parquet")
        parts = [output / "part-00000.parquet"]
    return Summary(
        profiles=done.rows,
        rows=sum(pq.ParquetFile(part).metadata.num_rows for part in parts),
        fallbacks=done.fallbacks,
        files=len(parts),
        seconds=done.seconds,
        consumption=done.consumption,
        tally=done.tally,
    )
