"""Offer reports of one sandbox, read from the rollups (store/rollups.py) and never from raw
events: a few grouped sums over at most MAX_DAYS days of small tables. Every number is
defined in docs/reports.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from offerbase.store.db import Database
from offerbase.store.rollups import OFFER_SUMS, UNATTRIBUTED
from offerbase.store.scope import Scope
from offerbase.store.tables import (
    report_conversions,
    report_offer_day_uniques,
    report_offer_days,
    report_offer_uniques,
    report_propositions,
    report_uniques,
)
from offerbase.store.tenants import Sandbox

GROUP_KEYS = ("offer", "activity", "placement", "day")
MAX_DAYS = 400  # the longest range one report covers
DEFAULT_DAYS = 30
MAX_GROUP_BY_CHARS = 100  # one groupBy value
MAX_ROWS = 10_000  # result rows of one report; more is refused (ReportTooLarge)
# The output name of each group key and of each filter.
KEY_NAMES = {"offer": "offerId", "activity": "activityId", "placement": "placementId", "day": "day"}
METRICS = (
    "decisions",
    "fallbacks",
    "displays",
    "uniqueDisplays",
    "clicks",
    "uniqueClicks",
    "ctr",
    "conversions",
    "capHits",
    "propositions",
    "fallbackRate",
)
_SUM_NAMES = {
    "decisions": "decisions",
    "fallbacks": "fallbacks",
    "cap_hits": "capHits",
    "displays": "displays",
    "clicks": "clicks",
}
_UNIQUE_NAMES = {"display": "uniqueDisplays", "click": "uniqueClicks"}


class ReportTooLarge(ValueError):
    """The report would have more than MAX_ROWS rows."""


class BadReportQuery(ValueError):
    """A report parameter that is not one; `field` names it (groupBy, from, to)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ReportQuery:
    group_by: tuple[str, ...]  # of GROUP_KEYS, each once, in the caller's order
    first_day: str  # YYYY-MM-DD, inclusive
    last_day: str
    activity_id: str | None = None
    placement_id: str | None = None
    offer_id: str | None = None
    unique_totals: bool = False  # compute the totals' uniques (a scan of the range's uniques)


def parse_group_by(values: Sequence[str] | None) -> tuple[str, ...]:
    """groupBy values, each a comma list (`offer,day`, or repeated), as the group keys in the
    order given, each once; none given: by offer. Raises BadReportQuery."""
    if not values:
        return ("offer",)
    keys: dict[str, None] = {}
    for value in values:
        if len(value) > MAX_GROUP_BY_CHARS:
            raise BadReportQuery(
                "groupBy", f"groupBy: longer than {MAX_GROUP_BY_CHARS} characters."
            )
        for name in value.split(","):
            if name not in GROUP_KEYS:
                raise BadReportQuery(
                    "groupBy", f"groupBy: '{name[:40]}' is none of {', '.join(GROUP_KEYS)}."
                )
            keys[name] = None
    return tuple(keys)


def build_query(
    group_by: Sequence[str] | None,
    first: date | None,
    last: date | None,
    today: date,
    *,
    activity_id: str | None = None,
    placement_id: str | None = None,
    offer_id: str | None = None,
    unique_totals: bool = False,
) -> ReportQuery:
    """A report's query from its parameters: `to` defaults to today (UTC), `from` to 29 days
    before `to` (30 days in all); at most MAX_DAYS days. Raises BadReportQuery."""
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadReportQuery("from", f"The range starts ({first}) after it ends ({last}).")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadReportQuery("from", f"The range covers more than {MAX_DAYS} days.")
    return ReportQuery(
        parse_group_by(group_by),
        first.isoformat(),
        last.isoformat(),
        activity_id,
        placement_id,
        offer_id,
        unique_totals,
    )


@dataclass(frozen=True, slots=True)
class Report:
    results: list[dict[str, Any]]
    totals: dict[str, Any]


def _column(table: sa.Table, key: str) -> sa.ColumnElement[Any]:
    return table.c["day" if key == "day" else f"{key}_id"]


def _where(table: sa.Table, query: ReportQuery) -> list[sa.ColumnElement[bool]]:
    where = [table.c.day >= query.first_day, table.c.day <= query.last_day]
    for key, value in (
        ("activity", query.activity_id),
        ("placement", query.placement_id),
        ("offer", query.offer_id),
    ):
        if value is not None:
            where.append(_column(table, key) == value)
    return where


def _grouped(
    table: sa.Table, keys: tuple[str, ...], query: ReportQuery, *values: sa.ColumnElement[Any]
) -> sa.Select[Any]:
    columns = [_column(table, key) for key in keys]
    select = sa.select(*columns, *values).where(*_where(table, query))
    return select.group_by(*columns) if columns else select


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _finish(row: dict[str, Any], with_propositions: bool) -> dict[str, Any]:
    """The metrics in METRICS order, the ratios computed."""
    row["ctr"] = _ratio(row["clicks"], row["displays"])
    if with_propositions:
        row["fallbackRate"] = _ratio(row["fallbackPropositions"], row["propositions"])
    else:  # grouped or filtered by offer: a proposition is not any one offer's
        row["propositions"] = row["fallbackRate"] = None
    return {name: row[name] for name in METRICS}


