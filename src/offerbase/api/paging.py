"""Page sizes, signed cursors and `_links` of the API's list endpoints (Offer Library lists,
decision events).

A `start` cursor is the store's position (a catalog version and offset, an event row id) with
an HMAC of it and of the sandbox, keyed by the server's secret (shared by every worker): a
cursor that was not issued by this server for this sandbox (forged, edited, truncated, or
another tenant's) is a 400 before the store reads it. The store range-checks the position too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlencode

from offerbase.api.problems import ApiProblem, field_error
from offerbase.catalog.schema import parse_datetime
from offerbase.store.clock import iso
from offerbase.store.library import Page
from offerbase.store.listing import ListQueryError, OrderKey, Term, checked

DEFAULT_PAGE_SIZE = 50
# The query parameters of an Offer Library list (orderBy is the parameter tables' spelling).
LIST_PARAMETERS = frozenset({"offer-type", "property", "orderby", "orderBy", "limit", "start"})
MAX_PAGE_SIZE = 1000
MAX_CURSOR_CHARS = 256  # what this server issues is far shorter
_MAC_BYTES = 16
# What this server issues: a base64url position, a dot, a 16-byte base64url MAC.
_ISSUED = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}")
_TIMESTAMPS = frozenset({"created", "modified"})


class CursorSigner:
    """Signs the store's cursors for one sandbox, and opens what a client sends back."""

    def __init__(self, secret: str, sandbox_pk: int) -> None:
        # A key of its own, derived from the token-signing secret: a cursor is never a token.
        self._key = hmac.digest(secret.encode(), b"offerbase list cursor", hashlib.sha256)
        self._sandbox = str(sandbox_pk).encode()

    def _mac(self, position: str) -> str:
        digest = hmac.digest(self._key, self._sandbox + b"|" + position.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")

    def sign(self, position: str | None) -> str | None:
        return None if position is None else f"{position}.{self._mac(position)}"

    def open(self, cursor: str | None) -> str | None:
        """The store's position in ``cursor``; a 400 naming `start` if it was not issued here."""
        if cursor is None:
            return None
        position, _, mac = cursor.rpartition(".")
        if (
            len(cursor) > MAX_CURSOR_CHARS
            or not position
            or not hmac.compare_digest(mac.encode(), self._mac(position).encode())
        ):
            message = "The 'start' cursor is not one this server issued for this sandbox."
            raise ApiProblem(400, "Bad Request", message, errors=[field_error("start", message)])
        return position


def boundary(start: str, order: list[OrderKey]) -> Term:
    """A `start` that is not a cursor of this server, in the form Adobe's next links show: the
    first sort key's value at the page boundary (`start=2024-10-18T22:22:35.048Z` with
    `orderby=-modified`). The page holds what comes strictly after it in the list's order."""
    key = order[0]
    value = start
    if key.field in _TIMESTAMPS:
        moment = parse_datetime(start)
        if moment is None:
            message = (
                f"'start' is neither a cursor from _links nor a {key.field} time "
                "(ISO-8601 with an offset or Z) to start after."
            )
            raise ApiProblem(400, "Bad Request", message, errors=[field_error("start", message)])
        value = iso(moment)  # the stored form compares as text
    try:
        return checked(Term(key.field, "<" if key.descending else ">", value), "start")
    except ListQueryError as exc:
        raise ApiProblem(
            400, "Bad Request", exc.message, errors=[field_error("start", exc.message)]
        ) from exc


def is_issued_cursor(start: str) -> bool:
    """Whether `start` has the form of a cursor this server issues (then it must verify)."""
    return _ISSUED.fullmatch(start) is not None


Links = dict[str, dict[str, str]]


def _link(path: str, query: list[tuple[str, str]]) -> dict[str, str]:
    return {"href": f"/{path}?{urlencode(query)}", "type": "application/json"}


def library_links(
    path: str,
    query: list[tuple[str, str]],
    orderby: str | None,
    limit: int,
    page: Page,
    signer: CursorSigner,
) -> Links:
    """Links relative to the API root; the cursor is opaque and carries the snapshot."""
    kept = [(k, v) for k, v in query if k not in ("start", "orderby", "orderBy", "limit")]
    base = [("orderby", orderby or "-modified"), ("limit", str(limit)), *kept]

    def link(position: str | None) -> dict[str, str]:
        cursor = signer.sign(position)
        return _link(path, base if cursor is None else [*base, ("start", cursor)])

    links = {"self": link(page.self_cursor)}
    if page.next_cursor:
        links["next"] = link(page.next_cursor)
    if page.prev_cursor:
        links["prev"] = link(page.prev_cursor)
    return links


def event_links(
    limit: int,
    since: str | None,
    next_position: str | None,
    signer: CursorSigner,
    *,
    path: str = "decision-events",
    filters: list[tuple[str, str]] | None = None,
) -> Links:
    """Event lists (decision or interaction events) page forward only: `self`, and `next`
    while more events follow; `filters` are further query parameters the links keep."""
    base = [("limit", str(limit))] + ([("since", since)] if since else []) + (filters or [])
    links = {"self": _link(path, base)}
    cursor = signer.sign(next_position)
    if cursor:
        links["next"] = _link(path, [*base, ("start", cursor)])
    return links
