"""HTTP load test of the Decisioning API against `offerbase serve --workers 2`.

Run by hand (needs `wrk`, Debian package `wrk`):

    .venv/bin/python bench/load_decide.py [--database-url postgresql+asyncpg://...] \
        [--connections 32] [--duration 15] [--offers 100] [--caps] [--durable-events]

It starts the real server in a subprocess (fresh data dir; SQLite unless --database-url),
creates a catalog through the Offer Library API, then runs wrk at the same concurrency against
`GET /health` and `POST /data/core/ods/decisions`, on this same machine (the load generator
shares the cores), and prints requests/s and latency percentiles for both, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import httpx

from serving import auth_headers, free_port, machine, run_load_test, start_server, stop_server

WEB = "https://ns.adobe.com/xdm/channel-types/web"
PROFILE = {"loyalty": {"points": 450}, "homeAddress": {"country": "US"}}


def build_catalog(base: str, headers: dict[str, str], offers: int, caps: bool) -> None:
    dps = f"{base}/data/core/dps"
    with httpx.Client(headers=headers, timeout=30) as http:

        def post(path: str, body: dict) -> None:  # type: ignore[type-arg]
            response = http.post(f"{dps}/{path}", json=body)
            assert response.status_code == 201, response.text

        post("placements/web", {"name": "web", "channel": WEB, "componentType": "html"})
        for r in range(10):
            post(
                f"offer-rules/rule{r}",
                {
                    "name": f"rule{r}",
                    "condition": {
                        "type": "PQL",
                        "format": "pql/text",
                        "value": f"profile.loyalty.points >= {r * 100} "
                        'and profile.homeAddress.country = "US"',
                    },
                },
            )
        ids = []
        for i in range(offers):
            body = {
                "name": f"offer {i}",
                "status": "approved",
                "rank": {"priority": i % 50},
                "representations": [
                    {
                        "channel": WEB,
                        "placement": "web",
                        "components": [
                            {"type": "html", "format": "text/html", "content": f"<p>Offer {i}</p>"}
                        ],
                    }
                ],
                "selectionConstraint": {
                    "startDate": "2020-01-01T00:00:00Z",
                    "endDate": "2040-01-01T00:00:00Z",
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": f"rule{i % 10}",
                },
            }
            if caps and i % 10 == 0:
                body["frequencyCappingConstraints"] = [
                    {"limit": 1_000_000_000, "scope": "global", "entity": "offer"}
                ]
            post(f"offers/offer{i}?offer-type=personalized", body)
            ids.append(f"offer{i}")
        post(
            "offers/fallback?offer-type=fallback",
            {
                "name": "fallback",
                "status": "approved",
                "representations": [
                    {
                        "channel": WEB,
                        "placement": "web",
                        "components": [
                            {"type": "html", "format": "text/html", "content": "<p>fallback</p>"}
                        ],
                    }
                ],
            },
        )
        post("offer-collections/all", {"name": "all", "filterType": "offers", "ids": ids})
        post(
            "offer-decisions/dec",
            {
                "name": "dec",
                "status": "live",
                "fallback": "fallback",
                "criteria": [{"optionSelection": {"filter": "all"}}],
            },
        )
        # One profile stored, looked up by identity on every decision.
        response = http.put(
            f"{base}/data/core/ups/profiles/Email/load@example.com",
            json=PROFILE,
        )
        assert response.status_code in (200, 201), response.text


WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
"""


def run_wrk(
    url: str,
    method: str,
    body: str,
    headers: dict[str, str],
    connections: int,
    duration: int,
    script: str | None = None,
) -> dict[str, float]:
    """wrk's figures of `duration` seconds of requests; `script` (Lua) replaces the request of
    method, body and headers (bench/ingest_effect.py's paced stream of distinct events)."""
    lua_headers = "\n".join(f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items())
    if script is None:
        script = WRK_SCRIPT.format(method=method, body=json.dumps(body), headers=lua_headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            "-s",
            handle.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    return parse_wrk(output)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict[str, float]:
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+\w+)", output)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--offers", type=int, default=100)
    parser.add_argument("--caps", action="store_true", help="frequency caps on 10%% of offers")
    parser.add_argument("--redis-url", help="capping counters in Redis (OFFERBASE_REDIS_URL)")
    parser.add_argument("--dry-run", action="store_true", help="xdm:dryRun: no events, no counting")
    parser.add_argument(
        "--durable-events",
        action="store_true",
        help="OFFERBASE_EVENTS_DURABLE=true: each decision waits for its event's commit",
    )
    parser.add_argument(
        "--inline-profile",
        action="store_true",
        help="send the profile in the request (offerbase:profile): no profile read",
    )
    run_load_test(parser, run)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="offerbase-load-"))
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir)}
    if database_url:
        env["OFFERBASE_DATABASE_URL"] = database_url
    if args.redis_url:
        env["OFFERBASE_REDIS_URL"] = args.redis_url
    env["OFFERBASE_EVENTS_DURABLE"] = "true" if args.durable_events else "false"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, args.workers)
    try:
        headers = {
            **auth_headers(base, env, "LOAD"),
            "Content-Type": "application/json",
        }
        build_catalog(base, headers, args.offers, args.caps)
        body = json.dumps(
            {
                "xdm:propositionRequests": [{"xdm:activityId": "dec", "xdm:placementId": "web"}],
                "xdm:profiles": [
                    {
                        "xdm:identityMap": {
                            "Email": [{"xdm:id": "load@example.com", "primary": True}]
                        },
                        **({"offerbase:profile": PROFILE} if args.inline_profile else {}),
                    }
                ],
                "xdm:responseFormat": {"xdm:includeContent": True},
                "xdm:dryRun": args.dry_run,
            }
        )
        check = httpx.post(f"{base}/data/core/ods/decisions", content=body, headers=headers)
        assert check.status_code == 200, check.text
        run_wrk(f"{base}/health", "GET", "", {}, args.connections, 3)  # warm-up
        health = run_wrk(f"{base}/health", "GET", "", {}, args.connections, args.duration)
        run_wrk(f"{base}/data/core/ods/decisions", "POST", body, headers, args.connections, 3)
        decide = run_wrk(
            f"{base}/data/core/ods/decisions",
            "POST",
            body,
            headers,
            args.connections,
            args.duration,
        )
    finally:
        stop_server(server)
    print(f"machine: {machine()}")
    print(
        f"database: {args.database_url or 'sqlite'}; workers {args.workers}; "
        f"{args.connections} connections; {args.duration}s; offers {args.offers}; "
        f"caps {args.caps}; durable events {args.durable_events}"
    )
    for name, figures in (("GET /health", health), ("POST /decisions", decide)):
        print(
            f"{name:18} {figures['rps']:8.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
            f"p90 {figures['p90_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
            f"non-2xx {figures['non_2xx']:.0f}"
        )
    print(f"decisions / health throughput ratio: {decide['rps'] / health['rps']:.2f}")


if __name__ == "__main__":
    main()
