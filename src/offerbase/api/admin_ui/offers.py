"""The Offers page's query: search, status filter, sort and paging, turned into the same list
call the Offer Library API makes (store/library.py `Library.list` with store/listing.py terms,
the API's signed cursors), so the page and `GET /data/core/dps/offers` cannot disagree.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from offerbase.api.paging import CursorSigner
from offerbase.store.errors import InvalidField, Unprocessable
from offerbase.store.library import Library, Page
from offerbase.store.listing import OrderKey, Term, parse_orderby, parse_term

PAGE_SIZE = 25
MAX_SEARCH_CHARS = 200
KINDS = ("personalized-offer",)  # fallback offers have a page of their own
STATUSES = ("draft", "approved", "archived")
# What the sort menu offers: its label and the API's `orderby`.
SORTS: dict[str, tuple[str, str]] = {
    "modified": ("Last modified (newest first)", "-modified"),
    "name": ("Name (A to Z)", "name"),
    "-name": ("Name (Z to A)", "-name"),
    "priority": ("Priority (highest first)", "-rank.priority"),
    "status": ("Status", "status"),
}
DEFAULT_SORT = "modified"


@dataclass(frozen=True)
class OfferQuery:
    """What the visitor asked for, each part already checked (unknown values fall back)."""

    search: str
    status: str
    sort: str
    start: str | None

    @classmethod
    def of(cls, params: Any) -> OfferQuery:
        search = str(params.get("q", "")).strip()[:MAX_SEARCH_CHARS]
        status = str(params.get("status", ""))
        sort = str(params.get("sort", DEFAULT_SORT))
        start = params.get("start") or None
        return cls(
            search,
            status if status in STATUSES else "",
            sort if sort in SORTS else DEFAULT_SORT,
            None if start is None else str(start),
        )

    def terms(self) -> list[Term]:
        terms = []
        if self.search:
            # A whole-value, case-insensitive RE2 match: "contains the text", literally.
            terms.append(parse_term(f"name~.*{_literal(self.search)}.*"))
        if self.status:
            terms.append(Term("status", "==", self.status))
        return terms

    def order(self) -> list[OrderKey]:
        return parse_orderby(SORTS[self.sort][1])

    def link(self, start: str | None) -> dict[str, str]:
        """The query string of this query at another page."""
        params = {"q": self.search, "status": self.status, "sort": self.sort}
        if start:
            params["start"] = start
        return {key: value for key, value in params.items() if value}


def approved(body: dict[str, Any]) -> dict[str, Any]:
    """The Approve action's change to an offer's body; only a draft can be approved (archived
    is final, approved already is)."""
    status = body.get("status", "draft")
    if status != "draft":
        message = f"Only a draft offer can be approved; this one is {status}."
        raise Unprocessable(message, [InvalidField("/status", message)])
    return {**body, "status": "approved"}


def _literal(text: str) -> str:
    """`text` as an RE2 pattern that matches it literally (punctuation escaped)."""
    return "".join(f"\\{char}" if char in string.punctuation else char for char in text)


async def offers_page(
    library: Library, query: OfferQuery, signer: CursorSigner
) -> tuple[Page, str | None, str | None]:
    """The page of offers, with the signed cursors of the next and previous pages. A cursor not
    issued here for this sandbox raises the API's 400 problem (api/paging.py)."""
    position = signer.open(query.start)
    page = await library.list(KINDS, query.terms(), query.order(), PAGE_SIZE, position)
    return page, signer.sign(page.next_cursor), signer.sign(page.prev_cursor)
