"""Offer Library API benchmark over HTTP (run by hand: .venv/bin/python bench/catalog.py).

For each backend (SQLite, PostgreSQL) and each run: starts the real server (`offerbase serve`,
one worker, a free port, a fresh data dir; for PostgreSQL a fresh database it creates and drops),
gets a credential with `offerbase credentials create --json` (same env), creates a placement and
9,800 personalized offers concurrently, then measures sequential request latency (one client,
keep-alive) of the following, `--runs` times over that catalog (the 200 timed creates bring it to
10,000 offers; each run deletes them afterwards):

  create   POST  /offers?offer-type=personalized                         (--samples-write)
  get      GET   /offers/{id}                                            (--samples-read)
  patch    PATCH /offers/{id}, two `replace` operations                  (--samples-read)
  list     GET   /offers?...&property=status==approved&property=rank.priority>=5
                 &orderby=-rank.priority&limit=50                        (--samples-list)
  list-next the `_links.next` page of that list                         (--samples-list)

Prints p50/p99 in milliseconds per run and the median of the runs (one server per backend).
Options: --backends sqlite,postgresql  --runs 3  --offers 10000  --pg-url URL  --json FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from pgdb import fresh_database
from serving import auth_headers, free_port, start_server, stop_server

ROOT = "/data/core/dps"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
LIST_QUERY = (
    "offer-type=personalized&property=status==approved&property=rank.priority>=5"
    "&orderby=-rank.priority&limit=50"
)
PLACEMENT_ID = "benchPlacement"


def offer_body(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": f"Bench offer {i}",
        "description": f"Offer number {i} of the catalog benchmark",
        "status": "approved" if rng.random() < 0.7 else "draft",
        "selectionConstraint": {
            "startDate": "2022-06-10T00:30:00.000+00:00",
            "endDate": "2032-06-06T23:29:21.402+00:00",
            "profileConstraintType": "none",
        },
        "representations": [
            {
                "channel": WEB,
                "placement": PLACEMENT_ID,
                "components": [
                    {
                        "type": "imagelink",
                        "format": "image/png",
                        "deliveryURL": f"https://cdn.example.com/offers/{i}.png",
                    }
                ],
            }
        ],
        "rank": {"priority": rng.randint(0, 10)},
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Server:
    """`offerbase serve` in a subprocess with its own data dir (and database)."""

    def __init__(self, backend: str, pg_url: str) -> None:
        self.backend = backend
        self.pg_url = pg_url
        self.data_dir = tempfile.mkdtemp(prefix="offerbase-bench-")
        self.port = free_port()
        self.env = {**os.environ, "OFFERBASE_DATA_DIR": self.data_dir}
        self.env.pop("OFFERBASE_DATABASE_URL", None)
        self.database: AbstractContextManager[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        if self.backend == "postgresql":
            self.database = fresh_database(self.pg_url)
            self.env["OFFERBASE_DATABASE_URL"] = self.database.__enter__()
        self.process = start_server(self.env, self.port)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            stop_server(self.process)
        if self.database is not None:
            self.database.__exit__(None, None, None)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return auth_headers(self.base_url, self.env, "BENCH")


async def load(base_url: str, headers: dict[str, str], n: int, concurrency: int) -> list[str]:
    rng = random.Random(42)
    bodies = [offer_body(rng, i) for i in range(n)]
    ids: list[str] = [""] * n
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:
        placement = {"name": "Bench banner", "componentType": "imagelink", "channel": WEB}
        response = await client.post(f"{ROOT}/placements/{PLACEMENT_ID}", json=placement)
        response.raise_for_status()
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                response = await client.post(
                    f"{ROOT}/offers?offer-type=personalized", json=bodies[i]
                )
                if response.status_code != 201:
                    raise RuntimeError(f"create failed: {response.status_code} {response.text}")
                ids[i] = response.json()["id"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def measure(
    base_url: str, headers: dict[str, str], ids: list[str], args: argparse.Namespace
) -> tuple[dict[str, list[float]], list[str]]:
    rng = random.Random(7)
    samples: dict[str, list[float]] = {
        "create": [],
        "get": [],
        "patch": [],
        "list": [],
        "list-next": [],
    }
    created: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:

        def timed(name: str, method: str, url: str, expect: int, **kwargs: Any) -> httpx.Response:
            started = time.perf_counter()
            response = client.request(method, url, **kwargs)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != expect:
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
            samples[name].append(elapsed)
            return response

        for _ in range(20):  # warm-up: connection, caches, the server's first requests
            client.get(f"{ROOT}/offers/{rng.choice(ids)}")
            client.get(f"{ROOT}/offers?{LIST_QUERY}")
        for i in range(args.samples_write):
            body = offer_body(rng, args.offers + i)
            response = timed(
                "create", "POST", f"{ROOT}/offers?offer-type=personalized", 201, json=body
            )
            created.append(response.json()["id"])
        for _ in range(args.samples_read):
            timed("get", "GET", f"{ROOT}/offers/{rng.choice(ids)}", 200)
        for i in range(args.samples_read):
            ops = [
                {"op": "replace", "path": "/name", "value": f"Patched offer {i}"},
                {"op": "replace", "path": "/description", "value": f"Patched description {i}"},
            ]
            timed("patch", "PATCH", f"{ROOT}/offers/{rng.choice(ids)}", 200, json=ops)
        for _ in range(args.samples_list):
            page = timed("list", "GET", f"{ROOT}/offers?{LIST_QUERY}", 200).json()
            if page["count"] != 50:
                raise RuntimeError(f"list page has {page['count']} items")
            timed("list-next", "GET", ROOT + page["_links"]["next"]["href"], 200)
    return samples, created


def run_backend(backend: str, args: argparse.Namespace) -> list[dict[str, dict[str, float]]]:
    """One server and catalog; `args.runs` measurement runs over it.

    The catalog holds `--offers` offers while creates are timed (a sandbox's guardrail is 10,000
    offers): the load leaves room for the timed creates, which each run deletes afterwards.
    """
    runs = []
    with Server(backend, args.pg_url) as server:
        headers = server.headers()
        started = time.perf_counter()
        loaded = args.offers - args.samples_write
        ids = asyncio.run(load(server.base_url, headers, loaded, args.concurrency))
        load_rate = loaded / (time.perf_counter() - started)
        for _ in range(args.runs):
            samples, created = measure(server.base_url, headers, ids, args)
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
                for entity_id in created:
                    client.delete(f"{ROOT}/offers/{entity_id}").raise_for_status()
            figures = {
                name: {"p50": percentile(values, 0.50), "p99": percentile(values, 0.99)}
                for name, values in samples.items()
            }
            figures["load"] = {"offers_per_s": load_rate}
            runs.append(figures)
    return runs


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return f"{os.cpu_count()} CPUs, {cpu}, {ram}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--samples-write", type=int, default=200)
    parser.add_argument("--samples-read", type=int, default=500)
    parser.add_argument("--samples-list", type=int, default=200)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "OFFERBASE_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="An admin URL of the PostgreSQL server (a fresh database is created per run).",
    )
    parser.add_argument("--json", type=Path, help="Also write every figure to this file.")
    args = parser.parse_args()

    print(machine())
    report: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"json": None}}
    for backend in args.backends.split(","):
        runs = run_backend(backend, args)
        for run, figures in enumerate(runs):
            line = "  ".join(
                f"{name} {f['p50']:.2f}/{f['p99']:.2f}"
                for name, f in figures.items()
                if name != "load"
            )
            print(
                f"{backend} run {run + 1}: p50/p99 ms  {line}  "
                f"(load {figures['load']['offers_per_s']:.0f} offers/s)",
                flush=True,
            )
        median = {
            name: {stat: statistics.median(r[name][stat] for r in runs) for stat in runs[0][name]}
            for name in runs[0]
        }
        print(f"{backend} median of {args.runs} runs (ms):")
        for name, f in median.items():
            if name == "load":
                print(f"  {'load':10s} {f['offers_per_s']:.0f} offers/s ({args.concurrency} conc.)")
            else:
                print(f"  {name:10s} p50 {f['p50']:7.2f}  p99 {f['p99']:7.2f}")
        report[backend] = {"runs": runs, "median": median}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
