"""One list for every catalog kind: search by name, filters, sort and paging, turned into the
same list call the Offer Library API makes (store/library.py `Library.list` with store/listing.py
terms, the API's signed cursors), so a page and `GET /data/core/dps/...` cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offerbase.api.admin_ui.kinds import KindPage, sorts_of
from offerbase.api.paging import CursorSigner
from offerbase.store.library import Library, Page
from offerbase.store.listing import OrderKey, Term, contains_name, parse_orderby

PAGE_SIZE = 25
MAX_SEARCH_CHARS = 200
DEFAULT_SORT = "modified"


@dataclass(frozen=True)
class ListQuery:
    """What the visitor asked for, each part already checked (unknown values fall back)."""

    page: KindPage
    search: str
    filters: dict[str, str]
    sort: str
    start: str | None

    @classmethod
    def of(cls, page: KindPage, params: Any) -> ListQuery:
        search = str(params.get("q", "")).strip()[:MAX_SEARCH_CHARS]
        filters = {}
        for name, _label, allowed in page.filters:
            value = str(params.get(name, ""))
            if value in allowed:
                filters[name] = value
        sort = str(params.get("sort", DEFAULT_SORT))
        start = params.get("start") or None
        return cls(
            page,
            search,
            filters,
            sort if sort in sorts_of(page) else DEFAULT_SORT,
            None if start is None else str(start),
        )

    def terms(self) -> list[Term]:
        terms = []
        if self.search:
            terms.append(contains_name(self.search))
        terms += [Term(name, "==", value) for name, value in self.filters.items()]
        return terms

    def order(self) -> list[OrderKey]:
        return parse_orderby(sorts_of(self.page)[self.sort][1])

    def link(self, start: str | None) -> dict[str, str]:
        """The query string of this query at another page."""
        params = {"q": self.search, **self.filters, "sort": self.sort}
        if start:
            params["start"] = start
        return {key: value for key, value in params.items() if value}


async def list_page(
    library: Library, query: ListQuery, signer: CursorSigner
) -> tuple[Page, str | None, str | None]:
    """The page of entities, with the signed cursors of the next and previous pages. A cursor
    not issued here for this sandbox raises the API's 400 problem (api/paging.py)."""
    position = signer.open(query.start)
    page = await library.list(query.page.kinds, query.terms(), query.order(), PAGE_SIZE, position)
    return page, signer.sign(page.next_cursor), signer.sign(page.prev_cursor)
