"""Requests built to make the server work without bound, sent to a real one-worker
`offerbase serve` (one event loop: anything that blocked it would stall every request) while a
`/health` probe runs beside them. Each must be refused or answered correctly, and `/health`
must keep answering (every probe within its 5 s timeout; the slowest is reported in the run's
"measured" section). Before the bounds (issue 9) each of these took the server seconds to
forever: a backtracking regex, a JSON Patch that doubles a value twenty times, a profile
lookup over thousands of identities.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reliability.harness import DPS, ODS, Server, concurrent_health_probe

COPIES = 6  # of each hostile request, at once
EVIL = "(a+)+$"  # exponential on a backtracking engine against "aaa…b"
AAAB = "a" * 5000 + "b"


async def _hostile(api: httpx.AsyncClient) -> list[tuple[str, int]]:
    """(what, status) of every hostile request, all sent concurrently."""
    tag = await api.post(f"{DPS}/tags/victim", json={"name": "victim", "description": AAAB})
    assert tag.status_code == 201, tag.text
    seed = {"name": "amplified", "characteristics": {"k": "x" * 10_000}}
    offer = await api.post(f"{DPS}/offers/amplified?offer-type=personalized", json=seed)
    assert offer.status_code == 201, offer.text
    # Each copy doubles /characteristics: unbounded, 20 of them would be 10 GB.
    doubling = [
        {"op": "copy", "from": "/characteristics", "path": f"/characteristics/c{i}"}
        for i in range(20)
    ]
    identities = {"Email": [{"xdm:id": f"p{i}@example.com"} for i in range(20_000)]}
    decision = {
        "xdm:propositionRequests": [{"xdm:activityId": "none", "xdm:placementId": "none"}],
        "xdm:profiles": [{"xdm:identityMap": identities}],
    }
    profile = {"identityMap": {"Email": [{"id": f"p{i}@example.com"} for i in range(5_000)]}}

    async def send(what: str, method: str, url: str, **kwargs: Any) -> tuple[str, int]:
        response = await api.request(method, url, **kwargs)
        return what, response.status_code

    calls = []
    for _ in range(COPIES):
        calls += [
            send("regex list", "GET", f"{DPS}/tags", params={"property": f"description~{EVIL}"}),
            send(
                "patch amplification",
                "PATCH",
                f"{DPS}/offers/amplified?offer-type=personalized",
                json=doubling,
                headers={"Content-Type": "application/json-patch+json"},
            ),
            send("identities in a decision", "POST", ODS, json=decision),
            send("identities in a profile", "PUT", "/data/core/ups/profiles/Email/x", json=profile),
        ]
    return list(await asyncio.gather(*calls))


async def test_hostile_requests_are_cheap_and_health_stays_up(
    make_server: Any, record_property: Any
) -> None:
    server: Server = make_server(workers=1)
    await server.start()
    async with server.client(connections=50) as api:
        async with concurrent_health_probe(server.base_url) as probe:
            answers = await _hostile(api)
        # The regex ran (on RE2) and matched nothing; the others were refused, nothing written.
        assert sorted(set(answers)) == [
            ("identities in a decision", 422),
            ("identities in a profile", 400),
            ("patch amplification", 413),
            ("regex list", 200),
        ]
        listed = await api.get(f"{DPS}/tags", params={"property": f"description~{EVIL}"})
        assert listed.json()["total"] == 0
        offer = await api.get(f"{DPS}/offers/amplified?offer-type=personalized")
        assert offer.json()["characteristics"] == {"k": "x" * 10_000}
    assert probe.count > 0
    assert probe.failures == 0, f"{probe.failures} of {probe.count} /health probes failed"
    record_property(
        "measured",
        f"{len(answers)} hostile requests at once; {probe.count} /health probes, slowest "
        f"{probe.max_latency * 1000:.0f} ms",
    )


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """These requests are refused or computed in Python before any database work that
    differs between backends (the `~` filter runs on RE2 on both): SQLite is enough."""
    return "sqlite", None
