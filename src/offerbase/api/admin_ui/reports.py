"""The Reports page: the metrics of `GET /data/core/ods/reports` (store/reports.py, defined in
docs/reports.md) as charts and tables, with a date range, filters and CSV downloads.

The numbers come from the same `store.reports.report` calls as the API's, with the same
defaults and limits (`build_query`), and the CSV is the API's (`api/reports.py` `report_csv`).
Charts are inline SVG drawn here (no script, no CDN), each with its numbers in a table next to
it: the table is the accessible form, the chart a picture of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from offerbase.api import ranking_report
from offerbase.api.admin_ui import routes as ui
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.reports import report_csv
from offerbase.store import ranking
from offerbase.store import reports as store
from offerbase.store.tenants import Sandbox

router = APIRouter(prefix=ui.ROOT, include_in_schema=False)

MAX_BARS = 20  # bars in one chart (the table below it has every row)
CHART_WIDTH, BAR_HEIGHT, LINE_HEIGHT = 480, 24, 180
# The downloads: (name, group keys).
VIEWS = {"day": ("day",), "offer": ("offer",), "decision": ("activity",)}


@dataclass(frozen=True)
class Filters:
    first: str
    last: str
    activity_id: str
    placement_id: str
    offer_id: str

    @classmethod
    def of(cls, params: Any) -> Filters:
        def text(name: str) -> str:
            return str(params.get(name, "")).strip()[:255]

        return cls(
            text("from"), text("to"), text("activityId"), text("placementId"), text("offerId")
        )

    def link(self, **extra: str) -> str:
        params = {
            "from": self.first,
            "to": self.last,
            "activityId": self.activity_id,
            "placementId": self.placement_id,
            "offerId": self.offer_id,
            **extra,
        }
        return urlencode({key: value for key, value in params.items() if value})


def _day(value: str, name: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = "A day such as 2026-12-01."
        return None


def _query(
    filters: Filters, group_by: tuple[str, ...], today: date, errors: dict[str, str]
) -> store.ReportQuery | None:
    first, last = _day(filters.first, "from", errors), _day(filters.last, "to", errors)
    if errors:
        return None
    try:
        return store.build_query(
            list(group_by),
            first,
            last,
            today,
            activity_id=filters.activity_id or None,
            placement_id=filters.placement_id or None,
            offer_id=filters.offer_id or None,
        )
    except store.BadReportQuery as exc:
        errors["to" if exc.field == "groupBy" else exc.field] = exc.detail
        return None


# -- charts --------------------------------------------------------------------------------------


def bars(rows: list[tuple[str, float]]) -> dict[str, Any]:
    """A horizontal bar chart of (label, value), the largest first, at most MAX_BARS bars."""
    shown = sorted(rows, key=lambda row: -row[1])[:MAX_BARS]
    top = max((value for _, value in shown), default=0) or 1
    label_width = 150
    plot = CHART_WIDTH - label_width - 60
    items = [
        {
            "y": index * BAR_HEIGHT,
            "width": max(1.0, plot * value / top) if value else 0,
            "label": label if len(label) <= 20 else label[:19] + "…",
            "value": value,
        }
        for index, (label, value) in enumerate(shown)
    ]
    return {
        "width": CHART_WIDTH,
        "height": max(1, len(items)) * BAR_HEIGHT,
        "label_width": label_width,
        "items": items,
        "hidden": max(0, len(rows) - len(shown)),
    }


def line(points: list[tuple[str, float | None]]) -> dict[str, Any]:
    """A line chart of (day, value or None): a gap where the value is None."""
    top = max((value for _, value in points if value is not None), default=0) or 1
    left, bottom, plot_w, plot_h = 50, LINE_HEIGHT - 25, CHART_WIDTH - 70, LINE_HEIGHT - 40
    step = plot_w / max(1, len(points) - 1)
    segments: list[list[str]] = [[]]
    for index, (_, value) in enumerate(points):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x, y = left + index * step, bottom - plot_h * value / top
        segments[-1].append(f"{x:.1f},{y:.1f}")
    ticks = [0, len(points) - 1] if len(points) > 1 else [0]
    return {
        "width": CHART_WIDTH,
        "height": LINE_HEIGHT,
        "left": left,
        "bottom": bottom,
        "top_value": top,
        "top_y": bottom - plot_h,
        "segments": [" ".join(segment) for segment in segments if segment],
        "dots": [segment for segment in segments if len(segment) == 1],
        "ticks": [(left + i * step, points[i][0]) for i in ticks if points],
    }


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


ui.templates.filters["percent"] = percent


# -- the page ------------------------------------------------------------------------------------


async def _strategy_reports(services: Services, sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every ranking strategy of the sandbox (at most 5) as the API's ranking-strategy report
    (model versus holdout since the strategy's first decision: the report has no date range)."""
    snapshot = await services.snapshots.get(sandbox)
    return [
        ranking_report.report_body(
            strategy, await ranking.strategy_totals(services.db, sandbox.pk, strategy.id)
        )
        for strategy in sorted(snapshot.catalog.strategies, key=lambda s: s.id)
    ]


