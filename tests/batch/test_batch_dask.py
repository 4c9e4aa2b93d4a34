"""The dask engine (batch/distributed.py) on a local cluster of two worker processes, started
here and stopped after: the same rows as the local engine and as the online path in input
order (a global cap runs out while partitions are in flight, so the arbitration re-decides
rows), through `run_batch` and through `offerbase batch decide --engine dask`; bad input
names the row and publishes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dask.distributed import LocalCluster

from offerbase.batch.distributed import as_url
from offerbase.batch.partition import BatchJob
from offerbase.batch.run import BatchError, Summary, Tally, run_batch
from offerbase.engine import ScopeRequest

from .test_batch_cli import data_dir as data_dir
from .test_batch_cli import decide, nothing_published, people
from .test_batch_run import NOW, _catalog, _online, _profiles

pytestmark = pytest.mark.xdist_group("batch-dask")  # its own cluster: beside the other batch tests
IDS = ("decision_event_id", "proposition_id", "workload_id", "timestamp")  # per CLI run


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never 8787 that another may hold
        silence_logs=logging.WARNING,
    ) as cluster:
        yield cluster.scheduler_address


def _write(path: Path, profiles: list[dict]) -> None:
    if path.suffix == ".parquet":  # 10 row groups: 10 tasks, 4 in flight
        pq.write_table(pa.Table.from_pylist(profiles), path, row_group_size=300)
    else:
        path.write_bytes(b"\n".join(orjson.dumps(p) for p in profiles))


@pytest.mark.parametrize(("formula", "suffix"), [(False, ".parquet"), (True, ".ndjson")])
def test_dask_equals_local_and_online(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str, formula: bool, suffix: str
) -> None:
    import offerbase.batch.run as run

    monkeypatch.setattr(run, "ROWS_PER_PARTITION", 300)
    catalog, profiles = _catalog(formula), _profiles(3000)
    source = tmp_path / f"in{suffix}"
    _write(source, profiles)
    job = BatchJob(catalog, 1, (ScopeRequest("D1", "P1", 2),), False, NOW, 42, {}, "w1")
    recorded: list[tuple[dict[str, int], Tally]] = []

    def record(summary: Summary) -> None:
        recorded.append((dict(summary.consumption), summary.tally))

    local = run_batch(job, source, tmp_path / "local", record=record)
    dask = run_batch(
        job, source, tmp_path / "dask", engine="dask", scheduler=scheduler, record=record
    )
    expected = pq.read_table(tmp_path / "local")
    got = pq.read_table(tmp_path / "dask")
    assert got.num_rows == expected.num_rows > 3000
    assert got.to_pylist() == expected.to_pylist()
    by_event: dict[str, list[str]] = {}
    for row in got.to_pylist():
        by_event.setdefault(row["decision_event_id"], []).append(row["option_id"])
    assert list(by_event.values()) == _online(catalog, profiles, 42)
    assert (dask.rows, dask.fallbacks) == (local.rows, local.fallbacks) == (3000, local.fallbacks)
    assert dask.consumption == local.consumption
    assert max(n for k, n in dask.consumption.items() if "|global|" in k) == 40
    assert dask.redecided > 0  # the cap ran out while partitions were in flight
    # the counters and report counts handed to `record` are the same: one proposition per row
    assert recorded[0] == recorded[1]
    assert recorded[0][0] == local.consumption
    assert sum(counts[0] for counts in recorded[0][1].propositions.values()) == 3000
    assert (tmp_path / "dask" / "_SUCCESS").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_file_urls_and_an_empty_input(tmp_path: Path, scheduler: str) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(people(20)), source)
    job = BatchJob(_catalog(False), 1, (ScopeRequest("D1", "P1", 1),), False, NOW, 1, {}, "w")
    summary = run_batch(
        job,
        Path(f"file://{source}"),
        Path(f"file://{tmp_path}/out"),
        engine="dask",
        scheduler=scheduler,
    )  # fmt: skip: Paths, as the CLI passes them (pathlib folds the slashes)
    assert summary.rows == pq.read_table(tmp_path / "out").num_rows == 20
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist(people(1)).slice(0, 0), empty)
    run_batch(job, empty, tmp_path / "none", engine="dask", scheduler=scheduler)
    assert pq.read_table(tmp_path / "none").num_rows == 0
    assert as_url(Path("s3://bucket/key.parquet")) == "s3://bucket/key.parquet"
    assert as_url("file:/tmp/x") == "file:///tmp/x"
    assert as_url("C:/data/x.parquet") == "C:/data/x.parquet"


def test_cli_engine_dask_writes_the_local_engines_rows(data_dir: Path, tmp_path: Path) -> None:
    # No --scheduler: the command starts a local cluster of --workers processes itself.
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(people(400)), source, row_group_size=100)
    seed = ("--seed", "5", "--include-content", "--dry-run")
    decide(data_dir, source, tmp_path / "local", *seed)
    text = decide(data_dir, source, tmp_path / "dask", *seed, "--engine", "dask", "--workers", "2")
    assert text.strip().startswith("400 rows, 0 fallbacks, ")
    local = pq.read_table(tmp_path / "local").drop_columns(list(IDS))
    dask = pq.read_table(tmp_path / "dask").drop_columns(list(IDS))
    assert dask.to_pylist() == local.to_pylist()
    assert len(dask) == 400


def test_cli_bad_input_on_dask_names_the_row_and_publishes_nothing(
    data_dir: Path,
    tmp_path: Path,
    scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import offerbase.batch.distributed as distributed

    monkeypatch.setattr(distributed, "_CONNECT_SECONDS", 2)  # for the unreachable scheduler
    on_dask = ("--engine", "dask", "--scheduler", scheduler)
    rows = people(30)
    rows[24] = {"identityMap": {"Email": [{"id": "", "primary": True}]}, "points": 1}  # task 3
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=10)
    text = decide(data_dir, source, tmp_path / "out", *on_dask, code=1)
    assert "row 25, /identityMap/Email/0/id: must be a string" in text
    assert nothing_published(tmp_path / "out")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not parquet")
    text = decide(data_dir, broken, tmp_path / "out", *on_dask, code=1)
    assert "not a readable Parquet file" in text
    assert "No such file" in decide(data_dir, tmp_path / "no.parquet", tmp_path / "o", code=2)
    text = decide(data_dir, source, tmp_path / "out", "--engine", "dask", "--scheduler",
                  "tcp://127.0.0.1:9", code=1)  # fmt: skip
    assert "cannot reach the scheduler tcp://127.0.0.1:9" in text
    assert nothing_published(tmp_path / "out")


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    job = BatchJob(_catalog(False), 1, (ScopeRequest("D1", "P1", 1),), False, NOW, 1, {}, "w")
    with pytest.raises(BatchError, match="unknown engine 'ray': one of local, dask"):
        run_batch(job, tmp_path / "in.parquet", tmp_path / "out", engine="ray")


def test_a_saved_job_is_the_cli_job(data_dir: Path, tmp_path: Path) -> None:
    """`--save-job`: the job as JSON for an engine offerbase does not run (the Spark recipe of
    docs/batch.md); loaded back, the partition function gives the CLI's rows."""
    from offerbase.batch.distributed import dump_job, load_job
    from offerbase.batch.partition import decide_partition

    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(people(60)), source)
    saved = tmp_path / "job.json"
    text = decide(data_dir, source, tmp_path / "o", "--seed", "9", "--save-job", str(saved))
    assert text.startswith("job ")
    assert not (tmp_path / "o").exists()
    job = load_job(saved.read_bytes())
    assert (job.seed, job.scopes, job.dry_run) == (9, (ScopeRequest("dec", "web", None),), False)
    assert job.catalog["decision"][0]["id"] == "dec"
    assert load_job(dump_job(job)) == job
    run_batch(job, source, tmp_path / "local")  # one partition: nothing to arbitrate across
    table = pq.read_table(source)
    rows = pa.array(range(1, 61), pa.int64())
    output, _stats = decide_partition(job, table.append_column("_row", rows))
    assert output.to_pylist() == pq.read_table(tmp_path / "local").to_pylist()
    with pytest.raises(BatchError, match="not an offerbase batch job"):
        load_job(b'{"format": "other"}')
