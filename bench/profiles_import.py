"""NDJSON profile import speed (the path of `offerbase profiles import`), SQLite and PostgreSQL.

Generates `--profiles` profiles (seeded: an Email identity, primary, and an ECID, a name and one
audience each), then per run imports the file into a fresh database with
`store.profiles.import_lines`, as the command does, and imports it again (every line then
replaces a stored profile). Prints profiles/s per run and the median, with the load average,
since the machine may be shared; `--creates-only` skips the second import. Timings are
not asserted anywhere.

    .venv/bin/python bench/profiles_import.py --profiles 20000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import orjson

import offerbase
from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.migrate import upgrade
from offerbase.store.profiles import import_lines

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def write_profiles(path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("wb") as handle:
        for i in range(count):
            body = {
                "person": {"name": {"firstName": f"First{i}", "lastName": f"Last{i}"}},
                "identityMap": {
                    "Email": [{"id": f"user{i}@example.com", "primary": True}],
                    "ECID": [{"id": f"{rng.getrandbits(64):020d}"}],
                },
                "segmentMembership": {"ups": {f"seg-{i % 10}": {"status": "realized"}}},
                "loyalty": {"tier": rng.choice(["gold", "silver", "bronze"])},
            }
            handle.write(orjson.dumps(body) + b"\n")


async def timed_import(url: str, path: Path, passes: int) -> list[float]:
    """Seconds for the first import (creates) and, with 2 passes, the second (replaces)."""
    db = Database(url, sqlite_synchronous="full")
    try:
        await upgrade(db)
        async with db.write() as conn:
            sandbox = await tenants.ensure_sandbox(conn, "bench@AdobeOrg", "prod")
        seconds = []
        for _ in range(passes):
            started = time.perf_counter()
            with path.open("rb") as handle:
                summary = await import_lines(db, sandbox, handle)
            seconds.append(time.perf_counter() - started)
            assert summary.failed == 0, summary.as_dict()
        return seconds
    finally:
        await db.dispose()


def run(backend: str, path: Path, pg_url: str, passes: int) -> list[float]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            return asyncio.run(timed_import(url, path, passes))
    from pgdb import fresh_database  # bench/pgdb.py, next to this script

    with fresh_database(pg_url) as url:
        return asyncio.run(timed_import(url, path, passes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--creates-only", action="store_true", help="Skip the second import (the replaces)."
    )
    parser.add_argument("--pg-url", default=os.environ.get("OFFERBASE_BENCH_PG_URL", PG_URL))
    args = parser.parse_args()
    print(f"offerbase from {Path(offerbase.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profiles.ndjson"
        write_profiles(path, args.profiles)
        for backend in args.backends.split(","):
            creates, replaces = [], []
            for index in range(args.runs):
                load = os.getloadavg()[0]
                seconds = run(backend, path, args.pg_url, 1 if args.creates_only else 2)
                creates.append(args.profiles / seconds[0])
                replaces.extend(args.profiles / s for s in seconds[1:])
                replaced = f", replace {replaces[-1]:,.0f}/s" if replaces else ""
                print(
                    f"{backend} run {index + 1}: {args.profiles} profiles, "
                    f"create {creates[-1]:,.0f}/s{replaced} (load average {load:.1f})",
                    flush=True,
                )
            replaced = f", replace {statistics.median(replaces):,.0f}/s" if replaces else ""
            print(
                f"{backend} median of {args.runs}: create {statistics.median(creates):,.0f} "
                f"profiles/s{replaced}",
                flush=True,
            )


if __name__ == "__main__":
    main()
