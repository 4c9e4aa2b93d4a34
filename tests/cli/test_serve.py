"""`offerbase serve` and `offerbase credentials create` as an operator runs them: real
processes, real HTTP, two workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from real_server import (
    clean_environment,
    free_port,
    self_signed_certificate,
    serving,
    token_headers,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "seeds"
WEB = "https://ns.adobe.com/xdm/channel-types/web"


def offerbase(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offerbase", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.fixture(scope="module")
def server(
    database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str], Path]]:  # type: ignore[no-untyped-def]
    """One server (two workers) per backend, shared by this module's tests."""
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir)}
    if not database.is_sqlite:
        env["OFFERBASE_DATABASE_URL"] = database.url
    env.pop("OFFERBASE_SECRET_KEY", None)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "offerbase",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield base, env, data_dir
    finally:
        stop(process)


def catalog_client(
    base: str, env: dict[str, str], org: str
) -> tuple[dict[str, str], Callable[[str, str, dict[str, Any]], None]]:
    """A new credential of `org` (made through the CLI): its JSON request headers, and
    `create(path, entity_id, body)`, which creates an Offer Library entity and checks the 201."""
    credential = json.loads(
        offerbase("credentials", "create", "--org", org, "--json", env=env).stdout
    )
    headers = {**token_headers(base, credential), "Content-Type": "application/json"}

    def create(path: str, entity_id: str, body: dict[str, Any]) -> None:
        response = httpx.post(
            f"{base}/data/core/dps/{path}/{entity_id}", json=body, headers=headers
        )
        assert response.status_code == 201, response.text

    return headers, create