def _empty() -> dict[str, Any]:
    return {
        "decisions": 0,
        "fallbacks": 0,
        "displays": 0,
        "uniqueDisplays": 0,
        "clicks": 0,
        "uniqueClicks": 0,
        "conversions": {},
        "capHits": 0,
        "propositions": 0,
        "fallbackPropositions": 0,
    }


async def report(db: Database, sandbox: Sandbox, query: ReportQuery) -> Report:
    """The report of `query` over the sandbox's rollups. Raises ReportTooLarge."""
    scope = Scope.of(sandbox)
    keys = query.group_by
    with_propositions = "offer" not in keys and query.offer_id is None
    finest = set(keys) == set(GROUP_KEYS)  # daily uniques per row are stored already
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def row_of(values: tuple[Any, ...]) -> dict[str, Any]:
        if values not in rows:
            if len(rows) >= MAX_ROWS:
                raise ReportTooLarge(f"The report has more than {MAX_ROWS} rows.")
            rows[values] = _empty()
        return rows[values]

    sums = [sa.func.sum(report_offer_days.c[name]) for name in OFFER_SUMS]
    async with db.read() as conn:
        for found in await conn.execute(
            scope.apply(_grouped(report_offer_days, keys, query, *sums))
        ):
            target = row_of(tuple(found[: len(keys)]))
            for name, value in zip(OFFER_SUMS, found[len(keys) :], strict=True):
                if name in _SUM_NAMES:
                    target[_SUM_NAMES[name]] += int(value or 0)
                elif finest:
                    target["uniqueDisplays" if name == "unique_displays" else "uniqueClicks"] += (
                        int(value or 0)
                    )
        conversions = _grouped(
            report_conversions,
            keys,
            query,
            report_conversions.c.event_type,
            sa.func.sum(report_conversions.c.conversions),
        ).group_by(report_conversions.c.event_type)
        for found in await conn.execute(scope.apply(conversions)):
            target = row_of(tuple(found[: len(keys)]))
            event_type, count = found[len(keys)], int(found[len(keys) + 1] or 0)
            target["conversions"][event_type] = target["conversions"].get(event_type, 0) + count
        if with_propositions:
            props = _grouped(
                report_propositions,
                keys,
                query,
                sa.func.sum(report_propositions.c.propositions),
                sa.func.sum(report_propositions.c.fallback_propositions),
            )
            for found in await conn.execute(scope.apply(props)):
                target = row_of(tuple(found[: len(keys)]))
                target["propositions"] += int(found[len(keys)] or 0)
                target["fallbackPropositions"] += int(found[len(keys) + 1] or 0)
        # Uniques: stored per row at the finest grain and per (offer, day); otherwise
        # distinct identities over the range, from the smallest table that has the keys.
        by_offer_only = query.activity_id is None and query.placement_id is None
        by_offer_only = by_offer_only and set(keys) <= {"offer", "day"}
        if set(keys) == {"offer", "day"} and by_offer_only:
            stored = _grouped(
                report_offer_day_uniques,
                keys,
                query,
                sa.func.sum(report_offer_day_uniques.c.unique_displays),
                sa.func.sum(report_offer_day_uniques.c.unique_clicks),
            )
            for found in await conn.execute(scope.apply(stored)):
                target = row_of(tuple(found[: len(keys)]))
                target["uniqueDisplays"] = int(found[len(keys)] or 0)
                target["uniqueClicks"] = int(found[len(keys) + 1] or 0)
        elif not finest:
            table = report_offer_uniques if by_offer_only else report_uniques
            distinct = sa.func.count(sa.distinct(table.c.identity))
            unique_kinds = _grouped(table, keys, query, table.c.kind, distinct)
            for found in await conn.execute(scope.apply(unique_kinds.group_by(table.c.kind))):
                target = row_of(tuple(found[: len(keys)]))
                target[_UNIQUE_NAMES[found[len(keys)]]] = int(found[len(keys) + 1])
        # The totals' uniques, when asked: distinct identities over the whole range and
        # filters (a scan of the range's uniques, so not by default).
        unique_totals: dict[str, int] | None = None
        if query.unique_totals:
            no_placement = query.activity_id is None and query.placement_id is None
            table = report_offer_uniques if no_placement else report_uniques
            distinct = sa.func.count(sa.distinct(table.c.identity))
            total_uniques = _grouped(table, (), query, table.c.kind, distinct)
            unique_totals = {
                kind: int(count)
                for kind, count in await conn.execute(
                    scope.apply(total_uniques.group_by(table.c.kind))
                )
            }
    totals = _empty()
    conversions_total: Counter[str] = Counter()
    for counted in rows.values():
        for name in ("decisions", "fallbacks", "displays", "clicks", "capHits"):
            totals[name] += counted[name]
        totals["propositions"] += counted["propositions"]
        totals["fallbackPropositions"] += counted["fallbackPropositions"]
        conversions_total.update(counted["conversions"])
    totals["conversions"] = dict(sorted(conversions_total.items()))
    for kind, name in _UNIQUE_NAMES.items():
        totals[name] = None if unique_totals is None else unique_totals.get(kind, 0)
    results = []
    for values, metrics in sorted(rows.items(), key=lambda item: item[0]):
        row: dict[str, Any] = {
            KEY_NAMES[key]: None if value == UNATTRIBUTED else value
            for key, value in zip(keys, values, strict=True)
        }
        metrics["conversions"] = dict(sorted(metrics["conversions"].items()))
        row.update(_finish(metrics, with_propositions))
        results.append(row)
    return Report(results, _finish(totals, with_propositions))
