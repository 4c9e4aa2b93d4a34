"""The Decisioning API through HTTP (issue 4): selection, ranking, de-duplication, fallback,
capping, profiles, context data, dry runs, events and errors."""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime

import pytest
from decisioning_catalog import Catalog, criterion, decision_request, option_ids

from offerbase.store.counters import RedisCounterStore

ODS = "/data/core/ods/decisions"
XDM_JSON = (
    'application/vnd.adobe.xdm+json; schema="https://ns.adobe.com/experience/offer-management/'
    'decision-request;version=1.0"'
)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine_env():
    """The clock of this module's apps (see `app_options`): a test moves `engine_env["now"]`."""
    return {"now": NOW}


@pytest.fixture
def app_options(engine_env, request):
    """Every test here gets an app of its own (tests/conftest.py), deciding deterministically:
    fixed clock, seeded RNG, catalog changes seen at once. A test parametrizes this fixture
    (indirect) with more settings."""
    return {
        "clock": lambda: engine_env["now"],
        "rng": random.Random(7),
        "snapshot_poll_seconds": 0,
        **getattr(request, "param", {}),
    }


@pytest.fixture
async def catalog(client, tenant):
    return Catalog(client, tenant)


async def decide(client, tenant, body, status=200, **kwargs):
    headers = {**tenant.headers, "Content-Type": XDM_JSON, "x-request-id": "rid-42"}
    response = await client.post(ODS, json=body, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    return response


async def basic_catalog(catalog):
    await catalog.placement("web")
    await catalog.offer("low", ["web"], priority=1, characteristics={"tier": "b"})
    await catalog.offer("high", ["web"], priority=9, characteristics={"tier": "a"})
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["low", "high"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")


async def test_highest_priority_offer_with_content_and_metadata(
    client, tenant, catalog, engine_env
):
    await basic_catalog(catalog)
    body = decision_request(
        [("dec", "web")],
        **{
            "xdm:responseFormat": {
                "xdm:includeContent": True,
                "xdm:includeMetadata": {
                    "xdm:activity": ["name"],
                    "xdm:option": ["name", "characteristics"],
                    "xdm:placement": ["name", "channel", "componentType"],
                },
            }
        },
    )
    response = await decide(client, tenant, body)
    assert response.headers["x-request-id"] == "rid-42"
    assert response.headers["content-type"].startswith("application/vnd.adobe.xdm+json")
    payload = response.json()
    assert isinstance(payload["ode:createDate"], int)
    assert len(payload["xdm:propositionId"]) == 36
    (proposition,) = payload["xdm:propositions"]
    assert proposition["xdm:activity"] == {"xdm:id": "dec", "repo:etag": 1, "xdm:name": "dec"}
    assert proposition["xdm:placement"]["xdm:componentType"] == "html"
    (option,) = proposition["xdm:options"]
    assert option["xdm:id"] == "high"
    assert option["repo:etag"] == 1
    assert (
        option["@type"] == "https://ns.adobe.com/experience/offer-management/content-component-html"
    )
    assert option["xdm:content"] == "<p>high</p>"
    assert option["dc:format"] == "text/html"
    assert option["xdm:name"] == "high"
    assert option["xdm:characteristics"] == {"tier": "a"}
    assert "xdm:score" not in option


async def test_without_content_only_ids_are_returned(client, tenant, catalog, engine_env):
    await basic_catalog(catalog)
    body = decision_request(
        [("dec", "web", 2)], **{"xdm:responseFormat": {"xdm:includeContent": False}}
    )
    proposition = (await decide(client, tenant, body)).json()["xdm:propositions"][0]
    assert proposition["xdm:options"] == [
        {"xdm:id": "high", "repo:etag": 1},
        {"xdm:id": "low", "repo:etag": 1},
    ]


async def test_plain_json_and_legacy_container_endpoint(client, tenant, catalog, engine_env):
    await basic_catalog(catalog)
    containers = await client.get("/data/core/ods/containers", headers=tenant.headers)
    by_name = {c["sandboxName"]: c["containerId"] for c in containers.json()["results"]}
    legacy = await client.post(
        f"/data/core/ode/{by_name['prod']}/decisions",
        json=decision_request([("dec", "web")]),
        headers=tenant.headers,
    )
    assert legacy.status_code == 200, legacy.text
    assert option_ids(legacy.json()["xdm:propositions"][0]) == ["high"]
    # The dev sandbox has no such decision: the container id selects the sandbox.
    other = await client.post(
        f"/data/core/ode/{by_name['dev']}/decisions",
        json=decision_request([("dec", "web")]),
        headers=tenant.headers,
    )
    assert other.status_code == 404


async def test_worked_example_3_6_grouped_criteria(client, tenant, catalog, engine_env):
    """Adobe's worked example of several criteria: must give O5, O3, O4, O2, O1, O6."""
    await catalog.placement("web")
    priorities = {"O1": 10, "O2": 20, "O3": 30, "O4": 25, "O5": 35, "O6": 60}
    for oid, priority in priorities.items():
        await catalog.offer(oid, ["web"], priority=priority)
    await catalog.collection("c1", ["O1", "O2", "O3"])
    await catalog.collection("c2", ["O3", "O4", "O5"])
    await catalog.collection("c3", ["O5", "O6"])
    # C1 scores are the priorities (O1=10, O2=20, O3=30); C2 adds 15 (O3=45, O4=40, O5=50).
    await catalog.formula("f1", "offer.rank.priority")
    await catalog.formula("f2", "offer.rank.priority + 15")
    await catalog.decision(
        "dec",
        [
            criterion("c1", priority=1, formula="f1"),
            criterion("c2", priority=1, formula="f2"),
            criterion("c3", priority=0, formula="f1"),
        ],
    )
    proposition = (await decide(client, tenant, decision_request([("dec", "web", 6)]))).json()[
        "xdm:propositions"
    ][0]
    assert option_ids(proposition) == ["O5", "O3", "O4", "O2", "O1", "O6"]
    scores = [o["xdm:score"] for o in proposition["xdm:options"]]
    assert scores[:5] == [50, 45, 40, 20, 10]


async def dedup_catalog(catalog, caps=()):
    await catalog.placement("p1")
    await catalog.placement("p2")
    for index, oid in enumerate(["O1", "O2", "O3", "O4"]):
        extra = {}
        if oid in caps:
            extra["cappingConstraint"] = {"globalCap": 1}
        await catalog.offer(oid, ["p1", "p2"], priority=40 - index, **extra)
    await catalog.fallback("fb", ["p1", "p2"])
    await catalog.collection("all", ["O1", "O2", "O3", "O4"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")


async def test_worked_example_3_7_scopes_in_request_order(client, tenant, catalog, engine_env):
    await dedup_catalog(catalog)
    body = decision_request([("dec", "p1", 2), ("dec", "p2", 2)])
    first, second = (await decide(client, tenant, body)).json()["xdm:propositions"]
    assert option_ids(first) == ["O1", "O2"]
    assert option_ids(second) == ["O3", "O4"]

    allowed = decision_request(
        [("dec", "p1", 2), ("dec", "p2", 2)],
        **{
            "xdm:allowDuplicatePropositions": {
                "xdm:acrossActivities": True,
                "xdm:acrossPlacements": True,
            }
        },
    )
    first, second = (await decide(client, tenant, allowed)).json()["xdm:propositions"]
    assert option_ids(first) == option_ids(second) == ["O1", "O2"]


async def test_worked_example_3_7_capped_variant_falls_back(client, tenant, catalog, engine_env):
    await dedup_catalog(catalog, caps=("O1", "O3"))
    # Use up O1 and O3 (global cap 1 each) with one request that proposes both.
    warmup = decision_request([("dec", "p1", 4)])
    assert option_ids((await decide(client, tenant, warmup)).json()["xdm:propositions"][0]) == [
        "O1",
        "O2",
        "O3",
        "O4",
    ]
    body = decision_request([("dec", "p1", 2), ("dec", "p2", 2)])
    first, second = (await decide(client, tenant, body)).json()["xdm:propositions"]
    assert option_ids(first) == ["O2", "O4"]
    assert option_ids(second) == ["fallback:fb"]


async def test_fallback_when_nothing_qualifies_and_dates(client, tenant, catalog, engine_env):
    await catalog.placement("web")
    await catalog.offer(
        "expired",
        ["web"],
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2021-01-01T00:00:00Z",
            "profileConstraintType": "none",
        },
    )
    await catalog.offer("draft", ["web"], status="draft")
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["expired", "draft"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")
    body = decision_request(
        [("dec", "web")], **{"xdm:responseFormat": {"xdm:includeContent": True}}
    )
    proposition = (await decide(client, tenant, body)).json()["xdm:propositions"][0]
    assert "xdm:options" not in proposition
    assert proposition["xdm:fallback"]["xdm:id"] == "fb"
    assert proposition["xdm:fallback"]["xdm:content"] == "<p>fallback</p>"


async def test_stored_profile_rules_and_audiences(client, tenant, catalog, engine_env):
    await catalog.placement("web")
    await catalog.rule("gold", 'profile.loyalty.tier = "gold"')
    await catalog.offer(
        "gold-offer",
        ["web"],
        priority=5,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2040-01-01T00:00:00Z",
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": "gold",
        },
    )
    await catalog.offer(
        "vip-offer",
        ["web"],
        priority=9,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2040-01-01T00:00:00Z",
            "profileConstraintType": "anySegments",
            "segmentIdentities": [{"_id": "seg-vip", "namespace": {"code": "ups"}}],
        },
    )
    await catalog.offer("anyone", ["web"], priority=0)
    await catalog.collection("all", ["gold-offer", "vip-offer", "anyone"])
    await catalog.decision("dec", [criterion("all")])

    async def chosen(identity):
        body = decision_request([("dec", "web")], identity=identity)
        return option_ids((await decide(client, tenant, body)).json()["xdm:propositions"][0])

    assert await chosen("nobody@example.com") == ["anyone"]  # unknown identity: empty profile
    put = await client.put(
        "/data/core/ups/profiles/Email/gold@example.com",
        json={"loyalty": {"tier": "gold"}, "identityMap": {"ECID": [{"id": "ecid-1"}]}},
        headers=tenant.headers,
    )
    assert put.status_code in (200, 201), put.text
    assert await chosen("gold@example.com") == ["gold-offer"]
    exited = {"segmentMembership": {"ups": {"seg-vip": {"status": "exited"}}}}
    await client.put(
        "/data/core/ups/profiles/Email/vip@example.com", json=exited, headers=tenant.headers
    )
    assert await chosen("vip@example.com") == ["anyone"]
    realized = {"segmentMembership": {"ups": {"seg-vip": {"status": "realized"}}}}
    await client.put(
        "/data/core/ups/profiles/Email/vip@example.com", json=realized, headers=tenant.headers
    )
    assert await chosen("vip@example.com") == ["vip-offer"]

    # Lookup through a secondary identity of the stored profile.
    body = decision_request([("dec", "web")], identity=None)
    body["xdm:profiles"][0]["xdm:identityMap"] = {"ECID": [{"xdm:id": "ecid-1", "primary": True}]}
    assert option_ids((await decide(client, tenant, body)).json()["xdm:propositions"][0]) == [
        "gold-offer"
    ]

    # Inline profile attributes, for callers who keep profiles elsewhere.
    inline = decision_request(
        [("dec", "web")], profile={"offerbase:profile": {"loyalty": {"tier": "gold"}}}
    )
    assert option_ids((await decide(client, tenant, inline)).json()["xdm:propositions"][0]) == [
        "gold-offer"
    ]


async def test_context_data_rule(client, tenant, catalog, engine_env):
    await catalog.placement("web")
    await catalog.rule(
        "mobile",
        "select contextData from @{_xdm.context.additionalParameters;version=1} "
        'where !contextData.channel.isNull() AND contextData.channel!="" '
        'AND contextData.channel="mobile"',
    )
    await catalog.offer(
        "mobile-offer",
        ["web"],
        priority=5,
        selectionConstraint={
            "startDate": "2020-01-01T00:00:00Z",
            "endDate": "2040-01-01T00:00:00Z",
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": "mobile",
        },
    )
    await catalog.offer("desktop-offer", ["web"], priority=1)
    await catalog.collection("all", ["mobile-offer", "desktop-offer"])
    await catalog.decision("dec", [criterion("all")])

    def with_channel(channel):
        context = [
            {
                "@type": "_xdm.context.additionalParameters;version=1",
                "xdm:data": {"channel": channel},
            }
        ]
        return decision_request([("dec", "web")], profile={"xdm:contextData": context})

    mobile = await decide(client, tenant, with_channel("mobile"))
    assert option_ids(mobile.json()["xdm:propositions"][0]) == ["mobile-offer"]
    web = await decide(client, tenant, with_channel("web"))
    assert option_ids(web.json()["xdm:propositions"][0]) == ["desktop-offer"]


async def capped_catalog(catalog, **cap):
    await catalog.placement("web")
    constraint = {"limit": 2, "scope": "global", "entity": "offer", **cap}
    await catalog.offer("capped", ["web"], priority=9, frequencyCappingConstraints=[constraint])
    await catalog.offer("plain", ["web"], priority=1)
    await catalog.collection("all", ["capped", "plain"])
    await catalog.decision("dec", [criterion("all")])


async def test_cap_resets_at_the_period_boundary(client, tenant, catalog, engine_env):
    await capped_catalog(catalog, repeat={"enabled": True, "unit": "day", "unitCount": 1})
    body = decision_request([("dec", "web")])
    engine_env["now"] = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
    served = [
        option_ids((await decide(client, tenant, body)).json()["xdm:propositions"][0])[0]
        for _ in range(3)
    ]
    assert served == ["capped", "capped", "plain"]
    engine_env["now"] = datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC)  # 00:00 UTC: a new day
    served = [
        option_ids((await decide(client, tenant, body)).json()["xdm:propositions"][0])[0]
        for _ in range(3)
    ]
    assert served == ["capped", "capped", "plain"]


async def test_dry_run_checks_caps_but_never_counts_nor_records(
    client, tenant, catalog, engine_env, services
):
    await capped_catalog(catalog)
    dry = decision_request([("dec", "web")], **{"xdm:dryRun": True})
    for _ in range(5):
        assert option_ids((await decide(client, tenant, dry)).json()["xdm:propositions"][0]) == [
            "capped"
        ]
    await services.events.flush()
    events = await client.get("/data/core/ods/decision-events", headers=tenant.headers)
    assert events.json()["total"] == 0
    real = decision_request([("dec", "web")])
    served = [
        option_ids((await decide(client, tenant, real)).json()["xdm:propositions"][0])[0]
        for _ in range(3)
    ]
    assert served == ["capped", "capped", "plain"]
    # Once capped, a dry run sees the cap too.
    assert option_ids((await decide(client, tenant, dry)).json()["xdm:propositions"][0]) == [
        "plain"
    ]


async def test_global_cap_is_never_exceeded_under_parallel_requests(
    client, tenant, catalog, engine_env
):
    await capped_catalog(catalog, limit=7)
    body = decision_request([("dec", "web")])
    responses = await asyncio.gather(*(decide(client, tenant, body) for _ in range(40)))
    served = [option_ids(r.json()["xdm:propositions"][0])[0] for r in responses]
    assert served.count("capped") == 7
    assert served.count("plain") == 33


async def test_profile_cap_counts_per_person(client, tenant, catalog, engine_env):
    await capped_catalog(catalog, limit=1, scope="profile")

    async def first(identity):
        body = decision_request([("dec", "web")], identity=identity)
        return option_ids((await decide(client, tenant, body)).json()["xdm:propositions"][0])[0]

    assert [await first("a@x.com"), await first("a@x.com"), await first("b@x.com")] == [
        "capped",
        "plain",
        "capped",
    ]


async def test_decision_events_are_recorded_listed_and_exported(
    client, tenant, catalog, engine_env, services
):
    await basic_catalog(catalog)
    for _ in range(3):
        await decide(client, tenant, decision_request([("dec", "web")]))
    await services.events.flush()
    listed = await client.get("/data/core/ods/decision-events?limit=2", headers=tenant.headers)
    page = listed.json()
    assert page["total"] == 3
    assert page["count"] == 2
    assert "next" in page["_links"]
    event = page["results"][0]
    assert event["xdm:decisionRequestId"] == "req-1"
    assert event["xdm:identityMap"] == {
        "Email": [{"xdm:id": "person@example.com", "primary": True}]
    }
    assert event["xdm:propositions"][0]["xdm:selections"] == [{"xdm:id": "high"}]
    second = await client.get(
        "/data/core" + "/ods" + page["_links"]["next"]["href"], headers=tenant.headers
    )
    assert second.json()["count"] == 1
    export = await client.get("/data/core/ods/decision-events/export", headers=tenant.headers)
    lines = [line for line in export.text.splitlines() if line]
    assert len(lines) == 3
    # Another sandbox sees none of them.
    other = await client.get(
        "/data/core/ods/decision-events", headers=tenant.in_sandbox("dev").headers
    )
    assert other.json()["total"] == 0


async def test_trace_explains_each_candidate(client, tenant, catalog, engine_env):
    await basic_catalog(catalog)
    await catalog.offer("unapproved", ["web"], priority=99, status="draft")
    patch = [{"op": "add", "path": "/ids/-", "value": "unapproved"}]
    assert (
        await client.patch(
            "/data/core/dps/offer-collections/all", json=patch, headers=tenant.headers
        )
    ).status_code == 200
    body = decision_request([("dec", "web")])
    response = await decide(client, tenant, body, params={"trace": "true"})
    trace = response.json()["offerbase:trace"]
    ranked = {e["offer"]: e for e in trace if e["event"] == "ranked"}
    assert ranked["high"]["position"] == 1
    assert ranked["high"]["selected"] is True
    dropped = {e["offer"]: e for e in trace if e["event"] == "dropped"}
    assert "unapproved" in dropped
    assert "unapproved" not in ranked
    plain = await decide(client, tenant, decision_request([("dec", "web")]))
    assert "offerbase:trace" not in plain.json()


async def test_catalog_changes_are_used_by_the_next_decision(client, tenant, catalog, engine_env):
    await basic_catalog(catalog)
    assert option_ids(
        (await decide(client, tenant, decision_request([("dec", "web")]))).json()[
            "xdm:propositions"
        ][0]
    ) == ["high"]
    patch = [{"op": "replace", "path": "/status", "value": "archived"}]
    response = await client.patch("/data/core/dps/offers/high", json=patch, headers=tenant.headers)
    assert response.status_code == 200
    assert option_ids(
        (await decide(client, tenant, decision_request([("dec", "web")]))).json()[
            "xdm:propositions"
        ][0]
    ) == ["low"]


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"xdm:propositionRequests": []}, 400, "/xdm:propositionRequests"),
        (
            {"xdm:propositionRequests": [{"xdm:activityId": "dec"}]},
            400,
            "/xdm:propositionRequests/0/xdm:placementId",
        ),
        (decision_request([("dec", "web", 31)]), 422, "/xdm:propositionRequests/0/xdm:itemCount"),
        (decision_request([("dec", "web")] * 31), 422, "/xdm:propositionRequests"),
        (decision_request([("dec", "web", 30)] * 4), 422, "/xdm:propositionRequests"),
        ({**decision_request([("dec", "web")]), "xdm:dryRun": "yes"}, 400, "/xdm:dryRun"),
        ({**decision_request([("dec", "web")]), "xdm:profiles": [{}, {}]}, 400, "/xdm:profiles"),
    ],
)
async def test_bad_requests_are_problems(
    client, tenant, catalog, engine_env, body, status, pointer
):
    await basic_catalog(catalog)
    response = await decide(client, tenant, body, status=status)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == pointer