def wait_until_healthy(base: str, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    for _ in range(200):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"serve exited: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.1)
    pytest.fail("serve did not answer /health")


def stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_bootstrap_credentials_and_seed_walkthrough(server, database) -> None:  # type: ignore[no-untyped-def]
    base, env, data_dir = server
    assert httpx.get(f"{base}/openapi.json").status_code == 200
    credentials_file = data_dir / "credentials.json"
    if database.is_sqlite:
        # A fresh database: serve created org `default`, sandbox `prod` and one credential.
        assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
        first = json.loads(credentials_file.read_text())
        assert first["org"] == "default"
        # The first credential is an admin one, so it may use every sandbox of its org.
        assert first["sandbox"] is None
        assert first["admin"] is True
        token_headers(base, first)

    # A credential created while the server runs works at once, in a new org and sandbox.
    created = offerbase(
        "credentials", "create", "--org", "ACME@AdobeOrg", "--sandbox", "stage", "--json", env=env
    )
    credential = json.loads(created.stdout)
    assert set(credential) == {"client_id", "client_secret", "org", "sandbox", "admin"}
    assert credential["sandbox"] == "stage"
    assert credential["admin"] is False
    assert credential["org"] == "ACME@AdobeOrg"
    headers = token_headers(base, credential)
    headers["Content-Type"] = "application/json"
    dps = f"{base}/data/core/dps"

    placement = httpx.post(
        f"{dps}/placements/offerPlacement1234",
        content=(FIXTURES / "placement-web.json").read_text(),
        headers=headers,
    )
    assert placement.status_code == 201, placement.text
    created_offer = httpx.post(
        f"{dps}/offers/fallbackOffer1234?offer-type=fallback",
        content=(FIXTURES / "fallback-offer-create.json").read_text(),
        headers=headers,
    )
    assert created_offer.status_code == 201, created_offer.text
    double_space = {**headers, "Authorization": headers["Authorization"].replace(" ", "  ", 1)}
    patched = httpx.patch(
        f"{dps}/offers/fallbackOffer1234?offer-type=fallback",
        content=(FIXTURES / "fallback-offer-patch.json").read_text(),
        headers=double_space,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["etag"] == 2
    listed = httpx.get(f"{dps}/offers?offer-type=fallback&property=name~Updated.*", headers=headers)
    assert listed.json()["total"] == 1


def test_a_datastream_created_while_the_server_runs_is_served(server) -> None:  # type: ignore[no-untyped-def]
    base, env, _ = server
    credential = json.loads(
        offerbase("credentials", "create", "--org", "EDGE@AdobeOrg", "--json", env=env).stdout
    )
    headers = token_headers(base, credential)
    created = json.loads(
        offerbase(
            "datastreams",
            "create",
            "--org",
            "EDGE@AdobeOrg",
            "--origin",
            "https://shop.example",
            "--json",
            env=env,
        ).stdout
    )
    assert (created["org"], created["sandbox"], created["origins"]) == (
        "EDGE@AdobeOrg",
        "prod",
        ["https://shop.example"],
    )
    url = f"{base}/data/core/edge/datastreams/{created['id']}"
    for _ in range(4):  # both workers: the answer does not depend on which one takes it
        read = httpx.get(url, headers=headers)
        assert (read.status_code, read.json()) == (200, created)
    offerbase("datastreams", "delete", created["id"], "--org", "EDGE@AdobeOrg", env=env)
    assert httpx.get(url, headers=headers).status_code == 404


def test_catalog_changes_reach_every_worker_within_a_second(server) -> None:  # type: ignore[no-untyped-def]
    base, env, _ = server
    headers, create = catalog_client(base, env, "FRESH@AdobeOrg")
    component = {"type": "html", "format": "text/html", "content": "x"}

    create("placements", "web", {"name": "web", "channel": WEB, "componentType": "html"})
    for offer_id, priority in (("first", 9), ("second", 1)):
        create(
            "offers",
            f"{offer_id}?offer-type=personalized",
            {
                "name": offer_id,
                "status": "approved",
                "rank": {"priority": priority},
                "representations": [
                    {"channel": WEB, "placement": "web", "components": [component]}
                ],
            },
        )
    create(
        "offer-collections",
        "all",
        {"name": "all", "filterType": "offers", "ids": ["first", "second"]},
    )
    create(
        "offer-decisions",
        "dec",
        {"name": "dec", "status": "live", "criteria": [{"optionSelection": {"filter": "all"}}]},
    )
    body = {
        "xdm:propositionRequests": [{"xdm:activityId": "dec", "xdm:placementId": "web"}],
        "xdm:profiles": [{"xdm:identityMap": {"Email": [{"xdm:id": "a@b.c", "primary": True}]}}],
        "xdm:dryRun": True,
    }

    def chosen_ids(count: int) -> set[str]:
        # Separate connections, so both workers answer some of them.
        ids = set()
        for _ in range(count):
            response = httpx.post(f"{base}/data/core/ods/decisions", json=body, headers=headers)
            assert response.status_code == 200, response.text
            ids.add(response.json()["xdm:propositions"][0]["xdm:options"][0]["xdm:id"])
        return ids

    time.sleep(1.0)
    assert chosen_ids(20) == {"first"}
    archived = httpx.patch(
        f"{base}/data/core/dps/offers/first",
        json=[{"op": "replace", "path": "/status", "value": "archived"}],
        headers=headers,
    )
    assert archived.status_code == 200
    time.sleep(1.0)  # the freshness promise: a change is used within one second
    assert chosen_ids(20) == {"second"}

    # A real (not dry-run) decision is recorded by the worker's background event writer.
    real = {**body, "xdm:dryRun": False}
    response = httpx.post(f"{base}/data/core/ods/decisions", json=real, headers=headers)
    proposition_id = response.json()["xdm:propositionId"]
    events: list[dict] = []  # type: ignore[type-arg]
    for _ in range(50):
        listed = httpx.get(f"{base}/data/core/ods/decision-events", headers=headers)
        events = listed.json()["results"]
        if events:
            break
        time.sleep(0.1)
    assert [e["xdm:propositionId"] for e in events] == [proposition_id]


def health_requests(base: str) -> float:
    """`offerbase_http_requests_total` for GET /health 200, from one scrape (a new connection,
    so successive scrapes reach either worker)."""
    text = httpx.get(f"{base}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "offerbase_http_requests_total" and sample.labels == {
                "method": "GET",
                "route": "/health",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_metrics_add_up_over_workers(server) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = server
    before = health_requests(base)
    for _ in range(40):
        assert httpx.get(f"{base}/health").status_code == 200  # a new connection each
    # Whichever worker answers the scrape, it reports the sum over both.
    assert [health_requests(base) - before for _ in range(6)] == [40] * 6


def test_structured_logs_and_access_log(tmp_path: Path) -> None:
    """Logs go to stderr as JSON, one access line per request by route template; at debug
    level no log line and no banner carries a secret, an identity or profile data; the data
    dir and the SQLite files are readable by their owner only."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir)}
    for name in ("OFFERBASE_DATABASE_URL", "OFFERBASE_SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    port = free_port()
    stderr_path, stdout_path = tmp_path / "stderr.log", tmp_path / "stdout.log"
    identity, marker = "person-7f3e9a@example.com", "private-profile-value-51b2"
    with stderr_path.open("w") as stderr, stdout_path.open("w") as stdout:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "offerbase", "serve", "--port", str(port)),
                *("--access-log", "--log-level", "debug"),
            ],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(base, process)
            response = httpx.get(f"{base}/no/such/page", headers={"x-request-id": "rid-log-1"})
            assert response.status_code == 404
            credential = json.loads((data_dir / "credentials.json").read_text())
            headers = token_headers(base, credential)
            profile = f"{base}/data/core/ups/profiles/email/{identity}"
            written = httpx.put(profile, json={"note": marker}, headers=headers)
            assert written.status_code == 201, written.text
            assert httpx.get(profile, headers=headers).json()["note"] == marker
            modes = {
                path.name: stat.S_IMODE(path.stat().st_mode)
                for path in (data_dir, *data_dir.iterdir())
                if path.name != "prometheus"
            }
        finally:
            stop(process)
    assert modes == {
        "data": 0o700,
        "offerbase.db": 0o600,
        "offerbase.db-wal": 0o600,
        "offerbase.db-shm": 0o600,
        "secret.key": 0o600,
        "credentials.json": 0o600,
    }
    # The first-start banner names the credential and the file with its secret, not the secret.
    banner = stdout_path.read_text()
    # It says where the data is, and that it created the organization.
    assert f"Data directory: {data_dir.resolve()}\n" in banner
    assert f"Database: sqlite+aiosqlite:///{(data_dir / 'offerbase.db').resolve()}\n" in banner
    assert "Created organization 'default'" in banner
    assert credential["client_id"] in banner
    assert str((data_dir / "credentials.json").resolve()) in banner
    logged = stderr_path.read_text()
    for private in (credential["client_secret"], identity, marker):
        assert private not in banner + logged
    # Every line is one JSON object (stderr is not a terminal), uvicorn's included.
    records = [json.loads(line) for line in logged.splitlines() if line]
    assert any(
        r.get("logger") == "uvicorn.error" and "startup complete" in r["event"] for r in records
    )
    # One line per request: ours, not uvicorn's access log as well.
    assert not any(r.get("logger") == "uvicorn.access" for r in records)
    (request,) = [r for r in records if r.get("request_id") == "rid-log-1"]
    assert request["event"] == "request"
    assert request["logger"] == "offerbase.access"
    assert request["level"] == "info"
    assert request["method"] == "GET"
    assert "path" not in request
    assert request["route"] == "unmatched"
    assert request["status"] == 404
    assert request["duration_ms"] >= 0
    assert request["timestamp"].endswith("Z")
    profile_requests = [r for r in records if r.get("route", "").startswith("/data/core/ups")]
    assert [(r["method"], r["route"]) for r in profile_requests] == [
        ("PUT", "/data/core/ups/profiles/{namespace}/{identity:path}"),
        ("GET", "/data/core/ups/profiles/{namespace}/{identity:path}"),
    ]


def _refused(base: str, request_line: bytes, header_line: bytes, repeat: int) -> tuple[bytes, int]:
    """Send a request line and up to `repeat` copies of a header line over a socket, reading as
    it goes: the answer of a server that refuses the head, and how many copies were sent."""
    host, port = base.removeprefix("http://").split(":")
    answer, sent = b"", 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(request_line + b"Host: x\r\n")
            for sent in range(repeat):  # noqa: B007 - `sent` is the result
                if select.select([sock], [], [], 0)[0]:
                    break  # answered already: stop sending
                sock.sendall(header_line)
            else:
                sent = repeat
                sock.sendall(b"\r\n")
            while not _complete(answer) and (chunk := sock.recv(65536)):
                answer += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return answer, sent


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head)
    return bool(found and length and len(body) >= int(length.group(1)))


def test_the_server_refuses_an_oversized_head_while_parsing_it(server) -> None:  # type: ignore[no-untyped-def]
    from offerbase.api.http_limits import MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_TARGET_BYTES

    base, _env, _data_dir = server
    get = b"GET /health HTTP/1.1\r\n"
    # 64 MB of headers: httptools alone would buffer them all before the app could refuse
    # them; the server answers 431 while the client is still sending, then closes.
    answer, sent = _refused(base, get, b"X-Fill: " + b"a" * 65_000 + b"\r\n", 1000)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 1000
    assert b"content-type: application/problem+json" in answer
    assert f"larger than {MAX_HEADER_BYTES} bytes".encode() in answer
    answer, _ = _refused(base, get, b"X-H: 1\r\n", MAX_HEADER_COUNT + 10)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    target = b"GET /health?x=" + b"a" * MAX_TARGET_BYTES + b" HTTP/1.1\r\n"
    answer, _ = _refused(base, target, b"", 0)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    # The workers still answer, and an ordinary head passes.
    assert httpx.get(f"{base}/health", headers={"x-fill": "a" * 8000}).status_code == 200


def test_serve_speaks_https_with_a_certificate(tmp_path: Path) -> None:
    """`--ssl-certfile`/`--ssl-keyfile`: HTTPS for development (the Web SDK speaks HTTPS only)."""
    cert, key = self_signed_certificate(tmp_path, "127.0.0.1")
    tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    with serving(*tls, env=clean_environment(tmp_path / "data"), scheme="https") as base:
        trusted = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{base}/health", verify=trusted).status_code == 200
        # Plain HTTP on the same port is not served.
        with pytest.raises(httpx.HTTPError):
            httpx.get(base.replace("https:", "http:") + "/health", timeout=5)


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from offerbase.cli import app

    cert = tmp_path / "dev.pem"
    cert.write_text("not used")
    result = CliRunner().invoke(
        app, ["serve", "--data-dir", str(tmp_path / "d"), "--ssl-certfile", str(cert)]
    )
    assert result.exit_code == 2
    assert "--ssl-keyfile" in result.output
    missing = CliRunner().invoke(
        app,
        ["serve", "--data-dir", str(tmp_path / "d")]
        + ["--ssl-certfile", str(cert), "--ssl-keyfile", str(tmp_path / "nope.pem")],
    )
    assert missing.exit_code == 2
    assert "no such file" in missing.output


def test_displays_counted_by_one_worker_cap_the_offer_on_every_worker(server) -> None:  # type: ignore[no-untyped-def]
    """Caps by event kind through two real workers: display events (each sent twice, all at
    once, over many connections) and decisions in parallel; once the cap's displays are
    answered, no worker proposes the offer (docs/decisioning.md, "Caps by event kind")."""
    import asyncio
    import base64

    base, env, _ = server
    org = "IMPRESSIONS@AdobeOrg"
    headers, create = catalog_client(base, env, org)
    component = {"type": "html", "format": "text/html", "content": "x"}

    create("placements", "web", {"name": "web", "channel": WEB, "componentType": "html"})
    impression_cap = {"limit": 3, "scope": "global", "entity": "offer", "events": ["impression"]}
    for offer_id, priority, caps in (("capped", 9, [impression_cap]), ("plain", 1, [])):
        create(
            "offers",
            f"{offer_id}?offer-type=personalized",
            {
                "name": offer_id,
                "status": "approved",
                "rank": {"priority": priority},
                "representations": [
                    {"channel": WEB, "placement": "web", "components": [component]}
                ],
                "frequencyCappingConstraints": caps,
            },
        )
    create(
        "offer-collections",
        "all",
        {"name": "all", "filterType": "offers", "ids": ["capped", "plain"]},
    )
    create(
        "offer-decisions",
        "dec",
        {"name": "dec", "status": "live", "criteria": [{"optionSelection": {"filter": "all"}}]},
    )
    stream = json.loads(offerbase("datastreams", "create", "--org", org, "--json", env=env).stdout)
    scope = base64.b64encode(b'{"activityId":"dec","placementId":"web"}').decode()

    def event(visitor: str, **xdm: object) -> dict:  # type: ignore[type-arg]
        return {"event": {"xdm": {"identityMap": {"FPID": [{"id": visitor}]}, **xdm}}}

    def display(index: int) -> dict:  # type: ignore[type-arg]
        decisioning = {
            "propositions": [{"id": f"p{index}", "scope": scope, "items": [{"id": "capped"}]}],
            "propositionEventType": {"display": 1},
        }
        return event(f"v{index}", _id=f"d{index}", _experience={"decisioning": decisioning})

    async def run() -> list[tuple[int, str]]:
        answered = 0
        proposals: list[tuple[int, str]] = []
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

            async def send(index: int) -> None:
                nonlocal answered
                sent = await http.post(
                    f"/ee/v2/collect?dataStreamId={stream['id']}", json=display(index)
                )
                assert sent.status_code == 204, sent.text
                answered += 1

            async def decide(index: int) -> None:
                seen = answered
                body = {
                    **event(f"w{index}", eventType="pageView"),
                    "query": {"personalization": {"decisionScopes": [scope]}},
                }
                got = await http.post(f"/ee/v2/interact?dataStreamId={stream['id']}", json=body)
                assert got.status_code == 200, got.text
                (handle,) = [
                    h for h in got.json()["handle"] if h["type"] == "personalization:decisions"
                ]
                proposals.append((seen, handle["payload"][0]["items"][0]["id"]))

            work = []
            for index in range(16):
                work += [send(index), decide(index), send(index), decide(index + 100)]
            await asyncio.gather(*work)
            for index in range(10):  # afterwards, new connections: both workers
                await decide(1000 + index)
        return proposals

    proposals = asyncio.run(run())
    # 3 distinct displays are counted once 2 * 3 - 1 sends were answered (each is sent twice)
    late = [offer for seen, offer in proposals if seen >= 5]
    assert late
    assert "capped" not in late
    assert proposals[-10:] == [(32, "plain")] * 10
