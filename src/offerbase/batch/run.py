"""Running a batch job on files: stream the input, decide partitions (in this process or in
worker processes), arbitrate capping counters in input order, publish Parquet atomically.

Caps across the whole job (docs/batch.md, "Caps"): the answer must be the one a sequence of
online requests in input order would get. Workers decide a partition with the counters read at
job start plus the job's consumption as known when the partition was sent (never more than the
truth: counters only grow during a job). This process then walks the partition's rows in input
order with the true running counters:

* When every group of the scopes is ranked by priority alone (one criterion, no formula), a
  decision that consumed no counter that changed in between is exactly the sequential one: a
  counter that reached its limit only removes offers the row did not choose (an offer the walk
  reached and found eligible is chosen), and the RNG draws the same. So a row is accepted when
  its own consumption still fits under the true counters, and otherwise decided again here,
  with them.
* When a group scores its candidates (a formula, several criteria of one priority), removing
  an unchosen offer shifts the random tie-breaks, so a row is decided again whenever a counter
  it can read crossed a limit since its partition was sent.

Re-decided rows are few: a partition is sent with the counters known then, so only the
partitions in flight when a counter runs out see it late.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from offerbase.batch.partition import (
    BODY_COLUMN,
    ROW_COLUMN,
    BatchInputError,
    BatchJob,
    Consumption,
    Counts,
    PartitionStats,
    Profile,
    decide_partition,
    decide_profile,
    decide_rows,
    iso_ms,
    job_snapshot,
    read_profiles,
)
from offerbase.catalog import enums
from offerbase.engine import DecisionRequest, capping_keys
from offerbase.engine.capping import profile_part

ROWS_PER_PARTITION = 50_000  # rows per task: memory per worker stays in the tens of MB
MAX_LINE_BYTES = 1024 * 1024  # one NDJSON profile (the store takes 256 KiB)
ENGINES = ("local", "dask")  # dask: batch/distributed.py, the offerbase[dask] extra


class BatchError(Exception):
    """The job cannot run (unreadable input, an output directory in use); names the file."""


@dataclass
class Tally:
    """What the reports count of a job's decisions: what store/rollups.py `decision_rollup`
    counts of the decision events its rows are (the rows are the events: docs/batch.md,
    "Recording"), summed from the output tables. Per (activity, placement, offer): [decisions,
    fallbacks]; per (activity, placement): [propositions, answered by the fallback, by
    nothing]."""

    day: str = ""  # the decisions' UTC day (YYYY-MM-DD), the rollups' day
    offers: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    propositions: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, table: pa.Table) -> None:
        """Count an output table's rows (one per profile x scope x rank, partition.schema)."""
        rank = table.column("rank")
        keys = ["activity_id", "placement_id", "option_id", "is_fallback", "first"]
        grouped = (
            pa.table(
                {
                    **{name: table.column(name) for name in keys[:4]},
                    # the first row of a scope's answer: one per proposition
                    "first": pc.or_kleene(pc.is_null(rank), pc.equal(rank, 1)),
                }
            )
            .group_by(keys)
            .aggregate([("is_fallback", "count")])
        )
        for row in grouped.to_pylist():
            scope = (row["activity_id"], row["placement_id"])
            counts = self.propositions.setdefault(scope, [0, 0, 0])
            n = row["is_fallback_count"]
            if row["first"]:
                counts[0] += n
            if row["option_id"] is None:
                counts[2] += n
                continue
            sums = self.offers.setdefault((*scope, row["option_id"]), [0, 0])
            if row["is_fallback"]:
                counts[1] += n
                sums[1] += n
            else:
                sums[0] += n

    def merge(self, other: Tally) -> None:
        for key, sums in other.offers.items():
            mine = self.offers.setdefault(key, [0, 0])
            mine[0] += sums[0]
            mine[1] += sums[1]
        for scope, counts in other.propositions.items():
            got = self.propositions.setdefault(scope, [0, 0, 0])
            for i in range(3):
                got[i] += counts[i]


@dataclass
class Summary:
    rows: int = 0
    fallbacks: int = 0
    redecided: int = 0  # rows decided again by the cap arbitration
    seconds: float = 0.0
    record_seconds: float = 0.0  # of which storing the counters and report counts (`record`)
    output: str = ""
    # the job's own counter increments (added to the real counters unless dry run)
    consumption: dict[str, int] = field(default_factory=dict)
    # what the reports count of its decisions (added to the rollups unless dry run)
    tally: Tally = field(default_factory=Tally)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fallbacks": self.fallbacks,
            "redecided": self.redecided,
            "seconds": round(self.seconds, 3),
            "record_seconds": round(self.record_seconds, 3),
            "output": self.output,
        }


