"""HTTP load test of the Edge endpoint (`POST /ee/v2/interact`) beside the Decisioning API,
in one run against one `offerbase serve --workers 2`.

Run by hand (needs `wrk`, Debian package `wrk`):

    .venv/bin/python bench/load_edge.py [--database-url postgresql+asyncpg://...] \
        [--connections 32] [--duration 15] [--rounds 3] [--offers 100] [--caps]

It builds the catalog of bench/load_decide.py (100 offers with eligibility rules, a stored
profile), creates a datastream, then alternates wrk runs of the Decisioning API and of the
Server API's `/ee/v2/interact` asking the same decision for the same profile (ABAB..., so a
slow spell of the shared machine hits both), and prints each run, the medians and the ratio of
Edge decisions/s to Decisioning API decisions/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from load_decide import build_catalog, run_wrk
from serving import auth_headers, free_port, machine, run_load_test, start_server, stop_server

IDENTITY = {"Email": [{"id": "load@example.com", "primary": True}]}


def decisioning_body() -> str:
    return json.dumps(
        {
            "xdm:propositionRequests": [{"xdm:activityId": "dec", "xdm:placementId": "web"}],
            "xdm:profiles": [
                {"xdm:identityMap": {"Email": [{"xdm:id": "load@example.com", "primary": True}]}}
            ],
            "xdm:responseFormat": {"xdm:includeContent": True},
        }
    )


def edge_body() -> str:
    scope = base64.b64encode(b'{"activityId":"dec","placementId":"web"}').decode()
    return json.dumps(
        {
            "event": {
                "xdm": {
                    "identityMap": IDENTITY,
                    "eventType": "decisioning.propositionFetch",
                    "timestamp": "2026-12-01T00:00:00.000Z",
                }
            },
            "query": {"personalization": {"decisionScopes": [scope]}},
        }
    )


def create_datastream(env: dict[str, str], org: str, sandbox: str) -> str:
    """A datastream of the catalog's own org and sandbox (auth_headers makes a new org)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "offerbase",
            "datastreams",
            "create",
            "--org",
            org,
            "--sandbox",
            sandbox,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    datastream_id: str = json.loads(done.stdout)["id"]
    return datastream_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--offers", type=int, default=100)
    parser.add_argument("--caps", action="store_true", help="frequency caps on 10%% of offers")
    run_load_test(parser, run)


@contextmanager
def edge_server(
    args: argparse.Namespace, database_url: str | None, prefix: str
) -> Iterator[tuple[str, dict[str, str], str, subprocess.Popen[bytes]]]:
    """`offerbase serve --workers N` (fresh data dir; SQLite unless `database_url`; events not
    durable) with bench/load_decide.py's catalog and a datastream of its sandbox: yields the
    base URL, the Decisioning API's headers, the datastream id and the server process; stops
    the server after."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir), "OFFERBASE_EVENTS_DURABLE": "false"}
    if database_url:
        env["OFFERBASE_DATABASE_URL"] = database_url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, args.workers)
    try:
        headers = {**auth_headers(base, env, "LOAD"), "Content-Type": "application/json"}
        build_catalog(base, headers, args.offers, args.caps)
        datastream = create_datastream(env, headers["x-gw-ims-org-id"], headers["x-sandbox-name"])
        yield base, headers, datastream, server
    finally:
        stop_server(server)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    runs: dict[str, list[dict[str, float]]] = {"decisioning": [], "edge": []}
    with edge_server(args, database_url, "offerbase-load-edge-") as (
        base,
        headers,
        datastream,
        _server,
    ):
        targets = {
            "decisioning": (f"{base}/data/core/ods/decisions", decisioning_body(), headers),
            "edge": (
                f"{base}/ee/v2/interact?dataStreamId={datastream}",
                edge_body(),
                {"Content-Type": "application/json"},
            ),
        }
        for url, body, sent_headers in targets.values():
            check = httpx.post(url, content=body, headers=sent_headers)
            assert check.status_code == 200, check.text
            assert "offer" in check.text, check.text  # a personalized offer, not the fallback
            run_wrk(url, "POST", body, sent_headers, args.connections, 3)  # warm-up
        for _round in range(args.rounds):
            for name, (url, body, sent_headers) in targets.items():
                figures = run_wrk(url, "POST", body, sent_headers, args.connections, args.duration)
                runs[name].append(figures)
                print(
                    f"{name:12} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
                    f"p99 {figures['p99_ms']:6.2f} ms  non-2xx {figures['non_2xx']:.0f}",
                    flush=True,
                )
    print(f"machine: {machine()}")
    print(
        f"database: {args.database_url or 'sqlite'}; workers {args.workers}; "
        f"{args.connections} connections; {args.duration}s x {args.rounds} rounds; "
        f"offers {args.offers}; caps {args.caps}"
    )
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in runs.items()
    }
    for name, figures in medians.items():
        print(
            f"median {name:12} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
            f"p99 {figures['p99_ms']:6.2f} ms"
        )
    ratios = [e["rps"] / d["rps"] for e, d in zip(runs["edge"], runs["decisioning"], strict=True)]
    print(
        f"edge / decisioning decisions/s: median {statistics.median(ratios):.2f} (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )


if __name__ == "__main__":
    main()
