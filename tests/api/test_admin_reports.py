"""The admin UI's Reports page over HTTP, on SQLite and PostgreSQL: the numbers of
`GET /data/core/ods/reports` for the same range and filters (fed by docs/reports.md's worked
example through the real entry points), its CSV downloads, bad ranges shown next to the field,
and another organization seeing none of it."""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from decisioning_catalog import Catalog
from test_admin_simulation import signed_in
from test_admin_ui import text_of
from test_reports import DAY_1, RANGE, the_example

from conftest import Tenant, make_tenant

PAGE = "/admin/sandbox/prod/reports"
API = "/data/core/ods/reports"


@pytest.fixture
def now() -> dict[str, datetime]:
    return {"now": DAY_1}


@pytest.fixture
def app_options(now: dict[str, datetime]) -> dict[str, Any]:
    return {"clock": lambda: now["now"], "rng": random.Random(7), "snapshot_poll_seconds": 0}


async def api_report(client: httpx.AsyncClient, tenant: Tenant, **params: str) -> Any:
    response = await client.get(API, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def table(html: str, label: str) -> list[list[str]]:
    """The body rows of the table in the region named `label`, as cell texts."""
    found = re.search(rf'aria-label="{re.escape(label)}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert found, label
    return [
        [text_of(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)
    ]


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


async def test_the_page_shows_the_apis_numbers_with_charts_and_csv(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, services: Any, now: Any
) -> None:
    await the_example(client, tenant, Catalog(client, tenant), services, now)
    async with signed_in(app, tenant.org, "viewer") as http:
        page = await http.get(PAGE, params=RANGE)
        assert page.status_code == 200, page.text
        html = page.text

        by_day = await api_report(client, tenant, groupBy="day", **RANGE)
        assert table(html, "CTR per day table") == [
            [
                row["day"],
                str(row["decisions"]),
                str(row["displays"]),
                str(row["clicks"]),
                percent(row["ctr"]),
            ]
            for row in by_day["results"]
        ]
        by_offer = await api_report(client, tenant, groupBy="offer", **RANGE)
        offers = table(html, "Offers table")
        assert [row[0] for row in offers] == [
            row["offerId"] or "(unattributed)" for row in by_offer["results"]
        ]
        for cells, row in zip(offers, by_offer["results"], strict=True):
            assert cells[2] == str(row["displays"])
            assert cells[4] == str(row["clicks"])
            assert cells[6] == percent(row["ctr"])
            assert cells[7] == str(row["capHits"])
        assert any(row["capHits"] for row in by_offer["results"])  # the example caps gold
        by_decision = await api_report(client, tenant, groupBy="activity", **RANGE)
        decisions = table(html, "Decisions table")
        assert [(row[0], row[3]) for row in decisions] == [
            (row["activityId"] or "(unattributed)", percent(row["fallbackRate"]))
            for row in by_decision["results"]
        ]
        # Charts: inline SVG, labelled, one bar per offer (none is past the chart's limit).
        assert '<title id="displays-title">Displays per offer' in html
        bars = re.search(
            r'<svg class="chart"[^>]*aria-labelledby="displays-title".*?</svg>', html, re.S
        )
        assert bars
        assert bars.group(0).count("<rect") == len(by_offer["results"])
        assert "<polyline" in html  # CTR over time
        # Ranking strategies: this sandbox has none (their numbers: the test below).
        assert "This sandbox has no ranking strategy." in html

        # The CSV download is the API's CSV for the same query.
        link = re.search(r'href="([^"]+reports\.csv\?[^"]*view=offer[^"]*)"', html)
        assert link
        csv_response = await http.get(link.group(1).replace("&amp;", "&"))
        assert csv_response.status_code == 200
        assert csv_response.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv_response.headers["content-disposition"]
        api_csv = await client.get(
            API,
            params={"groupBy": "offer", **RANGE},
            headers={**tenant.headers, "Accept": "text/csv"},
        )
        assert csv_response.text == api_csv.text

        # A filter narrows every table as the API's filter does.
        gold = await http.get(PAGE, params={**RANGE, "offerId": "gold"})
        assert [row[0] for row in table(gold.text, "Offers table")] == ["gold"]


async def test_a_bad_range_is_shown_next_to_its_field(
    app: Any, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with signed_in(app, tenant.org) as http:
        for params, field in (
            ({"from": "2026-11-25", "to": "2026-11-24"}, "from"),
            ({"from": "2020-01-01", "to": "2026-11-24"}, "from"),
            ({"from": "not a day"}, "from"),
        ):
            response = await http.get(PAGE, params=params)
            assert response.status_code == 422, params
            assert f'id="{field}-error"' in response.text, params
            assert "Totals" not in text_of(response.text)
        csv_response = await http.get(f"{PAGE}.csv", params={"from": "x"})
        assert csv_response.status_code == 422


async def test_another_organization_sees_none_of_our_reports(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, services: Any, now: Any
) -> None:
    await the_example(client, tenant, Catalog(client, tenant), services, now)
    other = await make_tenant(app, client, ("prod", f"theirs-{uuid.uuid4().hex[:8]}"))
    async with signed_in(app, other.org, "admin") as them:
        page = await them.get(PAGE, params=RANGE)
        assert page.status_code == 200
        assert table(page.text, "Offers table") == [["No offer in this range."]]
        assert "gold" not in page.text
        assert "silver" not in page.text
        csv_response = await them.get(f"{PAGE}.csv", params={**RANGE, "view": "offer"})
        assert "gold" not in csv_response.text
        assert (await them.get(f"/admin/sandbox/{tenant.sandbox}x/reports")).status_code == 404


async def test_ranking_strategies_show_model_versus_holdout_as_the_api_reports_them(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, services: Any
) -> None:
    from test_ai_ranking_learning import ranked_decision, report, written

    visitor = await ranked_decision(
        Catalog(client, tenant), client, tenant, ["gold", "silver"], holdout=50
    )
    async with signed_in(app, tenant.org, "viewer") as http:
        empty = (await http.get(PAGE)).text
        assert "No display yet." in empty  # the strategy, before any feedback
        clicks = random.Random(3)
        for _ in range(40):
            proposition = await visitor.fetch()
            await written(services)
            await visitor.display(proposition)
            if clicks.random() < 0.5:
                await visitor.click(proposition, event_id=f"click-{proposition['id']}")
        await written(services)
        await services.learner.run_once()
        api = await report(client, tenant)
        page = await http.get(PAGE)
        assert page.status_code == 200, page.text
    html = page.text
    assert "Strategy best" in html
    for arm, row in api["arms"].items():
        assert row["displays"] > 0, arm  # 50% holdout: both arms served
        cells = f"<tr><td>{arm}</td><td>{row['displays']}</td><td>{row['clicks']}</td>"
        assert cells + f"<td>{percent(row['ctr'])}</td></tr>" in html
    for offer in api["offers"]:
        assert (
            f'<td class="name">{offer["offerId"]}</td><td>{percent(offer["estimate"])}</td>'
            f"<td>{offer['displays']}</td>"
        ) in html
    assert "two-proportion z-test" in html
