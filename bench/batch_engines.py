"""Cluster engines for batch decisioning, against the local engine: what made docs/batch.md
choose Dask.

Run (Ray is not a dependency of the project: measure it from a venv of its own with offerbase
installed, `pip install ray -e .`):

    .venv/bin/python bench/batch_engines.py [--profiles 100000] [--partition 10000] [--runs 3]
        [--engines pool,dask,ray,run-local,run-dask]

The same partition function, `offerbase.batch.partition.decide_partition`, over the same
generated profiles (tests/batch/test_batch_run.py's catalog: 20 offers, 5 rules, two global
caps, two per-profile caps; partitions of --partition rows read from one Parquet file), every
engine with two worker processes:

* loop: one process, no engine (the baseline of the ratios);
* pool: `ProcessPoolExecutor(2, spawn)`, the job sent once per worker (batch/run.py's way);
* dask: `LocalCluster(n_workers=2, threads_per_worker=1)`, the job scattered once;
* ray: `ray.init(num_cpus=2)`, the job `ray.put` once, one remote task per partition;
* run-local / run-dask: `run_batch` end to end (arbitration, Parquet parts, atomic publish)
  with `--workers 2` and with `engine="dask"` on the already started cluster.

Start-up (the cluster up and one task answered) and the map are timed apart; each engine is
run --runs times round-robin and the median printed with its ratio to the loop of the same
run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the tests' catalog builders

from batch.test_batch_run import NOW, _catalog, _profiles
from offerbase.batch import run as batch_run
from offerbase.batch.partition import ROW_COLUMN, BatchJob, decide_partition
from offerbase.engine import ScopeRequest

WORKERS = 2


def _job() -> BatchJob:
    return BatchJob(_catalog(False), 1, (ScopeRequest("D1", "P1", 2),), False, NOW, 42, {}, "b")


def _tables(path: Path) -> list[pa.Table]:
    tables, first = [], 1
    for batch in pq.ParquetFile(path).iter_batches():
        table = pa.Table.from_batches([batch])
        rows = pa.array(range(first, first + table.num_rows), pa.int64())
        first += table.num_rows
        tables.append(table.append_column(ROW_COLUMN, rows))
    return tables


def _rows(results: list[tuple[pa.Table, Any]]) -> int:
    return sum(table.num_rows for table, _stats in results)


_JOB: BatchJob | None = None


def _install(job: BatchJob) -> None:
    global _JOB
    _JOB = job


def _decide_installed(table: pa.Table) -> tuple[pa.Table, Any]:
    assert _JOB is not None
    return decide_partition(_JOB, table)


def _ping(value: int) -> int:
    return value


class Engine:
    """start() -> seconds; map(tables) -> output rows; stop()."""

    def start(self) -> float:
        return 0.0

    def map(self, tables: list[pa.Table]) -> int:
        raise NotImplementedError

    def stop(self) -> None:
        pass


class Loop(Engine):
    def __init__(self, job: BatchJob) -> None:
        self.job = job

    def map(self, tables: list[pa.Table]) -> int:
        return _rows([decide_partition(self.job, t) for t in tables])


class Pool(Engine):
    def __init__(self, job: BatchJob) -> None:
        self.job = job

    def start(self) -> float:
        began = time.perf_counter()
        context = get_context("spawn")
        self.pool = ProcessPoolExecutor(
            WORKERS, mp_context=context, initializer=_install, initargs=(self.job,)
        )
        list(self.pool.map(_decide_installed, [pa.table({"x": []})] * WORKERS))
        return time.perf_counter() - began

    def map(self, tables: list[pa.Table]) -> int:
        return _rows(list(self.pool.map(_decide_installed, tables)))

    def stop(self) -> None:
        self.pool.shutdown()


class Dask(Engine):
    def __init__(self, job: BatchJob) -> None:
        self.job = job

    def start(self) -> float:
        from dask.distributed import Client, LocalCluster

        began = time.perf_counter()
        self.cluster = LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.WARNING,
        )
        self.client = Client(self.cluster)
        self.shared = self.client.scatter(self.job, broadcast=True)
        self.client.submit(len, [1]).result()
        return time.perf_counter() - began

    def map(self, tables: list[pa.Table]) -> int:
        futures = [self.client.submit(decide_partition, self.shared, t, pure=False) for t in tables]
        return _rows(self.client.gather(futures))

    def stop(self) -> None:
        self.client.close()
        self.cluster.close()


class Ray(Engine):
    def __init__(self, job: BatchJob) -> None:
        self.job = job

    def start(self) -> float:
        import ray

        began = time.perf_counter()
        ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level=logging.WARNING)
        self.ray = ray
        self.remote = ray.remote(decide_partition)
        self.shared = ray.put(self.job)
        ping = ray.remote(_ping)
        ray.get([ping.remote(1) for _ in range(WORKERS)])
        return time.perf_counter() - began

    def map(self, tables: list[pa.Table]) -> int:
        return _rows(self.ray.get([self.remote.remote(self.shared, t) for t in tables]))

    def stop(self) -> None:
        self.ray.shutdown()


class RunBatch(Engine):
    """run_batch end to end; `dask` reuses the Dask engine's cluster."""

    def __init__(self, job: BatchJob, source: Path, dask: Dask | None) -> None:
        self.job, self.source, self.dask = job, source, dask

    def map(self, tables: list[pa.Table]) -> int:
        out = Path(tempfile.mkdtemp()) / "out"
        try:
            if self.dask is None:
                summary = batch_run.run_batch(self.job, self.source, out, workers=WORKERS)
            else:
                address = self.dask.cluster.scheduler_address
                summary = batch_run.run_batch(
                    self.job, self.source, out, engine="dask", scheduler=address
                )
            return summary.rows
        finally:
            shutil.rmtree(out.parent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--partition", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="pool,dask,run-local,run-dask")
    args = parser.parse_args()
    print(f"{platform.python_version()} on {os.cpu_count()} cores, load {os.getloadavg()}")
    work = Path(tempfile.mkdtemp())
    source = work / "profiles.parquet"
    pq.write_table(
        pa.Table.from_pylist(_profiles(args.profiles)), source, row_group_size=args.partition
    )
    batch_run.ROWS_PER_PARTITION = args.partition  # the local engine's partitions, same size
    tables = _tables(source)
    job = _job()
    names = args.engines.split(",")
    if "run-dask" in names and "dask" not in names:  # run-dask uses the dask engine's cluster
        names.insert(0, "dask")
    dask = Dask(job)
    makers: dict[str, Callable[[], Engine]] = {
        "pool": lambda: Pool(job),
        "dask": lambda: dask,
        "ray": lambda: Ray(job),
        "run-local": lambda: RunBatch(job, source, None),
        "run-dask": lambda: RunBatch(job, source, dask),
    }
    engines: dict[str, Engine] = {"loop": Loop(job)}
    for name in names:
        engines[name] = makers[name]()
    startup = {name: engine.start() for name, engine in engines.items()}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.runs):
        for name, engine in engines.items():
            began = time.perf_counter()
            rows = engine.map(tables)
            times[name].append(time.perf_counter() - began)
            assert rows >= args.profiles, (name, rows)
    for engine in engines.values():
        engine.stop()
    shutil.rmtree(work)
    base = statistics.median(times["loop"])
    print(f"{args.profiles} profiles, partitions of {args.partition}, {args.runs} runs")
    print(f"{'engine':<10} {'start s':>8} {'median s':>9} {'profiles/s':>11} {'x loop':>7}")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(
            f"{name:<10} {startup.get(name, 0.0):>8.2f} {median:>9.2f} "
            f"{args.profiles / median:>11,.0f} {median / base:>7.2f}"
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
