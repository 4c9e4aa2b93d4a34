"""A real `offerbase serve` for the synchronous tests that drive it from outside (the docs,
the browser and the JavaScript clients): one process on a free port, ready when `/health`
answers, stopped afterwards. The reliability suite has its own asynchronous harness with
workers, kill -9 and a TCP proxy (tests/reliability/harness.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

if TYPE_CHECKING:  # playwright is imported only by the browser tests, after require_chromium
    from playwright.sync_api import Page, Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A fresh self-signed certificate (one day) for these host names or IP addresses, as
    `--ssl-certfile`/`--ssl-keyfile` take it: (certificate, key), PEM files in `directory`."""
    cert, key = directory / "dev.pem", directory / "dev-key.pem"
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={alt}"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    """Debian's Chromium, for the browser tests (Playwright with executable_path; never a
    download). Without it the calling test module is skipped with a notice, except in CI
    (`CI=true`), where it fails. Call it at module level, before importing playwright."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium: browser tests skipped", allow_module_level=True)
    return CHROMIUM


def create_user(env: dict[str, str], email: str, role: str, password: str, *sandboxes: str) -> None:
    """`offerbase users create` in the organization "default" (the one a fresh `serve` makes),
    the password on standard input as a user types it."""
    sandbox_args = [arg for name in sandboxes for arg in ("--sandbox", name)]
    created = subprocess.run(
        [sys.executable, "-m", "offerbase", "users", "create", "--org", "default"]
        + ["--email", email, "--role", role, *sandbox_args, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr


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


def token_headers(
    base: str, credential: dict[str, str], verify: ssl.SSLContext | bool = True
) -> dict[str, str]:
    """The four Adobe headers, with a fresh token, for a credential as `offerbase credentials
    create --json` prints it (an org-wide one uses sandbox prod). `verify` as httpx takes it
    (a context trusting a test's own certificate)."""
    response = httpx.post(
        f"{base}/ims/token/v3",
        verify=verify,
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


def offline(page: Page, base: str, refused: list[str]) -> Page:
    """Refuse (and record in `refused`) every request of `page` that does not go to the server
    under test at `base`: the pages must work with no CDN and no other host."""
    own = urlsplit(base).netloc

    def route(request_route: Route) -> None:
        if urlsplit(request_route.request.url).netloc == own:
            request_route.continue_()
        else:
            refused.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    return page
