"""AI ranking's freshness promise on a real `offerbase serve --workers 2` (SQLite and
PostgreSQL): displays and clicks posted to the Edge endpoints change the model that every
worker decides with within 10 s (docs/ai-ranking.md, "Freshness")."""

from __future__ import annotations

import base64
import json
import time

import httpx
from test_serve import WEB, catalog_client, offerbase, server  # noqa: F401 (the module's two-worker server)

FRESHNESS_SECONDS = 10


def test_feedback_reaches_every_workers_model_within_10_seconds(server, record_property) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    base, env, _ = server
    org = "RANKING@AdobeOrg"
    headers, create = catalog_client(base, env, org)
    component = {"type": "html", "format": "text/html", "content": "x"}

    create("placements", "web", {"name": "web", "channel": WEB, "componentType": "html"})
    for offer_id in ("gold", "silver"):
        create(
            "offers",
            f"{offer_id}?offer-type=personalized",
            {
                "name": offer_id,
                "status": "approved",
                "rank": {"priority": 1},
                "representations": [
                    {"channel": WEB, "placement": "web", "components": [component]}
                ],
            },
        )
    create(
        "offer-collections",
        "all",
        {"name": "all", "filterType": "offers", "ids": ["gold", "silver"]},
    )
    create(
        "ranking-strategies",
        "best",
        {"name": "best", "type": "auto-optimization", "holdoutPercentage": 0},
    )
    order = {"orderEvaluationType": "rankingStrategy", "rankingStrategy": "best"}
    criterion = {"optionSelection": {"filter": "all"}, "rank": {"order": order}}
    create("offer-decisions", "dec", {"name": "dec", "status": "live", "criteria": [criterion]})
    stream = json.loads(offerbase("datastreams", "create", "--org", org, "--json", env=env).stdout)
    scope = base64.b64encode(b'{"activityId":"dec","placementId":"web"}').decode()
    interact = f"{base}/ee/v2/interact?dataStreamId={stream['id']}"
    collect = f"{base}/ee/v2/collect?dataStreamId={stream['id']}"

    def decide(visitor: str) -> dict:  # type: ignore[type-arg]
        # A new connection each time, so both workers answer some of them.
        body = {
            "event": {"xdm": {"identityMap": {"FPID": [{"id": visitor}]}}},
            "query": {"personalization": {"decisionScopes": [scope]}},
        }
        response = httpx.post(interact, json=body)
        assert response.status_code == 200, response.text
        (handle,) = [
            h for h in response.json()["handle"] if h["type"] == "personalization:decisions"
        ]
        proposition: dict = handle["payload"][0]  # type: ignore[type-arg]
        return proposition

    def feedback(proposition: dict, kind: str) -> dict:  # type: ignore[type-arg]
        decisioning = {
            "propositions": [
                {"id": proposition["id"], "scope": scope, "items": proposition["items"][:1]}
            ],
            "propositionEventType": {kind: 1},
        }
        return {
            "xdm": {
                "_id": f"{proposition['id']}-{kind}",
                "_experience": {"decisioning": decisioning},
            }
        }

    # No evidence yet: both offers are served (uniform priors).
    first = [decide(f"v{i}") for i in range(40)]
    assert {p["items"][0]["id"] for p in first} == {"gold", "silver"}
    # Every gold display clicked, no silver one: Beta(1 + n, 1) against Beta(1, 1 + m).
    events = []
    for proposition in first:
        events.append(feedback(proposition, "display"))
        if proposition["items"][0]["id"] == "gold":
            events.append(feedback(proposition, "interact"))
    time.sleep(0.5)  # the decision events are written (0.2 s) before their feedback comes
    sent_at = time.monotonic()
    for start in range(0, len(events), 50):
        response = httpx.post(collect, json={"events": events[start : start + 50]})
        assert response.status_code in (200, 204), response.text
    # Within the promise, every worker serves gold (P(silver) < 1e-6 per decision then).
    while True:
        served = [decide(f"w{i}")["items"][0]["id"] for i in range(20)]
        if set(served) == {"gold"}:
            elapsed = time.monotonic() - sent_at
            record_property("measured", f"feedback in every worker's model after {elapsed:.1f} s")
            break
        assert time.monotonic() - sent_at < FRESHNESS_SECONDS, served
        time.sleep(0.2)
    for _ in range(50):  # every display counted once (two workers' learners, one queue)
        report = httpx.get(f"{base}/data/core/ods/reports/ranking-strategies/best", headers=headers)
        assert report.status_code == 200, report.text
        if report.json()["arms"]["model"]["displays"] >= len(first):
            break
        time.sleep(0.2)
    assert report.json()["arms"]["model"]["displays"] == len(first)
