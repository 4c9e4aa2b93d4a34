"""A real `offerbase serve` for the synchronous tests that drive it from outside (the docs,
the browser and the JavaScript clients): one process on a free port, ready when `/health`
answers, stopped afterwards. The reliability suite has its own asynchronous harness with
workers, kill -9 and a TCP proxy (tests/reliability/harness.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(data_dir: Path | None = None) -> dict[str, str]:
    """This process's environment without any OFFERBASE_ setting (the test says what it wants)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFERBASE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if data_dir is not None:
        env["OFFERBASE_DATA_DIR"] = str(data_dir)
    return env


@contextlib.contextmanager
def serving(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, scheme: str = "http"
) -> Iterator[str]:
    """`offerbase serve --port P *args`; yields its base URL once `/health` answers 200."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "offerbase", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=env if env is not None else clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"offerbase serve exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                # Readiness only: a TLS server is probed without checking its certificate.
                if httpx.get(f"{base}/health", timeout=1, verify=False).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("offerbase serve did not answer /health")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def token_headers(base: str, credential: dict[str, str]) -> dict[str, str]:
    """The four Adobe headers, with a fresh token, for a credential as `offerbase credentials
    create --json` prints it (an org-wide one uses sandbox prod)."""
    response = httpx.post(
        f"{base}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": credential["client_id"],
        "x-gw-ims-org-id": credential["org"],
        "x-sandbox-name": credential["sandbox"] or "prod",
    }
