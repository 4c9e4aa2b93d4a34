"""Durability: every write that was acknowledged (2xx) survives `kill -9` of the whole server
(supervisor and both workers) in the middle of concurrent writes, on SQLite and PostgreSQL.

Several clients create placements and offers as fast as the server answers; once a fixed
number of writes has been acknowledged, the process group gets SIGKILL while requests are in
flight. After a restart on the same data, each acknowledged entity reads back equal to what
its 2xx answered. Writes that got no answer may or may not exist; none may exist in part.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from reliability.harness import DPS, Server

CLIENTS = 6
KILL_AFTER = 60  # acknowledged writes before the SIGKILL; bounds the test by count
WEB = "https://ns.adobe.com/xdm/channel-types/web"


def _placement(name: str) -> tuple[str, dict[str, Any]]:
    return f"{DPS}/placements/{name}", {"name": name, "channel": WEB, "componentType": "html"}


def _offer(name: str) -> tuple[str, dict[str, Any]]:
    return f"{DPS}/offers/{name}?offer-type=personalized", {
        "name": name,
        "status": "approved",
        "rank": {"priority": 1},
        "representations": [
            {
                "channel": WEB,
                "placement": "web",
                "components": [{"type": "html", "format": "text/html", "content": name}],
            }
        ],
    }


# URL -> (the body sent, the 201's body)
Acked = dict[str, tuple[dict[str, Any], dict[str, Any]]]


async def _write_until_killed(
    api: httpx.AsyncClient, client: int, acked: Acked, enough: asyncio.Event
) -> int:
    """Create entities one after another until a request fails (the server is gone); record
    each acknowledged one. Returns how many requests got no answer (0 or 1)."""
    for index in range(10_000):  # bounded; the kill ends it long before
        url, body = (_placement if index % 2 else _offer)(f"c{client}-{index}")
        try:
            response = await api.post(url, json=body)
        except httpx.HTTPError:
            return 1
        assert response.status_code == 201, response.text
        acked[url] = (body, response.json())
        if len(acked) >= KILL_AFTER:
            enough.set()
    return 0


async def test_acknowledged_writes_survive_kill_9(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(workers=2)
    await server.start()
    acked: Acked = {}
    async with server.client() as api:
        url, body = _placement("web")
        response = await api.post(url, json=body)
        assert response.status_code == 201, response.text
        acked[url] = (body, response.json())
        enough = asyncio.Event()
        writers = [
            asyncio.create_task(_write_until_killed(api, client, acked, enough))
            for client in range(CLIENTS)
        ]
        await asyncio.wait_for(enough.wait(), 60)
        server.kill()  # requests are in flight on every client
        unanswered = sum(await asyncio.gather(*writers))
    assert unanswered == CLIENTS  # every client was cut off mid-stream

    await server.start()
    async with server.client() as api:
        for url, (sent, answered) in acked.items():
            response = await api.get(url.split("?")[0])
            assert response.status_code == 200, f"{url}: acknowledged, then lost"
            stored = response.json()
            # The 201 was a receipt (id, etag, who, when); the entity is what was sent.
            assert (stored["id"], stored["etag"]) == (answered["id"], answered["etag"])
            assert {key: stored[key] for key in sent} == sent
