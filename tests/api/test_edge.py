"""The Edge Network endpoints (`/ee/...`) through HTTP, on SQLite and PostgreSQL: the request
shapes of the Web SDK (alloy), the Mobile SDK and the Server API, identity, CORS, errors,
decisions (the same as the Decisioning API's) and feedback events."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, criterion, decision_request, option_ids

from offerbase.api import edge_identity

ORG_COOKIE = "kndctr_{org}_identity"
DATASTREAMS = "/data/core/edge/datastreams"
ODS = "/data/core/ods/decisions"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SHOP = "https://www.shop.example"
HTML = "https://ns.adobe.com/experience/offer-management/content-component-html"


@pytest.fixture
def app_options():
    return {"clock": lambda: NOW, "rng": random.Random(7), "snapshot_poll_seconds": 0}


@pytest.fixture
async def catalog(client, tenant):
    return Catalog(client, tenant)


async def datastream(client, tenant, **body):
    response = await client.post(DATASTREAMS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def scope(activity, placement, *, prefixed=False, **extra):
    keys = ("xdm:activityId", "xdm:placementId") if prefixed else ("activityId", "placementId")
    raw = json.dumps({keys[0]: activity, keys[1]: placement, **extra}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def alloy_body(scopes, *, entries=None, xdm=None, data=None):
    """What alloy 2.33 sends for sendEvent({personalization: {decisionScopes}}) (condensed)."""
    event = {
        "xdm": {
            "web": {"webPageDetails": {"URL": "https://www.shop.example/"}},
            "device": {"screenHeight": 720, "screenWidth": 1280},
            "timestamp": "2026-11-24T12:00:00.000Z",
            "implementationDetails": {"name": "https://ns.adobe.com/experience/alloy"},
            **(xdm or {}),
        },
        "query": {
            "personalization": {
                "schemas": ["https://ns.adobe.com/personalization/default-content-item"],
                "decisionScopes": [*scopes, "__view__"],
                "surfaces": ["web://www.shop.example/"],
            }
        },
    }
    if data is not None:
        event["data"] = data
    state = {"domain": "", "cookiesEnabled": True}
    if entries is not None:
        state["entries"] = entries
    return {
        "events": [event],
        "query": {"identity": {"fetch": ["ECID"]}},
        "meta": {"queueTimeMillis": 5, "state": state},
    }


async def interact(client, datastream_id, body, *, path="/ee/v1/interact", status=200, **kw):
    headers = {"Content-Type": "text/plain; charset=UTF-8", **kw.pop("headers", {})}
    response = await client.post(
        f"{path}?configId={datastream_id}&requestId=req-1",
        content=json.dumps(body),
        headers=headers,
        **kw,
    )
    assert response.status_code == status, response.text
    return response


def handles(response, kind):
    return [h for h in response.json()["handle"] if h["type"] == kind]


def offer_ids(proposition):
    return [item["id"] for item in proposition["items"]]


async def two_placements(catalog):
    await catalog.placement("hero")
    await catalog.placement("side")
    await catalog.offer("gold", ["hero", "side"], priority=9, characteristics={"tier": "gold"})
    await catalog.offer("silver", ["hero", "side"], priority=5)
    await catalog.fallback("fb", ["hero", "side"])
    await catalog.collection("all", ["gold", "silver"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")


async def test_alloy_request_gets_propositions_identity_and_state(client, tenant, catalog):
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    hero, side = scope("dec", "hero"), scope("dec", "side", prefixed=True)
    response = await interact(client, ds, alloy_body([hero, side]))
    body = response.json()
    assert body["requestId"] == "req-1"
    assert "\n" not in response.text  # compact, one line (the Mobile SDK's framing)
    (identity,) = handles(response, "identity:result")
    ecid = identity["payload"][0]["id"]
    assert len(ecid) == 38
    assert ecid.isdigit()
    assert identity["payload"][0]["namespace"] == {"code": "ECID"}
    (state,) = handles(response, "state:store")
    (cookie,) = state["payload"]
    assert cookie["key"] == ORG_COOKIE.format(org=tenant.org.replace("@", "_"))
    assert edge_identity.decode_cookie(cookie["value"]) == ecid
    assert cookie["maxAge"] == 34128000
    (decisions,) = handles(response, "personalization:decisions")
    assert decisions["eventIndex"] == 0
    first, second = decisions["payload"]  # __view__ is skipped, not an error
    assert first["scope"] == hero
    assert second["scope"] == side
    assert first["id"] == second["id"]
    assert len(first["id"]) == 36
    assert first["activity"] == {"id": "dec", "etag": "1"}
    assert first["placement"] == {"id": "hero", "etag": "1"}
    (item,) = first["items"]
    assert item == {
        "id": "gold",
        "etag": "1",
        "schema": HTML,
        "data": {
            "id": "gold",
            "format": "text/html",
            "content": "<p>gold</p>",
            "characteristics": {"tier": "gold"},
        },
    }
    # Placements allow no duplicates by default: the side placement gets the next offer.
    assert offer_ids(second) == ["silver"]


async def test_same_offers_as_the_decisioning_api(make_app, database):
    """Same catalog, profiles, clock and seed: the Decisioning API (sandbox prod) and Edge (an
    identical catalog in sandbox dev) choose the same offers, caps and random ties included."""
    import httpx

    from conftest import make_tenant

    choices = {}
    for front in ("api", "edge"):
        app = make_app(clock=lambda: NOW, rng=random.Random(11), snapshot_poll_seconds=0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            tenant = await make_tenant(app, client)
            catalog = Catalog(client, tenant)
            await catalog.placement("web")
            cap = {"limit": 3, "scope": "profile", "entity": "offer"}
            await catalog.rule("gold-only", 'profile.tier = "gold"')
            await catalog.offer(
                "gold",
                ["web"],
                priority=9,
                selectionConstraint={
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": "gold-only",
                },
                frequencyCappingConstraints=[cap],
            )
            for tie in ("a", "b", "c"):  # equal priorities: a random choice among them
                await catalog.offer(tie, ["web"], priority=5)
            await catalog.fallback("fb", ["web"])
            await catalog.collection("all", ["gold", "a", "b", "c"])
            await catalog.decision("dec", [criterion("all")], fallback="fb")
            for person, tier in (("p1", "gold"), ("p2", "silver")):
                stored = await client.put(
                    f"/data/core/ups/profiles/Email/{person}@example.com",
                    json={"tier": tier},
                    headers=tenant.headers,
                )
                assert stored.status_code in (200, 201), stored.text
            ds = await datastream(client, tenant) if front == "edge" else None
            served = []
            for i in range(12):
                person = f"p{i % 2 + 1}@example.com"
                if front == "api":
                    body = decision_request([("dec", "web", 2)], identity=person)
                    response = await client.post(ODS, json=body, headers=tenant.headers)
                    assert response.status_code == 200, response.text
                    served.append(option_ids(response.json()["xdm:propositions"][0]))
                else:
                    edge = alloy_body(
                        [scope("dec", "web", itemCount=2)],
                        xdm={"identityMap": {"Email": [{"id": person, "primary": True}]}},
                    )
                    response = await interact(client, ds, edge)
                    (decisions,) = handles(response, "personalization:decisions")
                    ids = offer_ids(decisions["payload"][0])
                    served.append(["fallback:fb"] if ids == ["fb"] else ids)
            choices[front] = served
    assert choices["api"] == choices["edge"]
    gold_served = sum("gold" in s for s in choices["edge"])
    assert gold_served == 3  # the per-profile cap of p1, counted the same way on both paths
    assert len({tuple(s) for s in choices["edge"]}) > 2  # the random ties did vary


async def test_identity_from_state_cookie_header_and_identity_map(client, tenant, catalog):
    ds = await datastream(client, tenant)
    name = ORG_COOKIE.format(org=tenant.org.replace("@", "_"))
    ecid = "41861666193140161934276845651148876988"
    adobe_fixture = edge_identity.encode_cookie(ecid).replace("+", "-").rstrip("=")
    from_state = await interact(
        client, ds, alloy_body([], entries=[{"key": name, "value": adobe_fixture}])
    )
    assert handles(from_state, "identity:result")[0]["payload"][0]["id"] == ecid
    from_cookie = await interact(
        client, ds, alloy_body([]), headers={"Cookie": f"{name}={adobe_fixture}; other=1"}
    )
    assert handles(from_cookie, "identity:result")[0]["payload"][0]["id"] == ecid
    mobile = {"xdm": {"identityMap": {"ECID": [{"id": ecid, "primary": True}]}}, "events": []}
    from_map = await interact(client, ds, mobile)
    assert handles(from_map, "identity:result")[0]["payload"][0]["id"] == ecid
    minted = [
        handles(await interact(client, ds, alloy_body([])), "identity:result")[0]["payload"][0]
        for _ in range(2)
    ]
    assert minted[0]["id"] != minted[1]["id"]
    acquired = await interact(
        client,
        ds,
        {"query": {"identity": {"fetch": ["ECID"]}}, "meta": {"state": {"entries": []}}},
        path="/ee/v1/identity/acquire",
    )
    assert len(handles(acquired, "identity:result")[0]["payload"][0]["id"]) == 38
    consent = await interact(
        client,
        ds,
        {"consent": [{"standard": "Adobe", "version": "2.0", "value": {}}]},
        path="/ee/irl1/v1/privacy/set-consent",
    )
    assert handles(consent, "state:store")


async def test_stored_profile_found_by_ecid(client, tenant, catalog):
    await catalog.placement("web")
    await catalog.rule("vip", "profile.vip = true")
    constraint = {"profileConstraintType": "eligibilityRule", "eligibilityRule": "vip"}
    await catalog.offer("vip-offer", ["web"], priority=9, selectionConstraint=constraint)
    await catalog.offer("plain", ["web"], priority=1)
    await catalog.collection("all", ["vip-offer", "plain"])
    await catalog.decision("dec", [criterion("all")])
    ecid = "12345678901234567890123456789012345678"
    stored = await client.put(
        f"/data/core/ups/profiles/ECID/{ecid}", json={"vip": True}, headers=tenant.headers
    )
    assert stored.status_code in (200, 201), stored.text
    ds = await datastream(client, tenant)
    name = ORG_COOKIE.format(org=tenant.org.replace("@", "_"))
    entries = [{"key": name, "value": edge_identity.encode_cookie(ecid)}]
    known = await interact(client, ds, alloy_body([scope("dec", "web")], entries=entries))
    assert offer_ids(handles(known, "personalization:decisions")[0]["payload"][0]) == ["vip-offer"]
    stranger = await interact(client, ds, alloy_body([scope("dec", "web")]))
    assert offer_ids(handles(stranger, "personalization:decisions")[0]["payload"][0]) == ["plain"]


async def test_cors(client, tenant):
    ds = await datastream(client, tenant, origins=[SHOP + "/"])
    preflight = await client.options(
        f"/ee/v1/interact?configId={ds}",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    allowed = await interact(client, ds, alloy_body([]), headers={"Origin": SHOP})
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    foreign = await interact(
        client, ds, alloy_body([]), status=403, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in foreign.headers
    assert foreign.json()["type"].endswith("-403")
    refused = await client.options(
        f"/ee/v1/interact?configId={ds}", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    # A request without an Origin (a server, an app) is authorised by the datastream alone.
    await interact(client, ds, alloy_body([]))


@pytest.mark.parametrize(
    ("query", "content", "status", "detail"),
    [
        ("", "{}", 400, "configId"),
        ("?configId=nope", "{}", 400, "nope"),
        ("?configId={ds}", "{not json", 400, "JSON"),
        ("?configId={ds}", "", 400, "empty"),
        ("?configId={ds}", '{"events": {}}', 400, "events"),
        ("?configId={ds}", '{"events": [{"xdm": []}]}', 400, "events/0/xdm"),
        (
            "?configId={ds}",
            '{"events": [{"query": {"personalization": {"decisionScopes": [1]}}}]}',
            400,
            "decisionScopes/0",
        ),
        (
            "?configId={ds}",
            '{"events": [{"xdm": {"identityMap": {"Email": [{"id": 5}]}}}]}',
            400,
            "identityMap/Email/0/id",
        ),
        ("?configId={ds}", "[" * 200 + "]" * 200, 422, "nested"),
    ],
)
async def test_errors_have_the_edge_shape(client, tenant, query, content, status, detail):
    ds = await datastream(client, tenant)
    response = await client.post(
        "/ee/v1/interact" + query.format(ds=ds) + ("&" if query else "?") + "requestId=r-9",
        content=content,
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "status", "title", "detail", "report"}
    assert body["type"].startswith("https://ns.adobe.com/aep/errors/EXEG-")
    assert body["type"].endswith(f"-{status}")
    assert body["status"] == status
    assert detail in body["detail"]
    assert body["report"] == {"requestId": "r-9"}


async def test_collect_answers_204_and_bad_scopes_are_warnings(client, tenant, catalog):
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    for path in ("/ee/v1/collect", "/ee/v2/collect"):
        collected = await interact(client, ds, alloy_body([]), path=path, status=204)
        assert collected.content == b""
    body = alloy_body([scope("missing", "hero"), scope("dec", "hero"), scope("dec", "nowhere")])
    response = await interact(client, ds, body)
    (decisions,) = handles(response, "personalization:decisions")
    assert [p["scope"] for p in decisions["payload"]] == [scope("dec", "hero")]
    warnings = response.json()["warnings"]
    assert [w["status"] for w in warnings] == [404, 404]
    assert {w["report"]["scope"] for w in warnings} == {
        scope("missing", "hero"),
        scope("dec", "nowhere"),
    }


async def test_mobile_sdk_request(client, tenant, catalog):
    """AEPEdge + AEPOptimize: JSON, the ECID in the top-level identityMap, streaming framing,
    an itemCount in the scope; the answer follows the SDK's strict decoding rules."""
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    ecid = "07812345678901234567890123456789012345"
    body = {
        "meta": {
            "konductorConfig": {
                "streaming": {"recordSeparator": "\u0000", "lineFeed": "\n", "enabled": True}
            },
            "state": {"entries": []},
        },
        "xdm": {
            "identityMap": {
                "ECID": [{"id": ecid, "authenticatedState": "ambiguous", "primary": False}]
            },
            "implementationDetails": {"name": "https://ns.adobe.com/experience/mobilesdk/ios"},
        },
        "events": [
            {
                "xdm": {
                    "_id": "0f7a3e2c-event-1",
                    "eventType": "personalization.request",
                    "timestamp": "2026-11-24T12:00:00.000Z",
                },
                "query": {
                    "personalization": {
                        "schemas": [HTML],
                        "decisionScopes": [scope("dec", "hero", itemCount=2)],
                    }
                },
                "data": {"__adobe": {"ajo": {}}},
            }
        ],
    }
    response = await client.post(
        f"/ee/v1/interact?configId={ds}&requestId=mobile-1",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert "\n" not in response.text
    assert handles(response, "identity:result")[0]["payload"][0]["id"] == ecid
    (proposition,) = handles(response, "personalization:decisions")[0]["payload"]
    assert offer_ids(proposition) == ["gold", "silver"]
    for item in proposition["items"]:
        assert isinstance(item["etag"], str)
        assert item["data"]["id"] == item["id"]
        assert all(isinstance(v, str) for v in item["data"]["characteristics"].values())


async def test_server_api_v2(client, tenant, catalog):
    """The Edge Network Server API's Offer Decisioning request (v2 shape: one `event`, the
    query at the top level, dataStreamId)."""
    await two_placements(catalog)
    ds = await datastream(client, tenant, itemCounts={"hero": 2})
    body = {
        "event": {
            "xdm": {
                "identityMap": {
                    "FPID": [{"id": "xyz", "authenticatedState": "ambiguous", "primary": True}]
                },
                "eventType": "web.webpagedetails.pageViews",
                "web": {
                    "webPageDetails": {
                        "URL": "https://alloystore.dev/",
                        "name": "home-demo-Home Page",
                    }
                },
                "timestamp": "2026-11-24T12:00:00.000Z",
            }
        },
        "query": {"personalization": {"decisionScopes": [scope("dec", "hero", prefixed=True)]}},
    }
    for path in ("/ee/v2/interact", "/v2/interact"):  # Adobe's page writes it without /ee
        response = await client.post(
            f"{path}?dataStreamId={ds}", json=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        (proposition,) = handles(response, "personalization:decisions")[0]["payload"]
        assert offer_ids(proposition) == ["gold", "silver"]  # the datastream's itemCount for hero
    anonymous = {"event": {"xdm": {"eventType": "x"}}, "query": body["query"]}
    refused = await client.post(f"/ee/v2/interact?dataStreamId={ds}", json=anonymous)
    assert refused.status_code == 400
    assert refused.json()["title"] == "No identity"


async def test_rules_read_the_event(client, tenant, catalog):
    """xEvent (the event's xdm, as Adobe's Edge rules read it) and the event's data as the
    Decisioning API's additionalParameters context."""
    await catalog.placement("web")
    await catalog.rule("wide", "xEvent.device.screenWidth > 1000")
    await catalog.rule("sale", '@{_xdm.context.additionalParameters;version=1}.campaign = "sale"')
    for oid, rule in (("wide-offer", "wide"), ("sale-offer", "sale")):
        constraint = {"profileConstraintType": "eligibilityRule", "eligibilityRule": rule}
        await catalog.offer(oid, ["web"], priority=9, selectionConstraint=constraint)
    await catalog.offer("plain", ["web"], priority=1)
    await catalog.collection("all", ["wide-offer", "sale-offer", "plain"])
    await catalog.decision("dec", [criterion("all")])
    ds = await datastream(client, tenant)

    async def chosen(**kwargs):
        response = await interact(
            client, ds, alloy_body([scope("dec", "web", itemCount=3)], **kwargs)
        )
        return offer_ids(handles(response, "personalization:decisions")[0]["payload"][0])

    assert set(await chosen()) == {"wide-offer", "plain"}
    assert set(await chosen(xdm={"device": {"screenWidth": 390}})) == {"plain"}
    assert set(await chosen(data={"campaign": "sale"})) == {"wide-offer", "sale-offer", "plain"}


def feedback_body(kind, proposition, *, entries=None, event_id=None, dry_run=False):
    """alloy's manual display / click notification for one rendered offer."""
    event_type = {
        "display": "decisioning.propositionDisplay",
        "interact": "decisioning.propositionInteract",
    }
    xdm = {
        "eventType": event_type[kind],
        "_experience": {
            "decisioning": {
                "propositions": [
                    {
                        "id": proposition["id"],
                        "scope": proposition["scope"],
                        "scopeDetails": {},
                        "items": [{"id": proposition["items"][0]["id"]}],
                    }
                ],
                "propositionEventType": {kind: 1},
            }
        },
        "timestamp": "2026-11-24T12:00:01.000Z",
    }
    if event_id is not None:
        xdm["_id"] = event_id
    event = {"xdm": xdm}
    if dry_run:
        event["data"] = {"__adobe": {"ajo": {"dryRun": True}}}
    return {"events": [event], "meta": {"state": {"entries": entries or []}}}


async def test_display_and_click_are_stored_once_and_linked(client, tenant, catalog, services):
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    fetched = await interact(client, ds, alloy_body([scope("dec", "hero")]))
    (proposition,) = handles(fetched, "personalization:decisions")[0]["payload"]
    state = handles(fetched, "state:store")[0]["payload"]
    entries = [{"key": state[0]["key"], "value": state[0]["value"]}]
    ecid = handles(fetched, "identity:result")[0]["payload"][0]["id"]
    display = feedback_body("display", proposition, entries=entries)
    await interact(client, ds, display)
    await interact(client, ds, display)  # a resend without xdm._id: the same event
    click = feedback_body("interact", proposition, entries=entries, event_id="click-1")
    await interact(client, ds, click, path="/ee/v1/collect", status=204)
    await interact(client, ds, click, path="/ee/v2/collect", status=204)  # the same _id
    dry = feedback_body("interact", proposition, entries=entries, event_id="dry-1", dry_run=True)
    await interact(client, ds, dry)
    await services.interactions.flush()
    await services.events.flush()
    listed = await client.get("/data/core/ods/interaction-events", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    stored = listed.json()["results"]
    assert [(e["type"], e["eventType"]) for e in stored] == [
        ("display", "decisioning.propositionDisplay"),
        ("interact", "decisioning.propositionInteract"),
    ]
    for event in stored:
        assert event["propositionId"] == proposition["id"]
        assert (event["activityId"], event["placementId"]) == ("dec", "hero")
        assert event["itemIds"] == ["gold"]
        assert event["identity"] == {"namespace": "ECID", "id": ecid}
        assert event["datastreamId"] == ds
    decisions = await client.get("/data/core/ods/decision-events", headers=tenant.headers)
    (decision,) = decisions.json()["results"]
    assert decision["xdm:propositionId"] == proposition["id"]


async def test_display_carried_in_the_next_interact(client, tenant, catalog, services):
    """The page's display of one answer's offer sent in the xdm of its next `sendEvent`, which
    also asks for offers (docs/edge.md, "Display notifications in the next request"): one
    request decides and stores the display."""
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    first = await interact(client, ds, alloy_body([scope("dec", "hero")]))
    (shown,) = handles(first, "personalization:decisions")[0]["payload"]
    state = handles(first, "state:store")[0]["payload"]
    entries = [{"key": state[0]["key"], "value": state[0]["value"]}]
    carried = feedback_body("display", shown, entries=entries)["events"][0]["xdm"]["_experience"]
    body = alloy_body([scope("dec", "side")], entries=entries, xdm={"_experience": carried})
    second = await interact(client, ds, body)
    (decided,) = handles(second, "personalization:decisions")[0]["payload"]
    assert offer_ids(decided) == ["gold"]
    await services.interactions.flush()
    listed = await client.get("/data/core/ods/interaction-events", headers=tenant.headers)
    assert [
        (e["type"], e["propositionId"], e["placementId"]) for e in listed.json()["results"]
    ] == [("display", shown["id"], "hero")]


async def test_malformed_feedback_is_refused_and_nothing_stored(client, tenant, catalog, services):
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    fetched = await interact(client, ds, alloy_body([scope("dec", "hero")]))
    (proposition,) = handles(fetched, "personalization:decisions")[0]["payload"]
    good = feedback_body("display", proposition)["events"][0]
    bad = feedback_body("display", proposition)["events"][0]
    bad["xdm"]["_experience"]["decisioning"]["propositions"] = {"id": "x"}
    refused = await interact(client, ds, {"events": [good, bad]}, status=400)
    assert "propositions" in refused.json()["detail"]
    await services.interactions.flush()
    listed = await client.get("/data/core/ods/interaction-events", headers=tenant.headers)
    assert listed.json()["results"] == []


def _paths(value, prefix=()):
    """Every (path) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, *rest = path
    copied = dict(value) if isinstance(value, dict) else list(value)
    copied[head] = _replace(value[head], rest, new)
    return copied


async def test_mutated_bodies_never_fail_the_server(client, tenant, catalog):
    """Structured fuzzing: one member of a real alloy body (decision scopes, identities, state,
    feedback) at a time replaced by another JSON value; every answer is a 2xx or an Edge 4xx."""
    await two_placements(catalog)
    ds = await datastream(client, tenant)
    fetch = alloy_body([scope("dec", "hero")], xdm={"identityMap": {"Email": [{"id": "a@b.c"}]}})
    proposition = {"id": "p-1", "scope": scope("dec", "hero"), "items": [{"id": "gold"}]}
    feedback = feedback_body("display", proposition, entries=[{"key": "k", "value": "CgA="}])
    rng = random.Random(20261201)
    oddities = [
        None,
        True,
        0,
        -1,
        2**70,
        1.5,
        "",
        "x" * 300,
        "__view__",
        [],
        {},
        [None],
        {"": None},
    ]
    for body in (fetch, feedback):
        paths = list(_paths(body))
        for _ in range(40):
            mutated = _replace(body, rng.choice(paths), rng.choice(oddities))
            response = await client.post(
                f"/ee/v1/interact?configId={ds}", content=json.dumps(mutated)
            )
            assert response.status_code in (200, 400), (mutated, response.text)
            if response.status_code == 400:
                assert response.json()["type"].startswith("https://ns.adobe.com/aep/errors/")