async def test_unknown_decision_and_malformed_json(client, tenant, catalog, engine_env):
    await basic_catalog(catalog)
    unknown = await decide(client, tenant, decision_request([("nope", "web")]), status=404)
    assert unknown.headers["content-type"] == "application/problem+json"
    headers = {**tenant.headers, "Content-Type": "application/json"}
    malformed = await client.post(ODS, content=b"{not json", headers=headers)
    assert malformed.status_code == 400
    unauthenticated = await client.post(ODS, json=decision_request([("dec", "web")]))
    assert unauthenticated.status_code == 403
    assert unauthenticated.json()["error_code"] == "403010"


async def test_decisions_are_isolated_between_organizations(
    client, tenant, catalog, engine_env, other_tenant
):
    await basic_catalog(catalog)
    other = await other_tenant()
    await decide(client, other, decision_request([("dec", "web")]), status=404)


REDIS_URL = os.environ.get("OFFERBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
COUNTERS_URL = f"{REDIS_URL}/14"  # a database of its own: flushed before the test


@pytest.fixture
async def redis_counters(services):
    """Capping counters in Redis (OFFERBASE_REDIS_URL) instead of the database: the test
    parametrizes `app_options` with `redis_url`; this checks that Redis answers and is used."""
    from redis.asyncio import Redis

    client = Redis.from_url(COUNTERS_URL, socket_connect_timeout=1)
    try:
        await client.flushdb()
    except Exception as exc:  # no Redis here
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Redis does not answer at {COUNTERS_URL}: {exc}")
        pytest.skip(f"Redis does not answer at {COUNTERS_URL}")
    await client.aclose()
    assert isinstance(services.counters, RedisCounterStore)


@pytest.mark.parametrize("app_options", [{"redis_url": COUNTERS_URL}], indirect=True, ids=["redis"])
async def test_redis_counters_never_exceed_a_global_cap(
    client, tenant, catalog, engine_env, redis_counters
):
    await capped_catalog(catalog, limit=5)
    body = decision_request([("dec", "web")])
    responses = await asyncio.gather(*(decide(client, tenant, body) for _ in range(30)))
    served = [option_ids(r.json()["xdm:propositions"][0])[0] for r in responses]
    assert served.count("capped") == 5
    dry = decision_request([("dec", "web")], **{"xdm:dryRun": True})
    assert option_ids((await decide(client, tenant, dry)).json()["xdm:propositions"][0]) == [
        "plain"
    ]
