"""Offer reports: `GET /data/core/ods/reports`, the rollups of store/reports.py as JSON or
CSV, for the caller's sandbox. Every number is defined in docs/reports.md."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from offerbase.api import schemas
from offerbase.api.auth import CallerDep
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem, field_error
from offerbase.api.responses import json_response
from offerbase.store import reports as store

router = APIRouter(prefix="/data/core/ods", tags=["Decisioning"])

_NAME = "(offer|activity|placement|day)"
GroupBy = Annotated[
    list[str] | None,
    Query(
        alias="groupBy",
        max_length=4,
        description="Group keys, a comma list or repeated: offer, activity, placement, day "
        "(default offer).",
        # Published for clients and the fuzzer; store.parse_group_by checks it, so that a bad
        # value is a problem naming groupBy (pydantic would name the list index).
        json_schema_extra={
            "items": {
                "type": "string",
                "pattern": f"^{_NAME}(,{_NAME})*$",
                "maxLength": store.MAX_GROUP_BY_CHARS,
            }
        },
    ),
]
Day = Annotated[date | None, Query(description="A UTC day, YYYY-MM-DD, inclusive.")]


def _id(alias: str) -> Any:
    """One id filter. Empty means no filter, as an empty form field does (clients that build
    the query from a form or from a response's null send `offerId=`)."""
    return Query(alias=alias, max_length=255, description="Only this id (empty: every id).")


_COUNT = {"type": "integer", "minimum": 0}
_RATIO = {"type": ["number", "null"], "minimum": 0}
_METRICS: dict[str, Any] = {
    "decisions": _COUNT,
    "fallbacks": _COUNT,
    "displays": _COUNT,
    "uniqueDisplays": _COUNT,
    "clicks": _COUNT,
    "uniqueClicks": _COUNT,
    "ctr": _RATIO,
    "conversions": {"type": "object", "additionalProperties": _COUNT},
    "capHits": _COUNT,
    "propositions": {"type": ["integer", "null"], "minimum": 0},
    "fallbackRate": _RATIO,
}
_KEY = {"type": ["string", "null"], "description": "null: unattributed"}
_ROW = {
    "type": "object",
    "required": list(_METRICS),
    "properties": {**dict.fromkeys(store.KEY_NAMES.values(), _KEY), **_METRICS},
}
_REPORT = {
    "type": "object",
    "required": ["results", "totals"],
    "properties": {
        "results": {"type": "array", "items": _ROW},
        "totals": {
            "type": "object",
            "required": list(_METRICS),
            "properties": {
                **_METRICS,
                "uniqueDisplays": {"type": ["integer", "null"], "minimum": 0},
                "uniqueClicks": {"type": ["integer", "null"], "minimum": 0},
            },
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **schemas.COMMON_RESPONSES,
    200: {
        "description": "The report; CSV (results only) with `Accept: text/csv`.",
        "content": {
            "application/json": {"schema": _REPORT},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    422: schemas.problem_response(
        "A range that is not one (from after to, more than 400 days), or a report of more "
        "than 10000 rows; `errors` names the parameter."
    ),
}


def _csv_cell(value: Any) -> str:
    """A value as a CSV cell; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(report: store.Report, group_by: tuple[str, ...]) -> str:
    """One line per result row: the group keys, every metric, `conversions:<event type>` for
    each event type found (empty cells: unattributed keys, null ratios)."""
    event_types = sorted({name for row in report.results for name in row["conversions"]})
    metrics = [name for name in store.METRICS if name != "conversions"]
    keys = [store.KEY_NAMES[key] for key in group_by]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*keys, *metrics, *(f"conversions:{name}" for name in event_types)])
    for row in report.results:
        writer.writerow(
            [_csv_cell(row[name]) for name in (*keys, *metrics)]
            + [str(row["conversions"].get(name, 0)) for name in event_types]
        )
    return out.getvalue()


@router.get(
    "/reports",
    summary="Offer report: decisions, displays, clicks, CTR, conversions, cap hits",
    responses=_RESPONSES,
)
async def get_report(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    group_by: GroupBy = None,
    first: Annotated[Day, Query(alias="from")] = None,
    last: Annotated[Day, Query(alias="to")] = None,
    activity_id: Annotated[str | None, _id("activityId")] = None,
    placement_id: Annotated[str | None, _id("placementId")] = None,
    offer_id: Annotated[str | None, _id("offerId")] = None,
    unique_totals: Annotated[
        bool,
        Query(
            alias="uniqueTotals",
            description="Also count the totals' unique displays and clicks (distinct "
            "identities over the range: a scan of its uniques; null otherwise).",
        ),
    ] = False,
) -> Response:
    try:
        query = store.build_query(
            group_by,
            first,
            last,
            services.clock().date(),
            activity_id=activity_id or None,
            placement_id=placement_id or None,
            offer_id=offer_id or None,
            unique_totals=unique_totals,
        )
        report = await store.report(services.db, caller.sandbox, query)
    except store.BadReportQuery as exc:
        status = 400 if exc.field == "groupBy" else 422
        raise ApiProblem(
            status,
            "Bad Request" if status == 400 else "Unprocessable Entity",
            exc.detail,
            errors=[field_error(exc.field, exc.detail)],
        ) from exc
    except store.ReportTooLarge as exc:
        detail = f"{exc} Narrow the range, the filters or the grouping."
        raise ApiProblem(
            422, "Unprocessable Entity", detail, errors=[field_error("groupBy", detail)]
        ) from exc
    if "text/csv" in request.headers.get("accept", ""):
        return Response(report_csv(report, query.group_by), media_type="text/csv")
    return json_response({"results": report.results, "totals": report.totals})
