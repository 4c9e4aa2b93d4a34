"""A batch job's partitions on a cluster: Dask (dask.distributed), the `offerbase[dask]` extra.

The same partition function as the local engine (`partition.decide_partition`) and the same cap
arbitration (`run.Arbiter`, `run._arbitrate`, in this process, in input order); only where the
rows travel changes, so that they do not all pass through this process:

* A task reads its own slice of the input through fsspec (Parquet: a range of row groups, of
  about `run.ROWS_PER_PARTITION` rows), decides it with the counters read at job start plus the
  job's global consumption known when it was sent, writes its Parquet part into the job's
  staging directory next to the output, and sends back only its stats (the counters its rows
  consumed, one decision event per row, its proposition ids). NDJSON has no row groups to
  address: this process reads it in chunks (`run.partitions`) and sends each with its task.
* This process settles the parts in input order. When the scopes rank by priority alone and
  every row's consumption still fits under the true counters (the common case), the part stands
  as the task wrote it; otherwise this process reads the slice and the part back, lets
  `run._arbitrate` decide again the rows it must, and rewrites the part.
* At the end: `record` (the counters, the reports' counts), then `_SUCCESS` and one rename of
  the staging directory to the output (local and mounted filesystems: atomic). Object stores
  have no rename: there the parts are moved, then `_SUCCESS` is written last, and a reader
  waits for it.

Input and output are paths or fsspec URLs (`file://`, `s3://` with s3fs installed, ...), which
every worker must reach: a shared filesystem or an object store on a real cluster.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from offerbase.batch import run
from offerbase.batch.partition import (
    ROW_COLUMN,
    BatchInputError,
    BatchJob,
    PartitionStats,
    decide_partition,
)
from offerbase.engine import ScopeRequest

# Tasks waiting per worker thread beyond the running one: enough to keep workers busy while
# this process settles a part, few enough that a global cap exhausted meanwhile is seen soon.
_QUEUED_PER_THREAD = 1
_CONNECT_SECONDS = 30
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/+")


def as_url(path: str | Path) -> str:
    """A path or URL as the user wrote it. The CLI's options are Paths, and pathlib folds
    `s3://bucket/key` to `s3:/bucket/key` (and `file:///tmp/x` to `file:/tmp/x`): put the
    slashes back. A one-letter scheme is a Windows drive, not a URL."""
    text = str(path)
    found = _SCHEME.match(text)
    if found is None:
        return text
    scheme, rest = found.group(1).lower(), text[found.end() :]
    return f"file:///{rest}" if scheme == "file" else f"{scheme}://{rest}"


def is_url(path: str | Path) -> bool:
    return _SCHEME.match(str(path)) is not None


def _local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec.core  # dask's own dependency: the filesystems Dask reads and writes

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs, str(path)
    except (ImportError, ValueError) as exc:  # a scheme whose fsspec package is absent
        raise run.BatchError(f"{url}: no filesystem for it ({exc})") from None


# -- a job as JSON (`offerbase batch decide --save-job`, for engines offerbase does not run) ----


def dump_job(job: BatchJob) -> bytes:
    """The job as JSON: the catalog and counters read at start, the scopes, clock and seed,
    everything `decide_partition` needs on a machine with no access to the database."""
    return orjson.dumps(
        {
            "format": "offerbase-batch-job/1",
            "catalog": job.catalog,
            "catalog_version": job.catalog_version,
            "scopes": [[s.activity_id, s.placement_id, s.item_count] for s in job.scopes],
            "include_content": job.include_content,
            "now": job.now.isoformat(),
            "seed": job.seed,
            "counters": job.counters,
            "workload_id": job.workload_id,
            "dry_run": job.dry_run,
        }
    )


def load_job(data: bytes) -> BatchJob:
    from datetime import datetime

    fields = orjson.loads(data)
    if not isinstance(fields, dict) or fields.get("format") != "offerbase-batch-job/1":
        raise run.BatchError("not an offerbase batch job (offerbase batch decide --save-job)")
    return BatchJob(
        catalog=fields["catalog"],
        catalog_version=int(fields["catalog_version"]),
        scopes=tuple(ScopeRequest(a, p, n) for a, p, n in fields["scopes"]),
        include_content=bool(fields["include_content"]),
        now=datetime.fromisoformat(fields["now"]),
        seed=int(fields["seed"]),
        counters={str(k): int(v) for k, v in fields["counters"].items()},
        workload_id=str(fields["workload_id"]),
        dry_run=bool(fields["dry_run"]),
    )


# -- slices ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    """One task's input: row groups of a Parquet file, or an NDJSON chunk sent along."""

    number: int  # the part's number (part-NNNNN.parquet)
    first_row: int  # 1-based number of its first input row
    url: str = ""
    row_groups: tuple[int, ...] = ()
    table: pa.Table | None = None


