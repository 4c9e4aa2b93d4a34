"""Sandbox-wide guardrails (Adobe's guardrails), with the limits lowered so the test stays small."""

from __future__ import annotations

import pytest

from offerbase.store import guardrails

WEB = "https://ns.adobe.com/xdm/channel-types/web"


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(
        guardrails,
        "TOTALS",
        tuple(
            guardrails.Total(t.kinds, 3, t.label) if t.label == "placements" else t
            for t in guardrails.TOTALS
        ),
    )
    monkeypatch.setattr(guardrails, "LIVE_DECISIONS", 1)


async def test_placements_per_sandbox(client, tenant, small_limits):
    for i in range(3):
        body = {"name": f"p{i}", "channel": WEB}
        response = await client.post("/data/core/dps/placements", json=body, headers=tenant.headers)
        assert response.status_code == 201
    refused = await client.post(
        "/data/core/dps/placements", json={"name": "p3", "channel": WEB}, headers=tenant.headers
    )
    assert refused.status_code == 422
    assert "at most 3 placements" in refused.json()["detail"]
    listed = await client.get("/data/core/dps/placements", headers=tenant.headers)
    assert listed.json()["total"] == 3
    # Another sandbox has its own budget.
    dev = await client.post(
        "/data/core/dps/placements",
        json={"name": "p3", "channel": WEB},
        headers=tenant.in_sandbox("dev").headers,
    )
    assert dev.status_code == 201


async def test_live_decisions_per_sandbox(client, tenant, small_limits):
    headers = tenant.headers
    for name in ("a", "b"):
        await client.post(
            f"/data/core/dps/offer-collections/{name}",
            json={"name": name, "filterType": "offers", "ids": []},
            headers=headers,
        )
    criteria = [{"optionSelection": {"filter": "a"}}]
    first = await client.post(
        "/data/core/dps/offer-decisions/d1",
        json={"name": "d1", "status": "live", "criteria": criteria},
        headers=headers,
    )
    assert first.status_code == 201, first.text
    second = await client.post(
        "/data/core/dps/offer-decisions/d2",
        json={"name": "d2", "status": "live", "criteria": criteria},
        headers=headers,
    )
    assert second.status_code == 422
    assert second.json()["errors"][0]["pointer"] == "/status"
    draft = await client.post(
        "/data/core/dps/offer-decisions/d2",
        json={"name": "d2", "status": "draft", "criteria": criteria},
        headers=headers,
    )
    assert draft.status_code == 201
    go_live = [{"op": "replace", "path": "/status", "value": "live"}]
    refused = await client.patch("/data/core/dps/offer-decisions/d2", json=go_live, headers=headers)
    assert refused.status_code == 422
    # The live decision itself may still be updated.
    rename = [{"op": "replace", "path": "/name", "value": "renamed"}]
    assert (
        await client.patch("/data/core/dps/offer-decisions/d1", json=rename, headers=headers)
    ).status_code == 200
