"""Admin UI page latency over HTTP (run by hand: .venv/bin/python bench/admin.py).

For each backend (SQLite, PostgreSQL): a fresh data dir (and for PostgreSQL a fresh database it
creates and drops); through the CLI, as an operator would, a credential, an admin user and a
catalog of `--offers` offers (the fallback, and personalized ones: 70% approved, priorities 0
to 10, one tag) in one collection behind one live decision (`offerbase catalog import`); then
the real server
(`offerbase serve`, one worker), a sign-in through the form, and `--samples` sequential requests
(one client, keep-alive, after 3 warm-up requests) of every page in PAGES, `--runs` times.
A page's time is the whole answer as a browser's request sees it on the loopback: the server
renders the HTML, nothing is cached between requests (Cache-Control: no-store).

Prints p50/p95 in milliseconds per page and run, the median of the runs, and the verdict
(p95 < 100 ms), then the medians of every backend as the Markdown table of docs/benchmarks.md
(with the date and the load averages, to paste). To time another page, add a line to PAGES (a
GET path, or a POST form; the CSRF token is added to every form) and its label to LABELS.
Options: --backends sqlite,postgresql  --runs 3  --offers 10000  --samples 50  --pg-url URL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx

from pgdb import fresh_database
from serving import credential_headers, free_port, machine, start_server, stop_server

WEB = "https://ns.adobe.com/xdm/channel-types/web"
PASSWORD = "bench password, long enough"
TARGET_MS = 100.0
SB = "/admin/sandbox/prod"
# (name, method, path, form or None): every page timed. `{offer}` is an offer id in the middle
# of the catalog. "simulation 50" runs a live decision over a collection of 50 offers (a usual
# decision); "simulation all" one over every offer of the catalog, the worst case: all are
# candidates, and the trace explains each one.
PAGES: list[tuple[str, str, str, dict[str, str] | None]] = [
    ("offers list", "GET", f"{SB}/offers", None),
    ("offers search", "GET", f"{SB}/offers?q=offer+77&status=approved&sort=priority", None),
    ("offer editor", "GET", f"{SB}/offers/edit/{{offer}}", None),
    ("new offer editor", "GET", f"{SB}/offers/new", None),
    ("decision editor", "GET", f"{SB}/decisions/edit/bench-decision", None),
    ("decisions list", "GET", f"{SB}/decisions", None),
    ("offer history", "GET", f"{SB}/history/personalized-offer/{{offer}}", None),
    ("simulation form", "GET", f"{SB}/simulation", None),
    (
        "simulation 50",
        "POST",
        f"{SB}/simulation",
        {"decision": "bench-small", "identity": "ann@example.com", "placement:bench-web": "on"},
    ),
    (
        "simulation all",
        "POST",
        f"{SB}/simulation",
        {"decision": "bench-decision", "identity": "ann@example.com", "placement:bench-web": "on"},
    ),
    ("reports", "GET", f"{SB}/reports", None),
]


# What docs/benchmarks.md calls each page and reference in its table.
LABELS = {
    "offers list": "Offers list",
    "offers search": "Offers search (`q=offer 77`, approved, by priority)",
    "offer editor": "Offer editor",
    "new offer editor": "New offer editor",
    "decision editor": "Decision builder (the 10,000-offer decision)",
    "decisions list": "Decisions list",
    "offer history": "History of an offer",
    "simulation form": "Simulation form",
    "simulation 50": "Simulation, a decision over 50 offers",
    "simulation all": "Simulation, a decision over all 10,000 offers",
    "reports": "Reports (30 days)",
    "API decision 50": "reference: API decision over 50 offers (trace, dry run)",
    "API decision all": "reference: API decision over 10,000 offers (trace, dry run)",
}


def offer(index: int) -> dict[str, Any]:
    return {
        "kind": "personalized-offer",
        "id": f"bench-offer-{index}",
        "body": {
            "name": f"Bench offer {index}",
            "status": "approved" if index % 10 < 7 else "draft",
            "selectionConstraint": {
                "startDate": "2022-06-10T00:30:00.000Z",
                "endDate": "2032-06-06T23:29:21.402Z",
                "profileConstraintType": "none",
            },
            "rank": {"priority": index % 11},
            "tags": ["bench-tag"],
            "representations": [
                {
                    "channel": WEB,
                    "placement": "bench-web",
                    "components": [
                        {"type": "html", "format": "text/html", "content": f"<p>{index}</p>"}
                    ],
                }
            ],
        },
    }


def catalog_document(offers: int) -> dict[str, Any]:
    web = {"channel": WEB, "placement": "bench-web"}
    entities: list[dict[str, Any]] = [
        {"kind": "tag", "id": "bench-tag", "body": {"name": "bench"}},
        {
            "kind": "placement",
            "id": "bench-web",
            "body": {"name": "Bench web", "channel": WEB, "componentType": "html"},
        },
        # The fallback offer counts in the guardrail of 10,000 offers a sandbox.
        *(offer(index) for index in range(offers - 1)),
        {
            "kind": "fallback-offer",
            "id": "bench-fallback",
            "body": {
                "name": "Bench fallback",
                "status": "approved",
                "representations": [
                    {**web, "components": [{"type": "html", "format": "text/html", "content": "-"}]}
                ],
            },
        },
        {
            "kind": "collection",
            "id": "bench-all",
            "body": {"name": "All bench offers", "filterType": "any-tags", "ids": ["bench-tag"]},
        },
        {
            "kind": "collection",
            "id": "bench-fifty",
            "body": {
                "name": "Fifty bench offers",
                "filterType": "offers",
                "ids": [f"bench-offer-{index}" for index in range(min(50, offers - 1))],
            },
        },
        {
            "kind": "decision",
            "id": "bench-small",
            "body": {
                "name": "Bench decision over 50 offers",
                "status": "live",
                "startDate": "2022-01-01T00:00:00.000Z",
                "endDate": "2035-01-01T00:00:00.000Z",
                "fallback": "bench-fallback",
                "criteria": [{"optionSelection": {"filter": "bench-fifty"}}],
            },
        },
        {
            "kind": "decision",
            "id": "bench-decision",
            "body": {
                "name": "Bench decision",
                "status": "live",
                "startDate": "2022-01-01T00:00:00.000Z",
                "endDate": "2035-01-01T00:00:00.000Z",
                "fallback": "bench-fallback",
                "criteria": [{"optionSelection": {"filter": "bench-all"}}],
            },
        },
    ]
    return {"format": "offerbase-catalog/1", "entities": entities}


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "offerbase", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"offerbase {args[0]} {args[1]}: {result.stderr}")
    return result.stdout


def prepare(env: dict[str, str], offers: int, workdir: Path) -> tuple[str, dict[str, str]]:
    """The org's credential, an admin user and the catalog, through the CLI: the user's email
    and the credential."""
    org = f"BENCH{uuid.uuid4().hex[:12].upper()}@AdobeOrg"
    credential = json.loads(cli(env, "credentials", "create", "--org", org, "--json"))
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    cli(
        env,
        *("users", "create", "--org", org, "--email", email, "--role", "admin"),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    document = workdir / "catalog.json"
    document.write_text(json.dumps(catalog_document(offers)))
    started = time.monotonic()
    cli(env, "catalog", "import", str(document), "--org", org)
    print(f"  imported {offers:,} offers in {time.monotonic() - started:.1f} s", flush=True)
    return email, credential


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# The reference, timed in the same run: the Decisioning API deciding what "simulation 50" and
# "simulation all" simulate, with the trace (a dry run), as JSON.
API_DECISIONS = {"API decision 50": "bench-small", "API decision all": "bench-decision"}


def time_pages(
    base: str, email: str, offers: int, samples: int, credential: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """(p50, p95) in ms of every page, and of the API decisions."""
    out: dict[str, tuple[float, float]] = {}
    headers = credential_headers(base, credential)
    with httpx.Client(base_url=base, timeout=60) as api:
        for name, decision in API_DECISIONS.items():
            body = {
                "xdm:propositionRequests": [
                    {"xdm:activityId": decision, "xdm:placementId": "bench-web"}
                ],
                "xdm:profiles": [
                    {"xdm:identityMap": {"Email": [{"xdm:id": "ann@example.com", "primary": True}]}}
                ],
                "xdm:dryRun": True,
                "offerbase:trace": True,
            }
            times = []
            for sample in range(3 + samples):
                started = time.perf_counter()
                response = api.post("/data/core/ods/decisions", json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.text[:300]
                if sample >= 3:
                    times.append(elapsed)
            out[name] = (statistics.median(times), percentile(times, 0.95))
    with httpx.Client(base_url=base, timeout=60) as http:
        signed = http.post("/admin/sign-in", data={"email": email, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        page = http.get(f"{SB}/offers")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, "no CSRF token on the offers page"
        for name, method, path, form in PAGES:
            target = path.replace("{offer}", f"bench-offer-{offers // 2}")
            data = None if form is None else {"csrf": csrf.group(1), **form}
            times = []
            for sample in range(3 + samples):
                started = time.perf_counter()
                response = http.request(method, target, data=data)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (
                    name,
                    response.status_code,
                    response.text[:300],
                )
                if sample >= 3:
                    times.append(elapsed)
            out[name] = (statistics.median(times), percentile(times, 0.95))
    return out


def run_backend(backend: str, args: argparse.Namespace) -> list[dict[str, tuple[float, float]]]:
    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="offerbase-bench-admin-"))
    database: AbstractContextManager[str | None] = (
        fresh_database(args.pg_url) if backend == "postgresql" else nullcontext(None)
    )
    try:
        with database as url:
            env = {**os.environ, "OFFERBASE_DATA_DIR": str(workdir / "data")}
            if url is not None:
                env["OFFERBASE_DATABASE_URL"] = url
            email, credential = prepare(env, args.offers, workdir)
            port = free_port()
            server = start_server(env, port)
            try:
                for index in range(args.runs):
                    server_url = f"http://127.0.0.1:{port}"
                    result = time_pages(server_url, email, args.offers, args.samples, credential)
                    runs.append(result)
                    print(f"  run {index + 1}: " + _line(result), flush=True)
            finally:
                stop_server(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return runs


def _line(result: dict[str, tuple[float, float]]) -> str:
    return "; ".join(f"{name} {p50:.1f}/{p95:.1f}" for name, (p50, p95) in result.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"machine: {machine()}; load average {load_before[0]:.2f} (shared machine)")
    print(
        f"catalog: {args.offers:,} offers, all in one live decision, 50 in another; "
        f"{args.samples} samples a page"
    )
    backends = args.backends.split(",")
    medians: dict[str, dict[str, tuple[float, float]]] = {}
    for backend in backends:
        print(f"{backend}: p50/p95 ms per page", flush=True)
        runs = run_backend(backend, args)
        print(f"{backend} median of {len(runs)} runs (ms):")
        worst = 0.0
        medians[backend] = {}
        for name in [*API_DECISIONS, *(page[0] for page in PAGES)]:
            p50 = statistics.median(run[name][0] for run in runs)
            p95 = statistics.median(run[name][1] for run in runs)
            medians[backend][name] = (p50, p95)
            if name not in API_DECISIONS:  # the verdict is the pages'
                worst = max(worst, p95)
            print(f"  {name:<16} p50 {p50:7.1f}  p95 {p95:7.1f}")
        for kind in ("50", "all"):
            ratio = statistics.median(
                run[f"simulation {kind}"][0] / run[f"API decision {kind}"][0] for run in runs
            )
            print(f"  simulation {kind} / API decision {kind} (p50, same run): {ratio:.2f}")
        verdict = "yes" if worst < TARGET_MS else "NO"
        print(f"{backend} every page p95 < {TARGET_MS:.0f} ms: {verdict} (worst {worst:.1f} ms)")
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f}")
    print_table(backends, medians, args, load_before, load_after)


def print_table(
    backends: list[str],
    medians: dict[str, dict[str, tuple[float, float]]],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    """The medians as docs/benchmarks.md's table, ready to paste."""
    title = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"\n{day}; {machine()}; load average (1, 5, 15 min) before "
        + ", ".join(f"{value:.1f}" for value in load_before)
        + ", after "
        + ", ".join(f"{value:.1f}" for value in load_after)
        + f"; --runs {args.runs} --samples {args.samples} --offers {args.offers}; "
        f"median of {args.runs} runs, milliseconds:\n"
    )
    heads = [f"{title.get(b, b)} {q}" for b in backends for q in ("p50", "p95")]
    print("| page | " + " | ".join(heads) + " |")
    print("|---" * (1 + len(heads)) + "|")
    for name in [*(page[0] for page in PAGES), *API_DECISIONS]:
        cells = []
        for backend in backends:
            p50, p95 = medians[backend][name]
            mark = "**" if p95 >= TARGET_MS and name not in API_DECISIONS else ""
            cells += [f"{p50:.1f}", f"{mark}{p95:.1f}{mark}"]
        label = LABELS.get(name, name).replace("10,000", f"{args.offers:,}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