# Columns of unique values (one per row or profile): no dictionary page (it would only grow).
_UNIQUE_COLUMNS = ("decision_event_id", "proposition_id", "identity_id")


def write_part(table: pa.Table, where: Any) -> None:
    """One output part (a path or a binary file)."""
    pq.write_table(
        table, where, use_dictionary=[n for n in table.column_names if n not in _UNIQUE_COLUMNS]
    )


# -- input -----------------------------------------------------------------------------------


def _parquet(path: Path) -> Iterator[pa.Table]:
    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise BatchError(f"{path}: not a readable Parquet file ({exc})") from None
    first = 1
    try:
        for batch in handle.iter_batches(batch_size=ROWS_PER_PARTITION):
            table = pa.Table.from_batches([batch])
            rows = pa.array(range(first, first + table.num_rows), pa.int64())
            first += table.num_rows
            yield table.append_column(ROW_COLUMN, rows)
    except (OSError, pa.ArrowException) as exc:
        raise BatchError(f"{path}: cannot read row {first} onwards ({exc})") from None


def _ndjson(path: Path) -> Iterator[pa.Table]:
    rows: list[int] = []
    texts: list[bytes] = []
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(
                iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), 1
            ):
                if len(line) > MAX_LINE_BYTES:
                    raise BatchInputError(number, "", f"longer than {MAX_LINE_BYTES} bytes")
                if not line.strip():
                    continue
                rows.append(number)
                texts.append(line)
                if len(rows) >= ROWS_PER_PARTITION:
                    yield pa.table({ROW_COLUMN: rows, BODY_COLUMN: pa.array(texts, pa.binary())})
                    rows, texts = [], []
    except OSError as exc:
        raise BatchError(f"{path}: cannot read it ({exc})") from None
    if rows:
        yield pa.table({ROW_COLUMN: rows, BODY_COLUMN: pa.array(texts, pa.binary())})


def partitions(path: Path) -> Iterator[pa.Table]:
    """The input in partitions of at most ROWS_PER_PARTITION rows (bounded memory)."""
    if not path.is_file():
        raise BatchError(f"{path}: no such file")
    if path.suffix == ".parquet":
        return _parquet(path)
    if path.suffix in (".ndjson", ".jsonl"):
        return _ndjson(path)
    raise BatchError(f"{path}: the input must be .parquet or .ndjson")


# -- cap arbitration -------------------------------------------------------------------------


def _is_global(key: str) -> bool:
    return key.split("|", 4)[3] == "global"


class Arbiter:
    """The job's counters in input order (see the module docstring)."""

    def __init__(self, start: Mapping[str, int], scopes: int, order_sensitive: bool) -> None:
        self.start = start
        self.scopes = scopes
        self.order_sensitive = order_sensitive
        self.running: dict[str, int] = {}  # the job's consumption so far, per counter
        self.global_keys: set[str] = set()
        self.by_profile: dict[str, list[str]] = {}  # escaped profile key -> its counters
        self.limits: dict[str, int] = {}

    def global_view(self) -> dict[str, int]:
        """The job's consumption of global counters so far, for a partition being sent
        (per-profile counters go with it as read at job start)."""
        return {key: self.running[key] for key in self.global_keys}

    def fits(self, consumption: Consumption) -> bool:
        wanted: dict[str, int] = {}
        for key, _limit in consumption:
            wanted[key] = wanted.get(key, 0) + 1
        return all(
            self.start.get(key, 0) + self.running.get(key, 0) + n <= limit
            for (key, n), limit in zip(wanted.items(), _limits(consumption, wanted), strict=True)
        )

    def consume(self, consumption: Consumption) -> None:
        for key, limit in consumption:
            before = self.running.get(key, 0)
            self.running[key] = before + 1
            self.limits[key] = min(limit, self.limits.get(key, limit))
            fields = key.split("|", 5)
            if fields[3] == "global":
                self.global_keys.add(key)
            elif before == 0:
                self.by_profile.setdefault(fields[4], []).append(key)

    def _left(self, key: str, used: int) -> int:
        """Units left, clamped to what one decision can take (one per scope)."""
        return min(max(self.limits[key] - self.start.get(key, 0) - used, 0), self.scopes)

    def changed(self, view: Mapping[str, int], profile: str | None) -> bool:
        """Whether a counter a row can read has fewer units left now, as one decision sees
        it, than in what its partition was decided with (`view` for the global counters,
        the values read at job start for its profile's)."""
        for key in self.global_keys:
            if self._left(key, view.get(key, 0)) != self._left(key, self.running[key]):
                return True
        for key in self.by_profile.get(profile, ()) if profile is not None else ():
            if self._left(key, 0) != self._left(key, self.running[key]):
                return True
        return False


