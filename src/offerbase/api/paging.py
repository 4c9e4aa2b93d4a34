"""Page sizes and `_links` of the API's list endpoints (Offer Library lists, decision events)."""

from __future__ import annotations

from urllib.parse import urlencode

from offerbase.store.library import Page

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

Links = dict[str, dict[str, str]]


def _link(path: str, query: list[tuple[str, str]]) -> dict[str, str]:
    return {"href": f"/{path}?{urlencode(query)}", "type": "application/json"}


def library_links(
    path: str, query: list[tuple[str, str]], orderby: str | None, limit: int, page: Page
) -> Links:
    """Links relative to the API root; the cursor is opaque and carries the snapshot."""
    kept = [(k, v) for k, v in query if k not in ("start", "orderby", "limit")]
    base = [("orderby", orderby or "-modified"), ("limit", str(limit)), *kept]

    def link(cursor: str | None) -> dict[str, str]:
        return _link(path, base if cursor is None else [*base, ("start", cursor)])

    links = {"self": link(page.self_cursor)}
    if page.next_cursor:
        links["next"] = link(page.next_cursor)
    if page.prev_cursor:
        links["prev"] = link(page.prev_cursor)
    return links


def event_links(limit: int, since: str | None, next_cursor: str | None) -> Links:
    """Decision events page forward only: `self`, and `next` while more events follow."""
    base = [("limit", str(limit))] + ([("since", since)] if since else [])
    links = {"self": _link("decision-events", base)}
    if next_cursor:
        links["next"] = _link("decision-events", [*base, ("start", next_cursor)])
    return links
