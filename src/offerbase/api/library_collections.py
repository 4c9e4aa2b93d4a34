"""The Offer Library's URL collections (`/data/core/dps/{collection}`) and the catalog kinds
each one serves."""

from __future__ import annotations

from offerbase.api.problems import ApiProblem, field_error

ROOT = "/data/core/dps"

# Collections: URL path -> the kinds it holds. `offers` holds both offer kinds.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "offers": ("personalized-offer", "fallback-offer"),
    "placements": ("placement",),
    "offer-collections": ("collection",),
    "tags": ("tag",),
    "offer-rules": ("decision-rule",),
    "ranking-formulas": ("ranking-formula",),
    "offer-decisions": ("decision",),
    "ranking-strategies": ("ranking-strategy",),  # Offerbase's own (docs/offer-library.md)
}
OFFER_TYPES = {"personalized": "personalized-offer", "fallback": "fallback-offer"}


def kinds_for(path: str, offer_type: str | None) -> tuple[str, ...]:
    """The kinds a request addresses: `offers` narrows to one kind by `offer-type`, if given."""
    if path != "offers" or offer_type is None:
        return COLLECTIONS[path]
    kind = OFFER_TYPES.get(offer_type.lower())
    if kind is None:
        raise ApiProblem(
            400,
            "Bad Request",
            f"'{offer_type}' is not an offer type; use personalized or fallback.",
            errors=[field_error("offer-type", "Use personalized or fallback.")],
        )
    return (kind,)


def kind_to_create(path: str, offer_type: str | None) -> str:
    """The one kind a create writes: an offer needs `offer-type`, other collections hold one."""
    if path == "offers" and offer_type is None:
        raise ApiProblem(
            400,
            "Bad Request",
            "The query parameter 'offer-type' is required: personalized or fallback.",
            errors=[field_error("offer-type", "Missing; use personalized or fallback.")],
        )
    (kind,) = kinds_for(path, offer_type)
    return kind
