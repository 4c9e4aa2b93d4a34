"""The harness's own parts that other tests rely on: the TCP proxy forwards, cuts, hangs and
restores; the /health probe counts what it saw."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from reliability.harness import TcpProxy, concurrent_health_probe, free_port


@contextlib.asynccontextmanager
async def _echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 2)
    finally:
        writer.close()


async def _dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Is the connection reset or closed (nothing echoes back)?"""
    try:
        writer.write(b"b")
        await writer.drain()
        return await asyncio.wait_for(reader.read(1), 2) == b""
    except ConnectionError:
        return True
    finally:
        writer.close()


async def test_the_proxy_forwards_cuts_hangs_and_restores() -> None:
    async with _echo_server() as port:
        proxy = TcpProxy("127.0.0.1", port)
        await proxy.start()
        try:
            assert await _round_trip(proxy.port) == b"ping"
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"a")
            assert await reader.read(1) == b"a"
            proxy.cut()  # the open connection is reset, new ones too
            assert await _dead(reader, writer)
            assert await _dead(*(await asyncio.open_connection("127.0.0.1", proxy.port)))
            proxy.hang()  # connections are accepted, nothing comes back
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_round_trip(proxy.port), 0.3)
            proxy.restore()
            assert await _round_trip(proxy.port) == b"ping"
            assert proxy.url_for("postgresql+asyncpg://postgres@127.0.0.1:5432/db") == (
                f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/db"
            )
        finally:
            await proxy.close()


async def test_the_health_probe_counts_failures() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with concurrent_health_probe(nobody, interval=0.01, timeout=1) as probe:
        await asyncio.sleep(0.05)
    assert probe.count >= 1
    assert probe.failures == probe.count
