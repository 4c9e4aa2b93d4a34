"""Batch decisioning end to end: `offerbase batch decide` over generated profiles, and in the
same run the Decisioning API's decisions/s on the same catalog, for their ratio.

Run by hand (the API part needs `wrk`, Debian package `wrk`):

    .venv/bin/python bench/batch.py [--profiles 1000000] [--workers 2] [--api-duration 15]
        [--database-url postgresql+asyncpg://...] [--no-api] [--dry-run]

It starts `offerbase serve --workers 2` on a fresh data directory (SQLite unless
--database-url), builds bench/load_decide.py's catalog through the Offer Library API (100
offers, 10 eligibility rules, a global cap on every tenth offer), measures the Decisioning API
with wrk (bench/load_decide.py's request), stops the server, writes the profiles as Parquet
(generated here, the time not counted), then runs `offerbase batch decide` as a subprocess and
prints its seconds, profiles/s, the peak memory of its process tree (sampled from /proc every
0.1 s: the CLI and its workers together) and the ratio batch profiles/s / API decisions/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from load_decide import build_catalog, run_wrk
from pgdb import fresh_database
from serving import auth_headers, free_port, machine, start_server, stop_server

ROW_GROUP = 100_000


def write_profiles(path: Path, count: int, seed: int = 1) -> None:
    """`count` profiles in the store's shape (identityMap, loyalty.points, homeAddress.country),
    as nested Parquet columns, written a row group at a time (bounded memory)."""
    rng = random.Random(seed)
    writer: pq.ParquetWriter | None = None
    for start in range(0, count, ROW_GROUP):
        n = min(ROW_GROUP, count - start)
        ids = pa.array([f"person{start + i}@example.com" for i in range(n)])
        entry = pa.StructArray.from_arrays([ids, pa.array([True] * n)], names=["id", "primary"])
        emails = pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), entry)
        identity_map = pa.StructArray.from_arrays([emails], names=["Email"])
        points = pa.array([rng.randrange(1000) for _ in range(n)], pa.int64())
        countries = pa.array(["US" if rng.random() < 0.8 else "FR" for _ in range(n)])
        table = pa.table(
            {
                "identityMap": identity_map,
                "loyalty": pa.StructArray.from_arrays([points], names=["points"]),
                "homeAddress": pa.StructArray.from_arrays([countries], names=["country"]),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def run_batch_cli(
    env: dict[str, str], args: list[str]
) -> tuple[dict[str, object], float, int, float]:
    """The CLI's JSON summary, its wall seconds, the peak RSS of its process tree and the CPU
    seconds of that tree (user + system: on a shared machine the wall time says how busy the
    machine was, the CPU time what the job cost)."""
    command = [sys.executable, "-m", "offerbase", "batch", "decide", *args, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"offerbase batch decide failed: {err.decode()[-2000:]}")
    # the workers are waited for by the CLI, the CLI by this process: all are counted
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out.decode().strip().splitlines()[-1]), seconds, peak, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    parser.add_argument("--api-duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-api", action="store_true", help="skip the Decisioning API part")
    parser.add_argument("--dry-run", action="store_true", help="batch --dry-run (no events)")
    args = parser.parse_args()
    with ExitStack() as cleanup:
        database_url = args.database_url
        if database_url:
            database_url = cleanup.enter_context(fresh_database(database_url))
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="offerbase-batch-"))
    try:
        measure(args, database_url, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, database_url: str | None, work: Path) -> None:
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(work / "data")}
    if database_url:
        env["OFFERBASE_DATABASE_URL"] = database_url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, 2)
    api_rps = None
    try:
        headers = {**auth_headers(base, env, "BATCH"), "Content-Type": "application/json"}
        build_catalog(base, headers, 100, True)
        if not args.no_api:
            body = json.dumps(
                {
                    "xdm:propositionRequests": [
                        {"xdm:activityId": "dec", "xdm:placementId": "web"}
                    ],
                    "xdm:profiles": [
                        {"xdm:identityMap": {"Email": [{"xdm:id": "load@example.com"}]}}
                    ],
                    "xdm:responseFormat": {"xdm:includeContent": True},
                }
            )
            url = f"{base}/data/core/ods/decisions"
            check = httpx.post(url, content=body, headers=headers)
            assert check.status_code == 200, check.text
            run_wrk(url, "POST", body, headers, args.connections, 3)  # warm-up
            api = run_wrk(url, "POST", body, headers, args.connections, args.api_duration)
            api_rps = api["rps"]
    finally:
        stop_server(server)
    source = work / "profiles.parquet"
    started = time.monotonic()
    write_profiles(source, args.profiles)
    generated = time.monotonic() - started
    cli_args = [
        "--org", headers["x-gw-ims-org-id"], "--sandbox", headers["x-sandbox-name"],
        "--input", str(source), "--activity", "dec", "--placement", "web",
        "--output", str(work / "out"), "--workers", str(args.workers),
    ]  # fmt: skip
    if args.dry_run:
        cli_args.append("--dry-run")
    summary, seconds, peak, cpu = run_batch_cli(env, cli_args)
    rate = args.profiles / seconds
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"database: {args.database_url or 'sqlite'}; profiles {args.profiles:,} "
        f"(generated in {generated:.1f} s); workers {args.workers}; dry run {args.dry_run}"
    )
    print(f"batch summary: {summary}")
    print(
        f"batch end to end: {seconds:.1f} s, {rate:,.0f} profiles/s, "
        f"peak memory {peak / 2**20:,.0f} MiB, CPU {cpu:.1f} s (CLI and workers)"
    )
    print(f"1M profiles in <= 60 s: {'met' if rate >= 1_000_000 / 60 else 'NOT met'}")
    print(f"peak memory < 2 GiB: {'met' if peak < 2**31 else 'NOT met'}")
    ratio = None
    if api_rps is not None:
        print(f"Decisioning API: {api_rps:,.0f} decisions/s ({args.connections} connections)")
        ratio = rate / api_rps
        print(
            f"batch / API ratio: {ratio:.1f} (target >= 50: {'met' if ratio >= 50 else 'NOT met'})"
        )
    # one row for docs/benchmarks.md's table (date, load, wall, CPU, recording, peak, API, ratio)
    print(
        f"| {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC | {os.getloadavg()[0]:.1f} "
        f"| {seconds:.1f} s | {cpu:.1f} s | {summary.get('record_seconds', 0)} s "
        f"| {peak / 2**20:,.0f} MiB | {'-' if api_rps is None else f'{api_rps:,.0f}'} "
        f"| {'-' if ratio is None else f'{ratio:.1f}'} |"
    )


if __name__ == "__main__":
    main()
