"""What the catalog pages need to know of each kind: one small description per page, read by the
one list (lists.py) and the one editor (catalog_pages.py); nothing here is per-kind code."""

from __future__ import annotations

from dataclasses import dataclass

from offerbase.catalog import enums

# A list column: its heading and the body pointer it shows.
Column = tuple[str, str]


@dataclass(frozen=True)
class KindPage:
    slug: str  # the URL segment and the navigation's key
    title: str  # the page's heading and link text
    singular: str  # "New <singular>"
    kind: str  # the catalog kind (catalog/kinds.py)
    columns: tuple[Column, ...] = ()
    # Filters beyond the search: body field -> its allowed values (status, at least, if any).
    filters: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    sorts: tuple[str, ...] = ()  # extra sort keys of SORT_CHOICES
    # The kind's statuses, if it has any: an editor saves drafts only; making or changing
    # anything else (approved, live, ...) needs an approver (sessions.require).
    statuses: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind,)


def _values(spellings: dict[str, str] | object) -> tuple[str, ...]:
    assert isinstance(spellings, dict)
    return tuple(dict.fromkeys(spellings.values()))


OFFER_STATUSES = _values(dict(enums.OFFER_STATUS))
DECISION_STATUSES = _values(dict(enums.DECISION_STATUS))
RANKING_STRATEGY_TYPES = (enums.STRATEGY_AUTO, enums.STRATEGY_PERSONALIZED)
_OFFER_COLUMNS: tuple[Column, ...] = (
    ("Status", "/status"),
    ("Priority", "/rank/priority"),
    ("Starts", "/selectionConstraint/startDate"),
    ("Ends", "/selectionConstraint/endDate"),
)

PAGES: dict[str, KindPage] = {
    page.slug: page
    for page in (
        KindPage(
            "offers",
            "Offers",
            "offer",
            "personalized-offer",
            _OFFER_COLUMNS,
            (("status", "Status", OFFER_STATUSES),),
            ("priority", "status"),
            OFFER_STATUSES,
        ),
        KindPage(
            "fallback-offers",
            "Fallback offers",
            "fallback offer",
            "fallback-offer",
            (("Status", "/status"),),
            (("status", "Status", OFFER_STATUSES),),
            ("status",),
            OFFER_STATUSES,
        ),
        KindPage(
            "placements",
            "Placements",
            "placement",
            "placement",
            (("Channel", "/channel"), ("Component type", "/componentType")),
            (("componentType", "Component type", _values(dict(enums.COMPONENT_TYPE))),),
        ),
        KindPage(
            "collections",
            "Collections",
            "collection",
            "collection",
            (("Filter type", "/filterType"),),
            (("filterType", "Filter type", _values(dict(enums.FILTER_TYPE))),),
        ),
        KindPage("collection-qualifiers", "Collection qualifiers", "collection qualifier", "tag"),
        KindPage(
            "decision-rules",
            "Decision rules",
            "decision rule",
            "decision-rule",
            (("Condition", "/condition/value"),),
        ),
        KindPage(
            "ranking-formulas",
            "Ranking formulas",
            "ranking formula",
            "ranking-formula",
            (("Expression", "/expression/value"),),
        ),
        KindPage(
            "ranking-strategies",
            "Ranking strategies",
            "ranking strategy",
            "ranking-strategy",
            (("Type", "/type"), ("Holdout %", "/holdoutPercentage")),
            (("type", "Type", RANKING_STRATEGY_TYPES),),
        ),
        KindPage(
            "decisions",
            "Decisions",
            "decision",
            "decision",
            (("Status", "/status"), ("Starts", "/startDate"), ("Ends", "/endDate")),
            (("status", "Status", DECISION_STATUSES),),
            ("status",),
            DECISION_STATUSES,
        ),
    )
}

# The sort menu: key -> (label, the API's `orderby`).
SORT_CHOICES: dict[str, tuple[str, str]] = {
    "modified": ("Last modified (newest first)", "-modified"),
    "name": ("Name (A to Z)", "name"),
    "-name": ("Name (Z to A)", "-name"),
    "priority": ("Priority (highest first)", "-rank.priority"),
    "status": ("Status", "status"),
}
BASE_SORTS = ("modified", "name", "-name")


def sorts_of(page: KindPage) -> dict[str, tuple[str, str]]:
    return {key: SORT_CHOICES[key] for key in (*BASE_SORTS, *page.sorts)}


def pointer_value(body: dict[str, object], pointer: str) -> object:
    """The value at a simple pointer (object keys only), or ''."""
    value: object = body
    for token in pointer.strip("/").split("/"):
        if not isinstance(value, dict):
            return ""
        value = value.get(token, "")
    return value
