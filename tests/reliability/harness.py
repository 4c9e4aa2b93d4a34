"""The reliability suite's harness: a real `offerbase serve`, a client for it, a TCP proxy to
cut, and a `/health` probe to run alongside whatever a test does.

    async with fresh_database(backend, pg_admin_url) as url:      # None on SQLite
        server = Server(tmp_path / "data", database_url=url, workers=2)
        await server.start()                     # returns once /health answers 200
        async with server.client() as api:        # httpx client with a real token
            response = await api.post(...)
            async with concurrent_health_probe(server.base_url) as probe:
                ...                               # the work under test
            assert probe.failures == 0
        server.kill()                            # SIGKILL to the whole process group
        await server.start()                     # same port, same data dir or database

`TcpProxy` sits between the server and its database (`proxy.url_for(url)`), so a test can cut
that link (`cut()`: reset every connection, refuse new ones; `hang()`: keep them open and
forward nothing) and `restore()` it, without touching the shared PostgreSQL or Redis.

Everything here is bounded: every wait has a count or a timeout, every loop stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DPS = "/data/core/dps"
ODS = "/data/core/ods/decisions"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks; races are unlikely, not impossible)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def fresh_database(backend: str, pg_admin_url: str | None) -> AsyncIterator[str | None]:
    """A new, empty database for one test: None on SQLite (the server makes one in its data
    dir), a new PostgreSQL database otherwise (dropped afterwards, connections and all)."""
    if backend == "sqlite":
        yield None
        return
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    assert pg_admin_url is not None
    name = f"offerbase_rel_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_async_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield pg_admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@dataclass
class Server:
    """One `offerbase serve` process (and its workers), in a process group of its own.

    `env` adds or overrides environment variables (`OFFERBASE_SNAPSHOT_POLL_SECONDS`, ...).
    The port is chosen once, so a restarted server answers at the same `base_url`. Its output
    goes to `log_path`, which a failed start quotes."""

    data_dir: Path
    database_url: str | None = None
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"serve-{self.port}.log"

    def _environment(self) -> dict[str, str]:
        # Nothing of the caller's configuration leaks in: the test says what differs.
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("OFFERBASE_") and name != "PROMETHEUS_MULTIPROC_DIR"
        }
        env["OFFERBASE_DATA_DIR"] = str(self.data_dir)
        if self.database_url is not None:
            env["OFFERBASE_DATABASE_URL"] = self.database_url
        env.update(self.env)
        return env

    async def start(self, *, timeout: float = 60.0) -> None:
        """Start the server and return once `/health` answers 200 (fail after `timeout`)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "offerbase",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    "--log-level",
                    "warning",
                ],
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches every worker
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"serve exited: {self.log_path.read_text()[-4000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        self.kill()
        raise RuntimeError(f"serve did not answer /health: {self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (supervisor and workers), as a crash would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after 15 s."""
        self._signal(signal.SIGTERM, grace=15.0)

    def _signal(self, sig: signal.Signals, grace: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Workers left behind (none should be) die with the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def credential(self) -> dict[str, str]:
        """The credential that `serve` created on the empty database (credentials.json)."""
        loaded: dict[str, str] = json.loads((self.data_dir / "credentials.json").read_text())
        return loaded

    async def create_credential(self, org: str, sandbox: str = "prod") -> dict[str, str]:
        """`offerbase credentials create --json` against the server's database."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "offerbase", "credentials", "create", "--org", org, "--sandbox", sandbox),
            "--json",
            env=self._environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        created: dict[str, str] = json.loads(out)
        return created

    async def headers(self, credential: dict[str, str] | None = None) -> dict[str, str]:
        """Request headers with a fresh token for `credential` (default: `credential()`)."""
        credential = credential or self.credential()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            response = await http.post(
                "/ims/token/v3",
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
            # An org-wide credential (the one `serve` creates) has no sandbox: use prod.
            "x-sandbox-name": credential["sandbox"] or "prod",
        }

    @contextlib.asynccontextmanager
    async def client(
        self, credential: dict[str, str] | None = None, *, connections: int = 100
    ) -> AsyncIterator[httpx.AsyncClient]:
        """An httpx client for the server, authenticated. With `--workers N` each connection
        is accepted by one worker; `connections=0` opens a new connection per request (no
        keep-alive), so successive requests reach any worker."""
        headers = await self.headers(credential)
        limits = httpx.Limits(
            max_connections=max(connections, 1), max_keepalive_connections=connections
        )
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, limits=limits, timeout=30
        ) as http:
            yield http


# -- the /health probe ---------------------------------------------------------------------


@dataclass
class HealthProbe:
    """What `concurrent_health_probe` saw: one entry per probe request."""

    latencies: list[float] = field(default_factory=list)  # seconds, answered or not
    failures: int = 0  # answers other than 200, and requests that failed or timed out

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def max_latency(self) -> float:
        return max(self.latencies, default=0.0)


@contextlib.asynccontextmanager
async def concurrent_health_probe(
    base_url: str, *, interval: float = 0.02, timeout: float = 5.0, max_probes: int = 5000
) -> AsyncIterator[HealthProbe]:
    """`GET /health` in a loop, each on a new connection (so every worker is probed), while
    the block runs; the block gets the HealthProbe, complete when the block has ended. At
    least one probe is sent. Compare `max_latency` with a generous bound, never a tight one."""
    probe = HealthProbe()
    limits = httpx.Limits(max_keepalive_connections=0)
    stopping = asyncio.Event()

    async def loop(http: httpx.AsyncClient) -> None:
        while probe.count < max_probes:
            started = time.perf_counter()
            try:
                if (await http.get("/health")).status_code != 200:
                    probe.failures += 1
            except httpx.HTTPError:
                probe.failures += 1
            probe.latencies.append(time.perf_counter() - started)
            if stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:
        task = asyncio.create_task(loop(http))
        try:
            yield probe
        finally:
            stopping.set()
            await asyncio.wait_for(task, timeout + 5)


# -- a TCP proxy to cut ----------------------------------------------------------------------


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in the test's event loop, in front of `target` (host, port).

    `cut()`: reset every open connection and reset new ones at once (a server that went away).
    `hang()`: keep connections open but forward nothing, and accept new ones the same way (a
    network partition: only timeouts notice). `restore()`: forward again (connections cut or
    hung stay dead; clients must reconnect). Use `url_for(url)` for a database URL through it.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.state = "up"  # "up", "cut" or "hang"
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432)

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        if parts.password:
            user = f"{parts.username}:{parts.password}@"
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.state = "cut"
        for writer in list(self._links):
            writer.transport.abort()  # RST, not a polite FIN: the peer sees a reset
        self._links.clear()

    def hang(self) -> None:
        self.state = "hang"

    def restore(self) -> None:
        # Hung links stay open and silent: drop them, as a partition's survivors would be.
        if self.state == "hang":
            self.cut()
        self.state = "up"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.state == "cut":
            writer.transport.abort()
            return
        self._links.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._links.discard(writer)
            writer.transport.abort()
            return
        self._links.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                while self.state == "hang":  # hold the bytes back until cut or restored
                    await asyncio.sleep(0.05)
                if self.state == "cut" or sink.is_closing():
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._links.discard(sink)
            sink.transport.abort()


# -- small helpers for catalog writes and decisions ------------------------------------------


def decision_body(activity: str, placement: str, *, dry_run: bool = True) -> dict[str, Any]:
    """A Decisioning API request for one scope and a fixed profile."""
    return {
        "xdm:propositionRequests": [{"xdm:activityId": activity, "xdm:placementId": placement}],
        "xdm:profiles": [
            {"xdm:identityMap": {"Email": [{"xdm:id": "reliability@example.com", "primary": True}]}}
        ],
        "xdm:dryRun": dry_run,
    }


def offered(response: httpx.Response) -> list[str]:
    """The option ids a decision proposed (`fallback:<id>` for the fallback)."""
    assert response.status_code == 200, response.text
    proposition = response.json()["xdm:propositions"][0]
    if "xdm:options" in proposition:
        return [option["xdm:id"] for option in proposition["xdm:options"]]
    return ["fallback:" + proposition["xdm:fallback"]["xdm:id"]]
