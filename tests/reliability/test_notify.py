"""PostgreSQL LISTEN/NOTIFY on a real `offerbase serve --workers 2`, with the poll interval
set to an hour: only notifications can bring a write to the other worker. The database link
goes through a TCP proxy that the test cuts and restores: the listeners reconnect, and what
they missed meanwhile is re-checked."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reliability.harness import DPS, ODS, TcpProxy, concurrent_health_probe, decision_body, offered

WEB = "https://ns.adobe.com/xdm/channel-types/web"
TRIES = 100  # bounded waits: 100 tries, 0.1 s apart
# SQLite has no notifications; its workers poll (test_staleness.py).
pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _create(api: httpx.AsyncClient, path: str, entity_id: str, body: dict[str, Any]) -> None:
    response = await api.post(f"{DPS}/{path}/{entity_id}", json=body)
    assert response.status_code == 201, response.text


async def _catalog(api: httpx.AsyncClient) -> None:
    """gold (priority 9) over silver (5) over fallback fb, by decision `dec`."""
    components = [{"type": "html", "format": "text/html", "content": "x"}]
    representations = [{"channel": WEB, "placement": "web", "components": components}]
    await _create(
        api, "placements", "web", {"name": "web", "channel": WEB, "componentType": "html"}
    )
    for name, priority in (("gold", 9), ("silver", 5)):
        offer = {"name": name, "status": "approved", "rank": {"priority": priority}}
        await _create(
            api,
            "offers",
            f"{name}?offer-type=personalized",
            {**offer, "representations": representations},
        )
    fallback = {"name": "fb", "status": "approved", "representations": representations}
    await _create(api, "offers", "fb?offer-type=fallback", fallback)
    await _create(
        api,
        "offer-collections",
        "all",
        {"name": "all", "filterType": "offers", "ids": ["gold", "silver"]},
    )
    decision = {
        "name": "dec",
        "status": "live",
        "criteria": [{"optionSelection": {"filter": "all"}}],
        "fallback": "fb",
    }
    await _create(api, "offer-decisions", "dec", decision)


async def _archive(api: httpx.AsyncClient, offer: str) -> None:
    # Right after an outage a pooled connection may still be a dead one (how the API answers
    # then is the outage tests' subject, not this one's): a bounded retry.
    for _ in range(5):
        try:
            response = await api.patch(
                f"{DPS}/offers/{offer}",
                json=[{"op": "replace", "path": "/status", "value": "archived"}],
                headers={"Content-Type": "application/json-patch+json"},
            )
        except httpx.HTTPError:
            continue
        if response.status_code < 500:
            break
    assert response.status_code == 200, response.text


async def _everywhere(spread: httpx.AsyncClient, expected: list[str]) -> int:
    """Tries until 20 concurrent decisions on new connections (both workers) all offer
    `expected`; returns the number of tries (TRIES + 1 if they never did)."""
    body = decision_body("dec", "web")
    for attempt in range(1, TRIES + 1):
        responses = await asyncio.gather(*(spread.post(ODS, json=body) for _ in range(20)))
        if all(r.status_code == 200 and offered(r) == expected for r in responses):
            return attempt
        await asyncio.sleep(0.1)
    return TRIES + 1


async def test_notifications_reach_the_other_worker_and_survive_an_outage(
    make_server, database_url, record_property
) -> None:  # type: ignore[no-untyped-def]
    proxy = TcpProxy.for_url(database_url)
    await proxy.start()
    try:
        server = make_server(
            workers=2,
            database_url=proxy.url_for(database_url),
            env={"OFFERBASE_SNAPSHOT_POLL_SECONDS": "3600"},
        )
        await server.start()
        async with server.client(connections=1) as api, server.client(connections=0) as spread:
            await _catalog(api)
            assert await _everywhere(spread, ["gold"]) == 1
            await _archive(api, "gold")
            before = await _everywhere(spread, ["silver"])
            assert before <= TRIES

            proxy.cut()
            async with concurrent_health_probe(server.base_url) as probe:
                for _ in range(TRIES):
                    if probe.failures:
                        break
                    await asyncio.sleep(0.05)
            assert probe.failures > 0  # /health saw the database go away
            proxy.restore()
            for _ in range(TRIES):
                if (await spread.get("/health")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            await _archive(api, "silver")
            after = await _everywhere(spread, ["fallback:fb"])
            assert after <= TRIES
        record_property(
            "measured",
            f"tries (0.1 s apart) until both workers showed the write: {before} before the "
            f"outage, {after} after it",
        )
    finally:
        await proxy.close()