def _limits(consumption: Consumption, wanted: Mapping[str, int]) -> list[int]:
    smallest: dict[str, int] = {}
    for key, limit in consumption:
        smallest[key] = min(limit, smallest.get(key, limit))
    return [smallest[key] for key in wanted]


def order_sensitive(job: BatchJob) -> bool:
    """Whether a scope has a group that scores its candidates and counters to read (see the
    module docstring)."""
    snapshot = job_snapshot(job)
    for scope in job.scopes:
        decision = snapshot.decisions.get(scope.activity_id)
        placement = snapshot.placements.get(scope.placement_id)
        if decision is None or placement is None:
            continue
        plan = snapshot.plan(decision, placement)
        if not plan.cap_rules:
            continue
        for group in plan.groups:
            if len(group) > 1 or group[0].criterion.order == enums.ORDER_FORMULA:
                return True
    return False


def _arbitrate(
    job: BatchJob,
    arbiter: Arbiter,
    view: Mapping[str, int],
    source: pa.Table,
    output: pa.Table,
    stats: PartitionStats,
) -> tuple[pa.Table, int]:
    """The partition's final rows, in input order; and how many were re-decided.
    `view`: the job's global consumption the partition was decided with."""
    profiles: list[Profile] | None = None
    replaced: dict[int, tuple[pa.Table, PartitionStats]] = {}
    consuming = dict(stats.consuming)
    candidates: Sequence[int] = range(stats.rows) if arbiter.order_sensitive else list(consuming)
    for index in candidates:
        consumption = consuming.get(index, ())
        if arbiter.order_sensitive:
            if profiles is None:
                profiles = read_profiles(source)
            key = profiles[index].key
            escaped = None if key is None else profile_part(key).split("|", 1)[1]
            ok = not arbiter.changed(view, escaped)
        else:
            ok = arbiter.fits(consumption)
        if ok:
            arbiter.consume(consumption)
            continue
        if profiles is None:
            profiles = read_profiles(source)
        again = decide_rows(job, [profiles[index]], Counts(job.counters, arbiter.running))
        replaced[index] = again
        if again[1].consuming:
            arbiter.consume(again[1].consuming[0][1])
    if not replaced:
        return output, 0
    pieces: list[pa.Table] = []
    position = 0
    for index in sorted(replaced):
        table, _single = replaced[index]
        pieces.append(output.slice(position, stats.bounds[index] - position))
        pieces.append(table)
        position = stats.bounds[index + 1]
    pieces.append(output.slice(position))
    return pa.concat_tables(pieces), len(replaced)


# -- the job ---------------------------------------------------------------------------------


def counters_to_read(job: BatchJob) -> tuple[list[str], list[str]]:
    """What to read at job start (with `job.counters` still empty): the global counter keys
    the scopes can read, and the key prefixes of their per-profile counters (every profile's
    counters of one offer's cap: `cap|<offer>|<constraint>|profile|`)."""
    snapshot = job_snapshot(job)
    request = DecisionRequest(scopes=job.scopes)  # no profile: the global keys only
    prefixes: dict[str, None] = {}
    for scope in job.scopes:
        decision = snapshot.decisions.get(scope.activity_id)
        placement = snapshot.placements.get(scope.placement_id)
        if decision is None or placement is None:
            continue
        for rule, _entity in snapshot.plan(decision, placement).cap_rules:
            if rule.per_profile:
                prefixes[rule.prefix + "profile|"] = None
    return capping_keys(snapshot, request, job.now), list(prefixes)


# The job of a worker process, sent once when it starts (not with every partition).
_WORKER_JOB: BatchJob | None = None


