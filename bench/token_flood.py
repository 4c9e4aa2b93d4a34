"""Decision throughput alone and under a flood of wrong client secrets (issue 9, point 3).

    .venv/bin/python bench/token_flood.py [--workers 1] [--decision-clients 8] \
        [--flood-clients 8] [--seconds 5] [--runs 5] [--no-throttle] [--redis-url URL]

Starts `offerbase serve` (fresh data dir, SQLite), creates a catalog, then alternates, `--runs`
times: decisions alone for `--seconds`, then decisions while `--flood-clients` clients (a
process of their own) each POST /ims/token/v3 with a wrong secret as fast as they are answered.
Prints the median decision throughput of each phase and the drop; the target is at most 20%.
`--no-throttle` lifts the per-address and per-client limits so every wrong secret is hashed,
and `--no-delay` drops the 1 s pause before a failed answer: with both, the worst case (as from
an attacker with many addresses and connections), bounded only by the one hashing thread.
The two phases alternate in ABBA order (alone first in even runs, flooded first in odd ones),
so a drift of the machine's load does not favour either. The decision load comes from wrk when
it is installed (Debian package `wrk`), else from httpx (asyncio); the flood from httpx; all
on this same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from load_decide import build_catalog, run_wrk
from serving import auth_headers, free_port, machine, start_server, stop_server

TARGET_DROP = 0.20


async def _decisions(
    base: str, headers: dict[str, str], body: str, clients: int, seconds: float
) -> float:
    """Decisions answered 200 per second by `clients` sequential clients."""
    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as http:

        async def one() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await http.post("/data/core/ods/decisions", content=body)
                assert response.status_code == 200, response.text
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(clients)))
        return done / (time.monotonic() - started)


async def _flood(base: str, client_id: str, clients: int, seconds: float) -> dict[int, int]:
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one(i: int) -> None:
            while time.monotonic() < deadline:
                data = {
                    "grant_type": "client_credentials",
                    "client_id": client_id if i % 2 else f"unknown-{i}",
                    "client_secret": "wrong-secret",
                }
                statuses[(await http.post("/ims/token/v3", data=data)).status_code] += 1

        await asyncio.gather(*(one(i) for i in range(clients)))
    return dict(statuses)


def _flood_process(
    base: str,
    client_id: str,
    clients: int,
    seconds: float,
    out: multiprocessing.Queue[dict[int, int]],
) -> None:
    out.put(asyncio.run(_flood(base, client_id, clients, seconds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--decision-clients", type=int, default=8)
    parser.add_argument("--flood-clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--offers", type=int, default=100)
    parser.add_argument("--no-throttle", action="store_true", help="hash every wrong secret")
    parser.add_argument(
        "--no-delay", action="store_true", help="answer failures at once (no 1 s tarpit)"
    )
    parser.add_argument("--redis-url", help="throttle windows in Redis (OFFERBASE_REDIS_URL)")
    parser.add_argument(
        "--load",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="decision load generator (wrk when installed: it leaves more CPU to the server)",
    )
    args = parser.parse_args()
    if args.load == "wrk" and args.seconds < 1:
        parser.error("wrk runs whole seconds: --seconds 1 or more, or --load httpx")

    data_dir = Path(tempfile.mkdtemp(prefix="offerbase-flood-"))
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir)}
    if args.no_throttle:
        env["OFFERBASE_TOKEN_FAILURES_PER_CLIENT"] = "1000000000"
        env["OFFERBASE_TOKEN_FAILURES_PER_ADDRESS"] = "1000000000"
    if args.no_delay:
        env["OFFERBASE_TOKEN_FAILURE_DELAY_SECONDS"] = "0"
    if args.redis_url:
        env["OFFERBASE_REDIS_URL"] = args.redis_url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, args.workers)
    alone: list[float] = []
    flooded: list[float] = []
    statuses: Counter[int] = Counter()
    try:
        headers = {**auth_headers(base, env, "FLOOD"), "Content-Type": "application/json"}
        build_catalog(base, headers, args.offers, caps=False)
        body = json.dumps(
            {
                "xdm:propositionRequests": [{"xdm:activityId": "dec", "xdm:placementId": "web"}],
                "xdm:profiles": [
                    {
                        "xdm:identityMap": {
                            "Email": [{"xdm:id": "load@example.com", "primary": True}]
                        }
                    }
                ],
                "xdm:responseFormat": {"xdm:includeContent": True},
            }
        )

        def decide() -> float:
            if args.load == "wrk":
                url = f"{base}/data/core/ods/decisions"
                clients, seconds = args.decision_clients, round(args.seconds)
                figures = run_wrk(url, "POST", body, headers, clients, seconds)
                assert figures["non_2xx"] == 0, figures
                return figures["rps"]
            return asyncio.run(_decisions(base, headers, body, args.decision_clients, args.seconds))

        decide()  # warm-up
        context = multiprocessing.get_context("spawn")

        def under_flood() -> float:
            out: multiprocessing.Queue[dict[int, int]] = context.Queue()
            flood = context.Process(
                target=_flood_process,
                args=(base, headers["x-api-key"], args.flood_clients, args.seconds + 1, out),
            )
            flood.start()
            time.sleep(0.5)  # the flood is under way before decisions are counted
            rate = decide()
            statuses.update(out.get(timeout=60))
            flood.join(timeout=30)
            return rate

        for run in range(args.runs):
            if run % 2 == 0:
                alone.append(decide())
                flooded.append(under_flood())
            else:
                flooded.append(under_flood())
                alone.append(decide())
    finally:
        stop_server(server)

    print(f"machine: {machine()}")
    print(
        f"workers {args.workers}; {args.decision_clients} decision clients; "
        f"{args.flood_clients} wrong-secret clients; {args.runs} runs of {args.seconds:g} s; "
        f"throttle {'off' if args.no_throttle else 'on'}; "
        f"failure delay {'off' if args.no_delay else 'on'}; "
        f"windows {'redis' if args.redis_url else 'in-process'}; load {args.load}"
    )
    print("alone   (decisions/s): " + " ".join(f"{v:.0f}" for v in alone))
    print("flooded (decisions/s): " + " ".join(f"{v:.0f}" for v in flooded))
    median_alone, median_flooded = statistics.median(alone), statistics.median(flooded)
    drop = 1 - median_flooded / median_alone
    print(f"token answers during the floods: {dict(sorted(statuses.items()))}")
    verdict = "met" if drop <= TARGET_DROP else "NOT met"
    print(
        f"median: alone {median_alone:.0f}/s, flooded {median_flooded:.0f}/s, "
        f"drop {drop:.1%} (target <= {TARGET_DROP:.0%}: {verdict})"
    )


if __name__ == "__main__":
    main()