def _slices(url: str) -> Iterator[Slice]:
    """The input as task slices: Parquet row groups grouped to about ROWS_PER_PARTITION rows
    (a larger row group is one slice alone); NDJSON in the local engine's chunks."""
    fs, path = _filesystem(url)
    if not fs.isfile(path):
        raise run.BatchError(f"{url}: no such file")
    if path.endswith((".ndjson", ".jsonl")):
        if not _local(fs):
            raise run.BatchError(f"{url}: NDJSON input must be a local file (or use Parquet)")
        for number, table in enumerate(run.partitions(Path(path))):
            yield Slice(number, table.column(ROW_COLUMN)[0].as_py(), table=table)
        return
    if not path.endswith(".parquet"):
        raise run.BatchError(f"{url}: the input must be .parquet or .ndjson")
    try:
        with fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException) as exc:
        raise run.BatchError(f"{url}: not a readable Parquet file ({exc})") from None
    number, first, rows = 0, 1, 0
    groups: list[int] = []
    for index in range(metadata.num_row_groups):
        size = metadata.row_group(index).num_rows
        if groups and rows + size > run.ROWS_PER_PARTITION:
            yield Slice(number, first, url, tuple(groups))
            number, first, groups, rows = number + 1, first + rows, [], 0
        groups.append(index)
        rows += size
    if groups or number == 0:  # an empty file is one empty slice: one (empty) part
        yield Slice(number, first, url, tuple(groups))


def read_slice(piece: Slice) -> pa.Table:
    """The slice's rows with their input row numbers (ROW_COLUMN), as `run.partitions`."""
    if piece.table is not None:
        return piece.table
    fs, path = _filesystem(piece.url)
    last = piece.first_row
    try:
        with fs.open(path, "rb") as handle:
            handle_file = pq.ParquetFile(handle)
            table = handle_file.read_row_groups(list(piece.row_groups))
            last = piece.first_row + table.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise run.BatchError(
            f"{piece.url}: cannot read rows {piece.first_row} to {last} ({exc})"
        ) from None
    rows = pa.array(range(piece.first_row, piece.first_row + table.num_rows), pa.int64())
    return table.append_column(ROW_COLUMN, rows)


# -- a task (on a worker) ------------------------------------------------------------------


@dataclass
class Outcome:
    """What a task sends back: not its rows (they are in its part), or why it failed."""

    stats: PartitionStats | None = None
    tally: run.Tally | None = None  # what the reports count of the part's rows
    fallbacks: int = 0
    # a failure the CLI reports as bad input: (row, pointer, message) or a BatchError text
    input_error: tuple[int, str, str] | None = None
    batch_error: str | None = None


def _write(table: pa.Table, url: str) -> None:
    fs, path = _filesystem(url)
    with fs.open(path, "wb") as handle:
        run.write_part(table, handle)


def decide_slice(job: BatchJob, piece: Slice, view: dict[str, int], part_url: str) -> Outcome:
    """One task: read the slice, decide it (`decide_partition`), write its part.

    Bad input comes back as a value, so that the command raises it as its own error type
    (naming the row and field) whatever the cluster does with a task's exception."""
    try:
        output, stats = decide_partition(job, read_slice(piece), view)
        _write(output, part_url)
    except BatchInputError as exc:
        return Outcome(input_error=(exc.row, exc.pointer, exc.message))
    except run.BatchError as exc:
        return Outcome(batch_error=str(exc))
    tally = run.Tally()
    if not job.dry_run:
        tally.add(output)
    fallbacks = int(pc.sum(output.column("is_fallback")).as_py() or 0)
    return Outcome(stats, tally, fallbacks)


# -- the job (this process) ----------------------------------------------------------------


def _stands(arbiter: run.Arbiter, stats: PartitionStats) -> bool:
    """Whether `run._arbitrate` would accept every row of the partition as decided, known
    without reading it: priority-only ranking, and each row's consumption fitting under the
    true counters after the rows before it (`Arbiter.fits`, with this partition's own)."""
    if arbiter.order_sensitive:
        return False  # a row whose own counters fit may still read one that changed: see run.py
    pending: dict[str, int] = {}
    for _index, consumption in stats.consuming:
        wanted: dict[str, int] = {}
        limits: dict[str, int] = {}
        for key, limit in consumption:
            wanted[key] = wanted.get(key, 0) + 1
            limits[key] = min(limit, limits.get(key, limit))
        for key, n in wanted.items():
            used = arbiter.start.get(key, 0) + arbiter.running.get(key, 0) + pending.get(key, 0)
            if used + n > limits[key]:
                return False
        for key, n in wanted.items():
            pending[key] = pending.get(key, 0) + n
    return True


