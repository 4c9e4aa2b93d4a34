"""One batch decisioning workload, executed: every profile of an input file decided through the
engine, the rows written as Parquet. The job runner (api/workload_runs.py) calls `execute` in a
worker process, off the event loop.

This is the interface the batch pipeline plugs into: `execute(spec) -> Summary` is meant to
become a call of `offerbase.batch.run.run_batch` (vectorised eligibility, row groups, several
processes). Until then it decides each profile with the engine's own `decide()`, one after the
other: the same answers as the Decisioning API, just not fast.

Inputs are plain, picklable values (the catalog's stored bodies, the counters read at job
start, a seed), so a worker process rebuilds the snapshot itself and the result depends on
nothing else. Capping: the counters are read once at job start (Adobe: "frozen for the duration
of a snapshot"); within the job every proposal counts against them, in input order, so a
global cap is honoured across the whole job.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from offerbase.api.decision_response import deliverable_component
from offerbase.catalog import load_catalog
from offerbase.engine import DecisionError, DecisionRequest, ScopeRequest, build_snapshot, decide
from offerbase.store.profiles import request_identities

ROWS_PER_PART = 100_000  # rows of one Parquet file: a part's rows are held in memory
MAX_ERRORS = 20  # errors a summary lists (all are counted)

# The output columns (docs/batch.md, "Batch Decisioning API"): one row per profile x scope x
# rank; content, delivery_url, format and language only with includeContent.
BASE_SCHEMA = pa.schema(
    [
        ("decision_event_id", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("workload_id", pa.string()),
        ("identity_namespace", pa.string()),
        ("identity_id", pa.string()),
        ("proposition_id", pa.string()),
        ("activity_id", pa.string()),
        ("placement_id", pa.string()),
        ("rank", pa.int32()),
        ("option_id", pa.string()),
        ("option_etag", pa.int64()),
        ("score", pa.float64()),
        ("is_fallback", pa.bool_()),
    ]
)
CONTENT_FIELDS = [
    ("content", pa.string()),
    ("delivery_url", pa.string()),
    ("format", pa.string()),
    ("language", pa.string()),
]


def output_schema(include_content: bool) -> pa.Schema:
    if not include_content:
        return BASE_SCHEMA
    schema = BASE_SCHEMA
    for name, kind in CONTENT_FIELDS:
        schema = schema.append(pa.field(name, kind))
    return schema


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

    def fail(self, line: int, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "message": message})

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


def read_profiles(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed body) of every non-blank line; a malformed line is (n, None)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield number, None


def _component_fields(representation: Mapping[str, Any] | None, placement: Any) -> list[Any]:
    component = deliverable_component(representation, placement) or {}
    return [
        component.get("content") if isinstance(component.get("content"), str) else None,
        component.get("deliveryURL"),
        component.get("format"),
        component.get("language"),
    ]


class _PartWriter:
    """Rows gathered column-wise and flushed as numbered Parquet files."""

    def __init__(self, directory: Path, schema: pa.Schema) -> None:
        self.directory = directory
        self.schema = schema
        self.columns: list[list[Any]] = [[] for _ in schema]
        self.files = 0

    def add(self, row: Sequence[Any]) -> None:
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        if len(self.columns[0]) >= ROWS_PER_PART:
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        if not self.columns[0] and not (final and self.files == 0):
            return  # an empty job still writes one (empty) file: the schema is readable
        table = pa.table(
            [pa.array(c, type=f.type) for c, f in zip(self.columns, self.schema, strict=True)],
            schema=self.schema,
        )
        pq.write_table(table, self.directory / f"part-{self.files:05d}.parquet")
        self.files += 1
        self.columns = [[] for _ in self.schema]


def execute(spec: JobSpec) -> Summary:
    """Decide every profile of `spec.input_path` and publish the rows into `spec.output_dir`.
    Raises JobFailed when the job cannot run; then nothing exists at `output_dir`."""
    started = time.perf_counter()
    snapshot = build_snapshot(load_catalog(spec.catalog), version=spec.catalog_version)
    scopes = [ScopeRequest(a, p, n) for a, p, n in spec.scopes]
    rng = random.Random(spec.seed)
    counters = dict(spec.counters)
    output = Path(spec.output_dir)
    temporary = output.with_name(f"{output.name}.tmp-{uuid.uuid4().hex[:8]}")
    temporary.mkdir(parents=True)
    summary = Summary()
    timestamp = spec.now
    try:
        writer = _PartWriter(temporary, output_schema(spec.include_content))
        for line, body in read_profiles(spec.input_path):
            if not isinstance(body, dict):
                summary.fail(line, "The line is not a JSON object (a profile).")
                continue
            identity = profile_identity(body)
            if identity is None:
                summary.fail(line, "The profile's identityMap holds no identity.")
                continue
            request = DecisionRequest(scopes=scopes, profile_key=f"{identity[0]}:{identity[1]}")
            try:
                # ranking=None: batch ranks by a strategy's prior alone, as batch/ does
                result = decide(
                    snapshot, request, body, counters, now=spec.now, rng=rng, ranking=None
                )
            except DecisionError as exc:
                raise JobFailed(f"{exc.pointer or ''} {exc.detail}".strip()) from exc
            for consumed in result.consumption:  # later profiles see these proposals
                counters[consumed.key] = counters.get(consumed.key, 0) + 1
            summary.profiles += 1
            event_id, proposition_id = str(uuid.uuid4()), str(uuid.uuid4())
            for scope in result.scopes:
                head = [
                    event_id,
                    timestamp,
                    spec.workload_id,
                    identity[0],
                    identity[1],
                    proposition_id,
                    scope.activity.id,
                    scope.placement.id,
                ]
                chosen: list[Any] = list(scope.options)
                if not chosen and scope.fallback is not None:
                    chosen = [scope.fallback]
                    summary.fallbacks += 1
                for rank, option in enumerate(chosen, start=1):
                    fallback = option is scope.fallback
                    score = None if fallback else option.score
                    row = [*head, rank, option.id, option.etag, score, fallback]
                    if spec.include_content:
                        row += _component_fields(option.representation, scope.placement)
                    writer.add(row)
                    summary.rows += 1
        writer.flush(final=True)
        summary.files = writer.files
        os.rename(temporary, output)  # atomic: the directory appears complete or not at all
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - started
    return summary
