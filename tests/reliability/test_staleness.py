"""Staleness after idle, measured on a real `offerbase serve --workers 2`, SQLite and
PostgreSQL: the promise is read-your-writes on the worker that took the write, and every
worker within a second (docs/operations.md, "What Offerbase promises").

Each test warms both workers, leaves the sandbox idle for longer than the poll interval (the
case where a snapshot is oldest; or, under traffic, decides on both workers just before the
write, the case where the other worker has just checked and will not check again for a poll
interval), writes through one connection (one worker), then sends a burst of concurrent
decisions on new connections (so both workers answer) at once, and another burst a second
after the write was acknowledged. The second burst must see the write everywhere; the first
is measured, not asserted (on SQLite the other worker may still be within its poll
interval), and reported in the run's summary.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from reliability.harness import (
    DPS,
    ODS,
    Server,
    concurrent_health_probe,
    decision_body,
    offered,
)

BURST = 100
POLL_SECONDS = 0.5  # the default OFFERBASE_SNAPSHOT_POLL_SECONDS, set explicitly here
WEB = "https://ns.adobe.com/xdm/channel-types/web"
PATCH = {"Content-Type": "application/json-patch+json"}


async def _create(api: httpx.AsyncClient, path: str, entity_id: str, body: dict[str, Any]) -> None:
    response = await api.post(f"{DPS}/{path}/{entity_id}", json=body)
    assert response.status_code == 201, response.text


def _representation(content: str) -> list[dict[str, Any]]:
    components = [{"type": "html", "format": "text/html", "content": content}]
    return [{"channel": WEB, "placement": "web", "components": components}]


async def _catalog(api: httpx.AsyncClient, **gold: Any) -> None:
    """Offer `gold` (priority 9, plus `gold`'s fields) or else fallback `fb`, by decision `dec`."""
    await _create(
        api, "placements", "web", {"name": "web", "channel": WEB, "componentType": "html"}
    )
    offer = {"name": "gold", "status": "approved", "representations": _representation("gold")}
    await _create(api, "offers", "gold?offer-type=personalized", {**offer, **gold})
    fallback = {"name": "fb", "status": "approved", "representations": _representation("fb")}
    await _create(api, "offers", "fb?offer-type=fallback", fallback)
    collection = {"name": "all", "filterType": "offers", "ids": ["gold"]}
    await _create(api, "offer-collections", "all", collection)
    decision = {
        "name": "dec",
        "status": "live",
        "criteria": [{"optionSelection": {"filter": "all"}}],
        "fallback": "fb",
    }
    await _create(api, "offer-decisions", "dec", decision)


async def _burst(spread: httpx.AsyncClient, *, dry_run: bool = True) -> list[list[str]]:
    """BURST concurrent decisions, each on a new connection (either worker answers)."""
    body = decision_body("dec", "web", dry_run=dry_run)
    responses = await asyncio.gather(*(spread.post(ODS, json=body) for _ in range(BURST)))
    return [offered(response) for response in responses]


async def _started(make_server) -> Server:  # type: ignore[no-untyped-def]
    server: Server = make_server(
        workers=2, env={"OFFERBASE_SNAPSHOT_POLL_SECONDS": str(POLL_SECONDS)}
    )
    await server.start()
    return server


async def _write_and_bursts(
    server: Server, write: Any, *, dry_run: bool, idle: bool = True, **gold: Any
) -> tuple[list[list[str]], list[list[str]], list[str], float]:
    """Warm both workers, idle (or not), `write(api)` through one connection, decide on that
    same connection, burst at once, burst again a second after the write's 2xx. /health is
    probed all along, and must answer 200 throughout."""
    async with server.client(connections=1) as api, server.client(connections=0) as spread:
        await _catalog(api, **gold)
        await _burst(spread)  # both workers have a snapshot now (dry runs consume nothing)
        if idle:
            await asyncio.sleep(2 * POLL_SECONDS)  # every snapshot is past its interval
        else:
            await _burst(spread)  # under traffic: each worker checked its version just now
        async with concurrent_health_probe(server.base_url) as probe:
            await write(api)
            acknowledged = time.monotonic()
            same_worker = offered(await api.post(ODS, json=decision_body("dec", "web")))
            first = await _burst(spread, dry_run=dry_run)
            await asyncio.sleep(max(0.0, acknowledged + 1.0 - time.monotonic()))
            after_a_second = await _burst(spread, dry_run=dry_run)
    assert probe.failures == 0
    return first, after_a_second, same_worker, probe.max_latency


@pytest.mark.parametrize("idle", [True, False], ids=["after-idle", "under-traffic"])
async def test_an_archived_offer_is_never_served_a_second_after_the_write(
    make_server, idle: bool, record_property: pytest.RecordProperty
) -> None:  # type: ignore[no-untyped-def]
    server = await _started(make_server)

    async def archive(api: httpx.AsyncClient) -> None:
        response = await api.patch(
            f"{DPS}/offers/gold",
            json=[{"op": "replace", "path": "/status", "value": "archived"}],
            headers=PATCH,
        )
        assert response.status_code == 200, response.text

    first, after_a_second, same_worker, health = await _write_and_bursts(
        server, archive, dry_run=True, idle=idle
    )
    assert same_worker == ["fallback:fb"]  # read-your-writes on the worker that wrote
    assert after_a_second == [["fallback:fb"]] * BURST
    record_property(
        "measured",
        f"archived offer served {first.count(['gold'])}/{BURST} in the burst right after the "
        f"write; slowest /health meanwhile {health * 1000:.0f} ms",
    )


async def test_a_lowered_cap_holds_exactly_across_workers_a_second_after_the_write(
    make_server, record_property: pytest.RecordProperty
) -> None:  # type: ignore[no-untyped-def]
    """Global cap 1000 lowered to 15 after 10 deliveries: a second later, across both workers,
    the offer is delivered exactly up to the new cap (counters are consumed atomically)."""
    server = await _started(make_server)

    async def lower_cap(api: httpx.AsyncClient) -> None:
        real = decision_body("dec", "web", dry_run=False)
        for _ in range(10):
            assert offered(await api.post(ODS, json=real)) == ["gold"]
        response = await api.patch(
            f"{DPS}/offers/gold",
            json=[{"op": "replace", "path": "/cappingConstraint/globalCap", "value": 15}],
            headers=PATCH,
        )
        assert response.status_code == 200, response.text

    first, after_a_second, same_worker, _ = await _write_and_bursts(
        server, lower_cap, dry_run=False, cappingConstraint={"globalCap": 1000}
    )
    assert same_worker == ["gold"]  # a dry run: the 11th of 15
    served_first = first.count(["gold"])
    assert after_a_second.count(["gold"]) == max(0, 15 - 10 - served_first)
    record_property(
        "measured",
        f"gold delivered {served_first} times in the burst right after "
        "the cap was lowered to 5 remaining",
    )