def _client(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """A client of the cluster at `scheduler`, else of a local cluster of `workers` processes
    (one thread each: the partition function holds the GIL)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise run.BatchError(
            "the dask engine needs the dask extra: pip install 'offerbase[dask]'"
        ) from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=_CONNECT_SECONDS), None  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise run.BatchError(f"cannot reach the scheduler {scheduler} ({exc})") from None
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never 8787 that another may hold
        silence_logs=logging.WARNING,
    )
    return Client(cluster), cluster  # type: ignore[no-untyped-call]


def run_dask(
    job: BatchJob,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    record: Callable[[run.Summary], None] | None = None,
) -> run.Summary:
    """`run.run_batch` on Dask: the same arguments, the same rows and summary (see the module
    docstring). `scheduler`: a running scheduler's address (tcp://host:8786); without it a
    local cluster of `workers` processes is started and stopped."""
    started = time.monotonic()
    source, target = as_url(input_path), as_url(output_dir)
    fs, out_path = _filesystem(target)
    out_path = out_path.rstrip("/")
    if fs.exists(out_path) and (not fs.isdir(out_path) or fs.ls(out_path)):
        raise run.BatchError(f"{target}: the output directory exists and is not empty")
    run.check_job(job)
    slices = _slices(source)  # checks the input before a cluster is started
    first = next(slices, None)
    parent, name = out_path.rsplit("/", 1) if "/" in out_path else ("", out_path)
    staging = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:12]}"
    fs.makedirs(staging, exist_ok=True)
    staging_url = staging if _local(fs) else fs.unstrip_protocol(staging)
    summary = run.Summary(output=target)
    arbiter = run.Arbiter(job.counters, len(job.scopes), run.order_sensitive(job))
    client = cluster = None
    in_flight: deque[tuple[Slice, dict[str, int], Any]] = deque()
    try:
        client, cluster = _client(workers, scheduler)
        shared = client.scatter(job, broadcast=True)  # the catalog and counters sent once
        slots = sum(client.nthreads().values()) * (1 + _QUEUED_PER_THREAD)

        def settle() -> None:
            piece, view, future = in_flight.popleft()
            try:
                outcome: Outcome = future.result()
            except Exception as exc:  # a worker lost, a task the cluster could not run
                raise run.BatchError(f"part {piece.number} failed on the cluster: {exc!r}") from exc
            if outcome.input_error is not None:
                raise BatchInputError(*outcome.input_error)
            if outcome.batch_error is not None or outcome.stats is None:
                raise run.BatchError(outcome.batch_error or "a task sent no result")
            stats, tally, fallbacks = outcome.stats, outcome.tally, outcome.fallbacks
            part = f"{staging_url}/part-{piece.number:05d}.parquet"
            if _stands(arbiter, stats):
                for _index, consumption in stats.consuming:
                    arbiter.consume(consumption)
            else:
                with fs.open(f"{staging}/part-{piece.number:05d}.parquet", "rb") as handle:
                    output = pq.read_table(handle)
                final, redecided = run._arbitrate(
                    job, arbiter, view, read_slice(piece), output, stats
                )
                if redecided:
                    _write(final, part)
                    summary.redecided += redecided
                    fallbacks = int(pc.sum(final.column("is_fallback")).as_py() or 0)
                    tally = run.Tally()
                    if not job.dry_run:
                        tally.add(final)
            if tally is not None:
                summary.tally.merge(tally)
            summary.rows += stats.rows
            summary.fallbacks += fallbacks
            if progress is not None:
                progress(summary.rows)

        for piece in itertools.chain([first] if first is not None else [], slices):
            view = arbiter.global_view()
            part = f"{staging_url}/part-{piece.number:05d}.parquet"
            future = client.submit(decide_slice, shared, piece, view, part, pure=False)
            in_flight.append((piece, view, future))
            while len(in_flight) >= slots:
                settle()
        while in_flight:
            settle()
        run.record_job(job, summary, arbiter, record)
        _publish(fs, staging, out_path)
    except BaseException:
        for _piece, _view, future in in_flight:
            future.cancel()
        with contextlib.suppress(OSError):  # keep the job's own error
            fs.rm(staging, recursive=True)
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    summary.seconds = time.monotonic() - started
    return summary


def _publish(fs: Any, staging: str, out_path: str) -> None:
    """The staging directory becomes the output: one rename where the filesystem has one
    (local, mounted: a reader sees all or nothing); on an object store, the parts moved and
    `_SUCCESS` written last."""
    if fs.exists(out_path):
        fs.rmdir(out_path)  # empty (checked at start)
    if _local(fs):
        fs.touch(f"{staging}/_SUCCESS")
        Path(staging).rename(out_path)
        return
    fs.mv(staging, out_path, recursive=True)
    fs.touch(f"{out_path}/_SUCCESS")
