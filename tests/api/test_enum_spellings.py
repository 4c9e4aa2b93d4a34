"""Enum values read back as they were written (Adobe's lookup examples show `ranking-strategy`),
and decisioning understands every spelling."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, decision_request, option_ids

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEXT_URI = "https://ns.adobe.com/experience/offer-management/content-component-text"


@pytest.fixture
def app_options():
    return {"clock": lambda: NOW, "rng": random.Random(7), "snapshot_poll_seconds": 0}


async def test_spellings_are_read_back_as_written_and_decided_on(client, tenant) -> None:
    catalog = Catalog(client, tenant)
    await catalog.placement("web", componentType=TEXT_URI)
    await catalog.offer(
        "low",
        ["web"],
        priority=9,
        representations=[
            {
                "channel": "https://ns.adobe.com/xdm/channel-types/web",
                "placement": "web",
                "components": [
                    {"type": "html", "format": "text/html", "content": "<p>low</p>"},
                    {"type": "text", "format": "text/plain", "content": "low"},
                ],
            }
        ],
    )
    await catalog.offer("high", ["web"], priority=1)
    await catalog.fallback("fb", ["web"])
    await catalog.send(
        "offer-collections",
        {"id": "all", "name": "all", "filterType": "offers", "ids": ["low", "high"]},
    )
    # A formula that reverses the priorities, spelled the way Adobe's DPS example spells it.
    await catalog.formula("reverse", "0 - offer.rank.priority")  # returnType "integer"
    await catalog.send(
        "offer-decisions",
        {
            "id": "dec",
            "name": "dec",
            "status": "live",
            "fallback": "fb",
            "criteria": [
                {
                    "optionSelection": {"filter": "all"},
                    "rank": {
                        "order": {"orderEvaluationType": "scoring-function", "function": "reverse"}
                    },
                }
            ],
        },
    )
    headers = tenant.headers
    read = await client.get("/data/core/dps/offer-decisions/dec", headers=headers)
    order = read.json()["criteria"][0]["rank"]["order"]
    assert order["orderEvaluationType"] == "scoring-function"
    placement = await client.get("/data/core/dps/placements/web", headers=headers)
    assert placement.json()["componentType"] == TEXT_URI
    formula = await client.get("/data/core/dps/ranking-formulas/reverse", headers=headers)
    assert formula.json()["returnType"] == {"type": "integer"}
    offer = await client.get("/data/core/dps/offers/low?offer-type=personalized", headers=headers)
    assert offer.json()["representations"][0]["components"][1]["type"] == "text"

    body = decision_request(
        [("dec", "web", 2)], **{"xdm:responseFormat": {"xdm:includeContent": True}}
    )
    response = await client.post("/data/core/ods/decisions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    (proposition,) = response.json()["xdm:propositions"]
    # The formula ran (the lower priority first); the text component matched the placement's
    # type through two different spellings, and is answered with its URI.
    assert option_ids(proposition) == ["high", "low"]
    assert proposition["xdm:options"][1]["@type"] == TEXT_URI
    assert proposition["xdm:options"][1]["xdm:content"] == "low"
