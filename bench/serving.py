"""`offerbase serve` in a subprocess for the HTTP benchmarks, and a credential to call it with."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from pgdb import fresh_database


def machine() -> str:
    """What a result was measured on: cores, CPU model and Python."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def run_load_test(
    parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace, str | None], None]
) -> None:
    """The main of the wrk load tests: parse the arguments (the parser has --database-url),
    check that wrk is installed, and call `run(args, url)` with a fresh PostgreSQL database
    on the server of --database-url (dropped afterwards), or None for SQLite."""
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with ExitStack() as cleanup:
        database_url = args.database_url
        if database_url:
            database_url = cleanup.enter_context(fresh_database(database_url))
        run(args, database_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """Start the server and return once it answers /health (at most 60 s)."""
    command = [sys.executable, "-m", "offerbase", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError("offerbase serve exited during start-up")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("offerbase serve did not answer /health within 60 s")


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """CPU time (user + system) the server and its worker processes have used so far: the
    cost of a run is the difference, which other load on a shared machine barely changes."""
    pids = [process.pid]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def auth_headers(base_url: str, env: dict[str, str], org_prefix: str) -> dict[str, str]:
    """A new organization's credential (through the CLI, as an operator would), exchanged for
    a token: the four headers of every /data/core call."""
    org = f"{org_prefix}{uuid.uuid4().hex[:12].upper()}@AdobeOrg"
    out = subprocess.run(
        [sys.executable, "-m", "offerbase", "credentials", "create", "--org", org, "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    return credential_headers(base_url, json.loads(out.stdout))


def credential_headers(base_url: str, credential: dict[str, str]) -> dict[str, str]:
    """A token for `credential` (as `credentials create --json` prints it) and the request
    headers the APIs want; an organization-wide credential speaks for the sandbox "prod"."""
    token = httpx.post(
        f"{base_url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        },
    ).json()["access_token"]
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": credential["client_id"],
        "x-gw-ims-org-id": credential["org"],
        "x-sandbox-name": credential["sandbox"] or "prod",
    }
