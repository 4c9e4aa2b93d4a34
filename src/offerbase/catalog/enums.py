"""Enumerations with every accepted spelling and the canonical one the engine reads. Bodies
store the spelling the client wrote (reads echo it, as Adobe's do); `canonical` gives its
meaning, and `catalog/load.py` applies it.

Spelling decisions (where Adobe's pages and the XDM schemas differ):

* collection ``filterType``: canonical ``offers | any-tags | all-tags`` (DPS kebab case);
  xcore's ``anyTags`` / ``allTags`` are accepted.
* ``orderEvaluationType``: canonical ``static | scoringFunction | rankingStrategy`` (the XDM /
  dataset enum, which the engine reads); the DPS example's ``ranking-strategy`` and the
  symmetric ``scoring-function`` are accepted.
* component ``type`` and placement ``componentType``: canonical as the DPS short names
  ``html | imagelink | component-text | json``. Text is canonical as ``component-text`` because
  that is what DPS returns for text components; ``text`` is accepted. For symmetry
  ``component-html`` / ``component-imagelink`` / ``component-json`` are accepted too, as are
  the xcore/XDM URIs ``https://ns.adobe.com/experience/offer-management/content-component-*``.
  Placements use the same table so an offer component and its placement always compare equal.
* offer ``status``: ``draft | approved | archived``. XDM's ``pending`` / ``rejected`` are *not*
  accepted: DPS has no approval workflow and the engine would have no meaning for them.
* decision ``status``: ``draft | live | complete | archived``; XDM lifecycle's ``completed`` is
  accepted and means ``complete`` (the offer-activity enum).
* ranking formula ``returnType.type``: case-insensitive, canonical upper-case
  (``integer`` -> ``INTEGER``). Only numeric types are allowed because the engine compares
  scores: INTEGER, LONG, DECIMAL, DOUBLE, FLOAT, NUMBER.
"""

from __future__ import annotations

from collections.abc import Mapping

OFFER_MGMT_NS = "https://ns.adobe.com/experience/offer-management"


def _identity(*values: str) -> dict[str, str]:
    return {v: v for v in values}


OFFER_STATUS: Mapping[str, str] = _identity("draft", "approved", "archived")

DECISION_STATUS: Mapping[str, str] = {
    **_identity("draft", "live", "complete", "archived"),
    "completed": "complete",
}

PROFILE_CONSTRAINT_TYPE: Mapping[str, str] = _identity(
    "none", "eligibilityRule", "anySegments", "allSegments", "rules"
)

ORDER_EVALUATION_TYPE: Mapping[str, str] = {
    **_identity("static", "scoringFunction", "rankingStrategy"),
    "ranking-strategy": "rankingStrategy",
    "scoring-function": "scoringFunction",
}

# Ranking strategies (Offerbase's own collection, docs/offer-library.md).
RANKING_STRATEGY_TYPE: Mapping[str, str] = _identity(
    "auto-optimization", "personalized-optimization"
)

FILTER_TYPE: Mapping[str, str] = {
    **_identity("offers", "any-tags", "all-tags"),
    "anyTags": "any-tags",
    "allTags": "all-tags",
}

COMPONENT_TYPE: Mapping[str, str] = {
    "html": "html",
    "component-html": "html",
    f"{OFFER_MGMT_NS}/content-component-html": "html",
    "imagelink": "imagelink",
    "component-imagelink": "imagelink",
    f"{OFFER_MGMT_NS}/content-component-imagelink": "imagelink",
    "component-text": "component-text",
    "text": "component-text",
    f"{OFFER_MGMT_NS}/content-component-text": "component-text",
    "json": "json",
    "component-json": "json",
    f"{OFFER_MGMT_NS}/content-component-json": "json",
}

# The URI spelling of each stored component type: what Decisioning responses put in `@type`.
COMPONENT_TYPE_URI: Mapping[str, str] = {
    stored: uri
    for uri, stored in COMPONENT_TYPE.items()
    if uri.startswith(f"{OFFER_MGMT_NS}/content-component-")
}

CAP_SCOPE: Mapping[str, str] = _identity("global", "profile")
CAP_ENTITY: Mapping[str, str] = _identity("offer", "placement")
REPEAT_UNIT: Mapping[str, str] = _identity("day", "week", "month")
CAP_EVENTS: Mapping[str, str] = _identity("decisioning", "custom", "click", "impression")

OPTION_SELECTION_TYPE: Mapping[str, str] = _identity("none", "directList", "filter")

PQL_TYPE: Mapping[str, str] = _identity("PQL")
PQL_FORMAT: Mapping[str, str] = _identity("pql/text")

RETURN_TYPE: Mapping[str, str] = {
    v.lower(): v for v in ("INTEGER", "LONG", "DECIMAL", "DOUBLE", "FLOAT", "NUMBER")
}

# A placement's returnMetaData flags.
RETURN_METADATA_FLAGS = (
    "decisionName",
    "offerName",
    "offerAttributes",
    "offerPriority",
    "placementName",
    "channelType",
    "contentType",
)

# Canonical values that readers of the domain model compare against (catalog.domain).
OFFER_APPROVED = "approved"
DECISION_LIVE = "live"
CONSTRAINT_NONE = "none"
RULE_CONSTRAINT_TYPES = frozenset({"eligibilityRule", "rules"})
SEGMENT_CONSTRAINT_ANY = "anySegments"
SEGMENT_CONSTRAINT_ALL = "allSegments"
ORDER_STATIC = "static"
ORDER_FORMULA = "scoringFunction"
ORDER_AI = "rankingStrategy"
STRATEGY_AUTO = "auto-optimization"
STRATEGY_PERSONALIZED = "personalized-optimization"
GOAL_CLICKS = "interact"  # optimizationGoal.eventType's default: clicks per display
FILTER_OFFERS = "offers"
FILTER_ANY_TAGS = "any-tags"
FILTER_ALL_TAGS = "all-tags"
EVENT_DECISIONING = "decisioning"
EVENT_IMPRESSION = "impression"
EVENT_CLICK = "click"
EVENT_CUSTOM = "custom"


def canonical(spellings: Mapping[str, str], value: str) -> str:
    """The canonical spelling of an accepted `value` (case-insensitive tables: any case)."""
    return spellings.get(value) or spellings.get(value.lower()) or value
