"""`/metrics` and error handling as an operator sees them, through HTTP on both backends.

Metrics are process-wide counters shared by every app in the test process, so each test
compares a scrape before and after its own requests."""

from __future__ import annotations

import httpx
import pytest
from decisioning_catalog import DPS, Catalog, criterion, decision_request
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from offerbase.api.app import create_app
from offerbase.api.deps import services_of
from offerbase.config import Settings

ODS = "/data/core/ods/decisions"


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_and_timed_by_route_template(client, tenant) -> None:  # type: ignore[no-untyped-def]
    offer_id = "metrics-offer-8f3a"
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/health")).status_code == 200
    missing = await client.get(
        f"{DPS}/offers/{offer_id}?offer-type=personalized", headers=tenant.headers
    )
    assert missing.status_code == 404
    after = await scrape(client)

    health = {"method": "GET", "route": "/health", "status": "200"}
    assert (
        value(after, "offerbase_http_requests_total", **health)
        - value(before, "offerbase_http_requests_total", **health)
        == 3
    )
    timed = {"method": "GET", "route": "/health"}
    count = "offerbase_http_request_duration_seconds_count"
    assert value(after, count, **timed) - value(before, count, **timed) == 3
    # The id in the path is not a label: the route template is.
    routes = {dict(labels).get("route") for _, labels in after}
    assert any(r and r.startswith(f"{DPS}/") and "{" in r for r in routes)
    assert not any(offer_id in (r or "") for r in routes)


async def test_unknown_paths_and_methods_do_not_create_series(client) -> None:  # type: ignore[no-untyped-def]
    before = await scrape(client)
    assert (await client.get("/no/such/path/123")).status_code == 404
    assert (await client.request("BREW", "/health")).status_code == 405
    after = await scrape(client)
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    other = {"method": "other", "route": "/health", "status": "405"}
    name = "offerbase_http_requests_total"
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 1
    assert value(after, name, **other) - value(before, name, **other) == 1
    assert not any("/no/such" in str(labels) or "BREW" in str(labels) for _, labels in after)


async def test_decision_items_are_counted_by_kind(client, tenant, app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services_of(app).snapshots, "poll_seconds", 0)
    catalog = Catalog(client, tenant)
    await catalog.placement("web")
    await catalog.offer("gold-only", ["web"], priority=5)
    await catalog.fallback("fb", ["web"])
    await catalog.collection("all", ["gold-only"])
    await catalog.decision("dec", [criterion("all")], fallback="fb")
    headers = {**tenant.headers, "Content-Type": "application/json"}
    name = "offerbase_decision_items_total"

    before = await scrape(client)
    response = await client.post(ODS, json=decision_request([("dec", "web")]), headers=headers)
    assert response.status_code == 200, response.text
    mid = await scrape(client)
    # Archiving the only offer leaves the fallback.
    patch = [{"op": "replace", "path": "/status", "value": "archived"}]
    archived = await client.patch(
        f"{DPS}/offers/gold-only?offer-type=personalized", json=patch, headers=tenant.headers
    )
    assert archived.status_code == 200, archived.text
    response = await client.post(ODS, json=decision_request([("dec", "web")]), headers=headers)
    assert response.json()["xdm:propositions"][0]["xdm:fallback"]["xdm:id"] == "fb"
    after = await scrape(client)

    personalized = value(mid, name, kind="personalized") - value(before, name, kind="personalized")
    assert personalized == 1
    assert value(after, name, kind="fallback") - value(mid, name, kind="fallback") == 1
    assert value(after, name, kind="personalized") == value(mid, name, kind="personalized")
    # The hot path is a plain Starlette route: it is labelled by its template all the same.
    served = {"method": "POST", "route": ODS, "status": "200"}
    requests = "offerbase_http_requests_total"
    assert value(after, requests, **served) - value(before, requests, **served) == 2


async def test_an_unexpected_failure_answers_a_problem_and_is_counted(database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path, secret_key="k" * 32), db=database)

    async def broken(_request):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    app.router.routes.append(Route("/broken", broken))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://offerbase.test") as http:
        before = await scrape(http)
        response = await http.get("/broken", headers={"x-request-id": "rid-500"})
        after = await scrape(http)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500
    assert "bug" not in response.text  # internals stay in the log
    labels = {"method": "GET", "route": "/broken", "status": "500"}
    name = "offerbase_http_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1


@pytest.mark.parametrize("enabled", [True, False])
async def test_metrics_endpoint_can_be_switched_off(database, tmp_path, enabled) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, secret_key="k" * 32, metrics=enabled)
    app = create_app(settings, db=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://offerbase.test") as http:
        response = await http.get("/metrics")
    assert response.status_code == (200 if enabled else 404)
    if not enabled:
        assert response.headers["content-type"] == "application/problem+json"
