"""The Offer Library kinds: URL collection, id type word, read schema URI, body model.

Eight are Adobe's; `ranking-strategy` is Offerbase's own (Adobe keeps AI models in its UI), so
its schema URI is in Offerbase's namespace."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from offerbase.catalog.models import MODELS

_NS = "https://ns.adobe.com/experience/offer-management"


@dataclass(frozen=True)
class Kind:
    name: str
    path: str
    id_word: str
    schema_uri: str
    model: type[BaseModel]


def _kind(name: str, path: str, id_word: str, schema: str) -> Kind:
    return Kind(name, path, id_word, f"{_NS}/{schema}", MODELS[name])


# Schema versions from Adobe's Offer Library API reads (the newest seen in DPS reads).
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        _kind(
            "personalized-offer",
            "offers",
            "personalized-offer",
            "personalized-offer;version=0.15",
        ),
        _kind("fallback-offer", "offers", "fallback-offer", "fallback-offer;version=0.8"),
        _kind("placement", "placements", "offer-placement", "offer-placement;version=0.5"),
        _kind("collection", "offer-collections", "offer-filter", "offer-filter;version=0.4"),
        _kind("tag", "tags", "tag", "tag;version=0.1"),
        _kind("decision-rule", "offer-rules", "eligibility-rule", "eligibility-rule;version=0.3"),
        _kind(
            "ranking-formula",
            "ranking-formulas",
            "ranking-function",
            "ranking-function;version=0.3",
        ),
        _kind("decision", "offer-decisions", "offer-activity", "offer-activity;version=0.8"),
        Kind(
            "ranking-strategy",
            "ranking-strategies",
            "ranking-strategy",
            "https://ns.offerbase.dev/ranking-strategy;version=1",
            MODELS["ranking-strategy"],
        ),
    )
}

KIND_BY_PATH: dict[str, list[Kind]] = {}
for _k in KINDS.values():
    KIND_BY_PATH.setdefault(_k.path, []).append(_k)

# ?offer-type= value (case-insensitive on the wire) -> kind name, for the "offers" collection.
OFFER_TYPES: dict[str, str] = {"personalized": "personalized-offer", "fallback": "fallback-offer"}
