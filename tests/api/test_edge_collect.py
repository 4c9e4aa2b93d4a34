"""`/ee/*/collect` on its fast path (api/edge_collect.py), through HTTP on SQLite and
PostgreSQL: it answers every request as the generic middleware stack and router do. A path
with `//` in it goes the generic way (CompatibilityMiddleware collapses it), so each request is
sent both ways and the answers compared; then what each rule must still do on its own: CORS,
limits, validation, the datastream, idempotency, the request id, metrics, the access log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

SHOP = "https://www.shop.example"
DATASTREAMS = "/data/core/edge/datastreams"
SCOPE = "eyJhY3Rpdml0eUlkIjoiZGVjIiwicGxhY2VtZW50SWQiOiJ3ZWIifQ=="  # {"activityId":"dec",...}
MAX_BODY = 4096


@pytest.fixture
def app_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A small body limit; a test parametrizes more (metrics, the access log)."""
    return {"max_body_bytes": MAX_BODY, "snapshot_poll_seconds": 0, **getattr(request, "param", {})}


async def datastream(client: httpx.AsyncClient, tenant: Any, **body: Any) -> str:
    response = await client.post(DATASTREAMS, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def display(event_id: str | None, **xdm: Any) -> dict[str, Any]:
    """alloy's display notification (condensed), with `xdm._id` when given."""
    event_xdm: dict[str, Any] = {
        "eventType": "decisioning.propositionDisplay",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "identityMap": {"Email": [{"id": "v1@example.com", "primary": True}]},
        "_experience": {
            "decisioning": {
                "propositionEventType": {"display": 1},
                "propositions": [{"id": "prop-1", "scope": SCOPE, "items": [{"id": "offer1"}]}],
            }
        },
        **xdm,
    }
    if event_id is not None:
        event_xdm["_id"] = event_id
    return {"events": [{"xdm": event_xdm}]}


def generic(path: str) -> str:
    """The same route through the generic stack: `//` is collapsed by CompatibilityMiddleware,
    and the fast path leaves such a path alone."""
    return path.replace("/collect", "//collect")


async def stored(client: httpx.AsyncClient, tenant: Any, services: Any) -> list[dict[str, Any]]:
    await services.interactions.flush()
    listed = await client.get("/data/core/ods/interaction-events", headers=tenant.headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["results"])


def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return response.status_code, headers, response.content


CASES = {
    "display": ("POST", lambda n: json.dumps(display(f"ev-{n}")), {}, 204),
    "text/plain": (
        "POST",
        lambda n: json.dumps(display(f"ev-{n}")),
        {"Content-Type": "text/plain;charset=UTF-8", "Origin": SHOP},
        204,
    ),
    "preflight": (
        "OPTIONS",
        lambda n: "",
        {
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        204,
    ),
    "preflight, foreign origin": (
        "OPTIONS",
        lambda n: "",
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        403,
    ),
    "foreign origin": (
        "POST",
        lambda n: json.dumps(display(f"ev-{n}")),
        {"Origin": "https://evil.example"},
        403,
    ),
    "bad JSON": ("POST", lambda n: '{"events": [', {}, 400),
    "empty": ("POST", lambda n: "", {}, 400),
    "too large": ("POST", lambda n: json.dumps(display("x" * MAX_BODY)), {}, 413),
    "too deep": ("POST", lambda n: "[" * 200 + "]" * 200, {}, 422),
    "malformed feedback": (
        "POST",
        lambda n: json.dumps(
            display(
                f"ev-{n}",
                _experience={
                    "decisioning": {"propositionEventType": {"display": 1}, "propositions": {}}
                },
            )
        ),
        {},
        400,
    ),
    "U+0000": (
        "POST",
        lambda n: json.dumps(display(f"ev-{n}", eventType="a\u0000b")),
        {},
        400,
    ),
    "x-request-id": (
        "POST",
        lambda n: json.dumps(display(f"ev-{n}")),
        {"x-request-id": "trace-42"},
        204,
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "path",
    [
        "/ee/v2/collect?dataStreamId={ds}",
        "/ee/v1/collect?configId={ds}",
        "/ee/or2/v1/collect?configId={ds}",
        "/v2/collect?dataStreamId={ds}",
    ],
)
async def test_fast_path_answers_as_the_generic_stack(client, tenant, services, case, path):
    method, body, headers, status = CASES[case]
    ds = await datastream(client, tenant, origins=[SHOP + "/"])
    target = path.format(ds=ds) + "&requestId=req-1"
    fast = await client.request(method, target, content=body(1), headers=headers)
    slow = await client.request(method, generic(target), content=body(2), headers=headers)
    assert fast.status_code == status, fast.text
    assert answer(fast) == answer(slow)
    if status >= 400:
        assert fast.headers["content-type"] == "application/problem+json"
        problem = fast.json()
        assert problem["type"].endswith(f"-{status}")
        assert problem["report"] == {"requestId": "req-1"}
    events = await stored(client, tenant, services)
    expected = 2 if status == 204 and method == "POST" else 0
    assert len(events) == expected  # a refused request stores nothing


async def test_cors_answers(client, tenant):
    ds = await datastream(client, tenant, origins=[SHOP + "/"])
    url = f"/ee/v1/collect?configId={ds}"
    preflight = await client.options(
        url,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    assert preflight.headers["vary"] == "Origin"
    sent = await client.post(url, content=json.dumps(display("cors-1")), headers={"Origin": SHOP})
    assert sent.status_code == 204
    assert sent.headers["access-control-allow-origin"] == SHOP
    for method in ("OPTIONS", "POST"):
        foreign = await client.request(
            method, url, content="{}", headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert "access-control-allow-origin" not in foreign.headers
        assert "https://evil.example" in foreign.json()["detail"]


async def test_datastream_is_checked(client, tenant, services):
    body = json.dumps(display("ds-1"))
    missing = await client.post("/ee/v2/collect", content=body)
    assert missing.status_code == 400
    assert missing.json()["type"].endswith("EXEG-0002-400")
    unknown = await client.post("/ee/v2/collect?dataStreamId=no-such-stream", content=body)
    assert unknown.status_code == 400
    assert unknown.json()["type"].endswith("EXEG-0003-400")
    assert "no-such-stream" in unknown.json()["detail"]
    assert await stored(client, tenant, services) == []


async def test_limits_and_fallbacks(client, tenant, services):
    ds = await datastream(client, tenant)
    url = f"/ee/v2/collect?dataStreamId={ds}"
    declared = await client.post(url, content=b"{}", headers={"Content-Length": "999999"})
    assert declared.status_code == 413
    assert declared.json()["type"].endswith("-413")
    # What the fast path leaves to the generic stack is answered as on any other route.
    wrong_method = await client.get(url)
    assert wrong_method.status_code == 405
    bad_id = await client.post(url, content=b"{}", headers={"x-request-id": "x" * 200})
    assert bad_id.status_code == 400
    assert bad_id.json()["errors"][0]["pointer"] == "x-request-id"
    bad_utf8 = await client.post(url + "&requestId=%FF", content=b"{}")
    assert bad_utf8.status_code == 400
    assert "UTF-8" in bad_utf8.json()["detail"]
    too_many = await client.post(url, content=b"{}", headers={f"x-h{i}": "1" for i in range(120)})
    assert too_many.status_code == 431
    assert await stored(client, tenant, services) == []


async def test_resent_event_is_stored_once(client, tenant, services):
    ds = await datastream(client, tenant)
    body = json.dumps(display("once-1"))
    for path in (f"/ee/v2/collect?dataStreamId={ds}", f"/ee/v1/collect?configId={ds}"):
        assert (await client.post(path, content=body)).status_code == 204
    events = await stored(client, tenant, services)
    assert [(e["eventId"], e["type"], e["propositionId"]) for e in events] == [
        ("once-1", "display", "prop-1")
    ]
    assert events[0]["datastreamId"] == ds


async def test_request_id_is_echoed(client, tenant):
    ds = await datastream(client, tenant)
    url = f"/ee/v2/collect?dataStreamId={ds}"
    sent = await client.post(
        url, content=json.dumps(display("rid-1")), headers={"x-request-id": "t-1"}
    )
    assert sent.status_code == 204
    assert sent.headers["x-request-id"] == "t-1"
    refused = await client.post(url, content="{", headers={"x-request-id": "t-2"})
    assert refused.status_code == 400
    assert refused.headers["x-request-id"] == "t-2"
    assert "x-request-id" not in (await client.post(url, content="{")).headers


def _counts(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "offerbase_http_requests_total"
    }


async def test_collect_requests_are_counted_by_route_template(client, tenant):
    ds = await datastream(client, tenant, origins=[SHOP + "/"])
    before = _counts((await client.get("/metrics")).text)
    body = json.dumps(display("m-1"))
    assert (await client.post(f"/ee/v2/collect?dataStreamId={ds}", content=body)).status_code == 204
    hinted = f"/ee/or2/v1/collect?configId={ds}"
    assert (await client.post(hinted, content=body)).status_code == 204
    assert (await client.post(hinted, content="{")).status_code == 400
    assert (await client.options(hinted, headers={"Origin": SHOP})).status_code == 204
    after = _counts((await client.get("/metrics")).text)
    for key in (
        ("POST", "/ee/v2/collect", "204"),
        ("POST", "/ee/{hint}/v1/collect", "204"),
        ("POST", "/ee/{hint}/v1/collect", "400"),
        ("OPTIONS", "/ee/{hint}/v1/collect", "204"),
    ):
        assert after.get(key, 0) - before.get(key, 0) == 1, key
    assert not any("or2" in route for _, route, _ in after)


@pytest.mark.parametrize(
    "app_options",
    [{"metrics": False, "access_log": False}, {"metrics": False, "access_log": True}],
    indirect=True,
    ids=["no-metrics", "access-log"],
)
async def test_access_log_and_no_metrics(client, tenant, services, app_options):
    ds = await datastream(client, tenant)
    url = f"/ee/or2/v1/collect?configId={ds}"
    with structlog.testing.capture_logs() as records:
        sent = await client.post(
            url, content=json.dumps(display("a-1")), headers={"x-request-id": "log-1"}
        )
    assert sent.status_code == 204
    assert [e["eventId"] for e in await stored(client, tenant, services)] == ["a-1"]
    lines = [r for r in records if r.get("event") == "request"]
    if not app_options["access_log"]:
        assert lines == []
        return
    (line,) = lines
    assert (line["method"], line["route"], line["status"]) == ("POST", "/ee/{hint}/v1/collect", 204)
    assert line["request_id"] == "log-1"
    assert line["duration_ms"] >= 0