def _install(job: BatchJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _decide_installed(
    table: pa.Table, running: Mapping[str, int]
) -> tuple[pa.Table, PartitionStats]:
    assert _WORKER_JOB is not None  # set by the pool's initializer
    return decide_partition(_WORKER_JOB, table, running)


def check_job(job: BatchJob) -> None:
    """Raise the engine's DecisionError when the scopes cannot be decided at all (an unknown
    activity, a decision that is not live...): before any row is read."""
    decide_profile(job, job_snapshot(job), Profile(0, {}, None, None, None), job.counters)


def _publish_dir(output_dir: Path) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise BatchError(f"{output_dir}: the output directory exists and is not empty")


def record_job(
    job: BatchJob,
    summary: Summary,
    arbiter: Arbiter,
    record: Callable[[Summary], None] | None,
) -> None:
    """Once every row is settled, before publishing: the job's consumption into `summary`, and
    the caller's `record` (the counters and the reports' counts; not for a dry run), timed."""
    summary.consumption = dict(arbiter.running)
    summary.tally.day = iso_ms(job.now)[:10]
    if record is not None and not job.dry_run:
        recording = time.monotonic()
        record(summary)
        summary.record_seconds = time.monotonic() - recording


def run_batch(
    job: BatchJob,
    input_path: Path,
    output_dir: Path,
    *,
    workers: int = 1,
    engine: str = "local",
    progress: Callable[[int], None] | None = None,
    record: Callable[[Summary], None] | None = None,
    scheduler: str | None = None,
) -> Summary:
    """Decide every profile of `input_path` and publish the Parquet parts in `output_dir`.

    `record(summary)` runs after every row is decided and before the output is published (not
    for a dry run): the caller adds `summary.consumption` to the real counters and
    `summary.tally` to the reports' rollups (the rows themselves are the job's decision events,
    in its output). A failure anywhere leaves no `output_dir` (or the empty one there was)."""
    if engine not in ENGINES:
        raise BatchError(f"unknown engine '{engine}': one of {', '.join(ENGINES)}")
    if engine == "dask":  # the same partitions and arbitration on a cluster (`scheduler`)
        from offerbase.batch.distributed import run_dask

        return run_dask(
            job, input_path, output_dir, workers=workers, scheduler=scheduler,
            progress=progress, record=record,
        )  # fmt: skip
    started = time.monotonic()
    output_dir = output_dir.absolute()
    _publish_dir(output_dir)
    check_job(job)
    work = output_dir.parent / f".{output_dir.name}.tmp-{uuid.uuid4().hex[:12]}"
    work.mkdir(parents=True)
    summary = Summary(output=str(output_dir))
    arbiter = Arbiter(job.counters, len(job.scopes), order_sensitive(job))
    # spawn, not fork: the caller may be a server with threads and open connections; each
    # worker gets the job once (the catalog, the counters read at start), then partitions.
    pool = (
        ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_install, initargs=(job,)
        )
        if workers > 1
        else None
    )
    try:
        in_flight: deque[
            tuple[pa.Table, dict[str, int], Future[Any] | tuple[pa.Table, PartitionStats]]
        ]
        in_flight = deque()
        number = 0

        def finish() -> None:
            nonlocal number
            source, view, pending = in_flight.popleft()
            output, stats = pending.result() if isinstance(pending, Future) else pending
            final, redecided = _arbitrate(job, arbiter, view, source, output, stats)
            write_part(final, work / f"part-{number:05d}.parquet")
            if not job.dry_run:
                summary.tally.add(final)
            number += 1
            summary.rows += stats.rows
            summary.redecided += redecided
            summary.fallbacks += int(pc.sum(final.column("is_fallback")).as_py() or 0)
            if progress is not None:
                progress(summary.rows)

        for table in partitions(input_path):
            view = arbiter.global_view()
            task: Future[Any] | tuple[pa.Table, PartitionStats]
            if pool is None:
                task = decide_partition(job, table, view)
            else:
                task = pool.submit(_decide_installed, table, view)
            in_flight.append((table, view, task))
            while len(in_flight) > (workers if pool is not None else 0):
                finish()
        while in_flight:
            finish()
        record_job(job, summary, arbiter, record)
        (work / "_SUCCESS").touch()
        if output_dir.exists():
            output_dir.rmdir()  # empty (checked above)
        work.rename(output_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary.seconds = time.monotonic() - started
    return summary