@router.get("/sandbox/{sandbox_name}/reports")
async def reports_page(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, sandboxes, sandbox = await ui._sandbox_page(services, request, sandbox_name)
    filters = Filters.of(request.query_params)
    errors: dict[str, str] = {}
    today = services.clock().date()
    results: dict[str, store.Report] = {}
    span: store.ReportQuery | None = None
    for name, group_by in VIEWS.items():
        query = _query(filters, group_by, today, errors)
        if query is None:
            break
        span = query
        try:
            results[name] = await store.report(services.db, sandbox, query)
        except store.ReportTooLarge as exc:
            errors["to"] = f"{exc} Narrow the range or the filters."
            break
    base = f"{ui.ROOT}/sandbox/{quote(sandbox.name, safe='')}/reports"
    context: dict[str, Any] = {"strategies": await _strategy_reports(services, sandbox)}
    if not errors and span is not None:
        days = results["day"].results
        offers = results["offer"].results
        context |= {
            "totals": results["offer"].totals,
            "decision_totals": results["decision"].totals,
            "first_day": span.first_day,
            "last_day": span.last_day,
            "days": days,
            "ctr_chart": line([(row["day"], row["ctr"]) for row in days]),
            "offers": offers,
            "displays_chart": bars(
                [(row["offerId"] or "(none)", row["displays"]) for row in offers]
            ),
            "clicks_chart": bars([(row["offerId"] or "(none)", row["clicks"]) for row in offers]),
            "caps_chart": bars(
                [(row["offerId"] or "(none)", row["capHits"]) for row in offers if row["capHits"]]
            ),
            "decisions": results["decision"].results,
            "fallback_chart": bars(
                [
                    (row["activityId"] or "(none)", row["fallbackRate"])
                    for row in results["decision"].results
                    if row["fallbackRate"] is not None
                ]
            ),
            "csv": {name: f"{base}.csv?{filters.link(view=name)}" for name in VIEWS},
        }
    return ui._page(
        request,
        "reports.html",
        422 if errors else 200,
        title="Reports",
        section="reports",
        filters=filters,
        errors=errors,
        base=base,
        **context,
        **ui._in_layout(visitor, sandboxes, sandbox),
    )


@router.get("/sandbox/{sandbox_name}/reports.csv")
async def reports_csv(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    """One of the page's tables as the API's CSV (`view`: day, offer or decision)."""
    visitor, sandboxes, sandbox = await ui._sandbox_page(services, request, sandbox_name)
    view = str(request.query_params.get("view", "offer"))
    group_by = VIEWS.get(view, VIEWS["offer"])
    errors: dict[str, str] = {}
    query = _query(Filters.of(request.query_params), group_by, services.clock().date(), errors)
    message = "; ".join(errors.values())
    if query is not None:
        try:
            report = await store.report(services.db, sandbox, query)
        except store.ReportTooLarge as exc:
            message = str(exc)
        else:
            filename = f"offerbase-report-{view}-{query.first_day}-{query.last_day}.csv"
            return Response(
                report_csv(report, query.group_by),
                media_type="text/csv",
                headers={
                    **ui.SECURITY_HEADERS,
                    "Content-Disposition": f'attachment; filename="{filename}"',
                },
            )
    layout = ui._in_layout(visitor, sandboxes, sandbox)
    return ui._page(request, "message.html", 422, title="Reports", message=message, **layout)
