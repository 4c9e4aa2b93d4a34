"""The typed domain model: what each Offer Library entity means, for everything that reads it.

One frozen, slotted dataclass per kind, built by ``catalog.load`` from validated, normalised
stored bodies, with every default (``catalog.defaults``) applied and every enum in its canonical
spelling (``catalog.enums``). Readers (the decisioning engine, and later Edge, batch and the admin
UI) use these objects and never look inside raw entity JSON.

Each entity keeps ``body``, the stored body as the client wrote it (with ``id`` and ``etag``),
only because responses echo parts of it (names, characteristics). Instants are POSIX seconds
(UTC, inclusive bounds), so the hot path compares floats. Everything here is plain data and
pickles, so a catalog can be shipped to batch workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offerbase.catalog import enums

Body = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProfileConstraint:
    """An offer's ``selectionConstraint`` or a criterion's ``profileConstraint``."""

    type: str  # enums.PROFILE_CONSTRAINT_TYPE value; "none" admits every profile
    rule_ids: tuple[str, ...] = ()  # eligibilityRule / rules: every rule must hold
    segments: tuple[tuple[str, str], ...] = ()  # (namespace code, audience id)
    # Derived from `type`, stored because the hot path asks it for every candidate.
    is_rule: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_rule", self.type in enums.RULE_CONSTRAINT_TYPES)


NO_CONSTRAINT = ProfileConstraint(enums.CONSTRAINT_NONE)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """One entry of an offer's ``frequencyCappingConstraints``."""

    index: int  # position in the list (traces and counter keys use it)
    limit: int
    enabled: bool
    per_profile: bool  # scope "profile" (else "global": all profiles together)
    per_placement: bool  # entity "placement" (else "offer": one count across placements)
    # Only counted and enforced in these placements (`placements`, or the deprecated
    # `placement`); None = every placement.
    placements: frozenset[str] | None
    repeat_unit: str | None  # day | week | month; None = the cap never resets
    repeat_count: int  # reset every `repeat_count` units
    events: frozenset[str]  # enums.CAP_EVENTS values the cap counts
    custom_query: str | None  # PQL selecting the custom events counted


@dataclass(frozen=True, slots=True)
class Offer:
    """A personalized offer."""

    id: str
    etag: Any
    body: Body
    status: str  # draft | approved | archived
    start: float | None  # selectionConstraint.startDate, epoch seconds, inclusive
    end: float | None  # selectionConstraint.endDate, epoch seconds, inclusive
    priority: int  # rank.priority
    representations: Mapping[str, Body]  # placement id -> its representation (as stored)
    constraint: ProfileConstraint
    caps: tuple[FrequencyCap, ...]
    global_cap: int | None  # legacy cappingConstraint.globalCap
    profile_cap: int | None  # legacy cappingConstraint.profileCap
    tags: frozenset[str]
    # What `offer` means inside PQL: the body with `_id` and the default rank.priority, so a
    # formula like `offer.rank.priority * 2` sees the documented default.
    view: Body

    @property
    def approved(self) -> bool:
        return self.status == enums.OFFER_APPROVED


@dataclass(frozen=True, slots=True)
class FallbackOffer:
    id: str
    etag: Any
    body: Body
    status: str
    representations: Mapping[str, Body]


@dataclass(frozen=True, slots=True)
class Placement:
    id: str
    etag: Any
    body: Body
    component_type: str | None  # enums.COMPONENT_TYPE value
    item_count: int  # offers per decision when the request does not say
    allow_duplicates: bool  # allowDuplicatePlacements
    return_content: bool
    return_metadata: Mapping[str, bool]  # every enums.RETURN_METADATA_FLAGS flag


@dataclass(frozen=True, slots=True)
class Tag:
    id: str
    etag: Any
    body: Body
    name: str


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    etag: Any
    body: Body
    filter_type: str  # offers | any-tags | all-tags
    ids: tuple[str, ...]  # offer ids, or tag ids for the tag filters

    def offer_ids(self, offers: Sequence[Offer]) -> tuple[str, ...]:
        """The offers the collection holds, in catalog order (listed order for `offers`)."""
        if self.filter_type == enums.FILTER_OFFERS:
            return tuple(dict.fromkeys(self.ids))
        wanted = frozenset(self.ids)
        if self.filter_type == enums.FILTER_ALL_TAGS:
            return tuple(o.id for o in offers if wanted and wanted <= o.tags)
        return tuple(o.id for o in offers if o.tags & wanted)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One entry of a decision's ``criteria``: candidates, where, and how they are ranked."""

    index: int  # position in the decision's list
    placements: frozenset[str] | None  # None = every placement
    priority: int  # rank.priority: higher criteria are filled first
    order: str  # static | scoringFunction | rankingStrategy
    formula_id: str | None  # rank.order.function, when order is scoringFunction
    strategy_id: str | None  # rank.order.rankingStrategy, when order is rankingStrategy
    constraint: ProfileConstraint
    collection_id: str | None  # optionSelection.filter
    option_ids: tuple[str, ...]  # optionSelection.options (unique, listed order)


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    etag: Any
    body: Body
    status: str  # draft | live | complete | archived
    start: float | None  # epoch seconds, inclusive
    end: float | None
    fallback_id: str | None
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A decision rule. `params` are the definedOn inputs besides profile and offer, each with
    the context type it is read from (None when definedOn names no schema for it)."""

    id: str
    etag: Any
    body: Body
    condition: str  # PQL source
    params: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class RankingFormula:
    id: str
    etag: Any
    body: Body
    expression: str  # PQL source
    params: tuple[tuple[str, str | None], ...]
    return_type: str  # upper case, e.g. INTEGER


@dataclass(frozen=True, slots=True)
class RankingStrategy:
    """An AI ranking model (Offerbase's own collection, docs/offer-library.md): how a criterion
    whose rank.order is ``rankingStrategy`` orders its eligible offers (engine/bandit.py)."""

    id: str
    etag: Any
    body: Body
    type: str  # enums.STRATEGY_AUTO | enums.STRATEGY_PERSONALIZED
    goal_event_type: str  # optimizationGoal.eventType: "interact" (clicks) or a custom type
    holdout: float  # holdoutPercentage, 0..50: the share of traffic served at random
    # Personalized optimization's features (empty for auto-optimization), in stored order:
    audiences: tuple[str, ...] = ()  # features.audiences: audience (segment) ids
    profile_paths: tuple[tuple[str, ...], ...] = ()  # features.profilePaths, as pointer tokens
    context_paths: tuple[tuple[str, ...], ...] = ()  # features.contextPaths, as pointer tokens


@dataclass(frozen=True, slots=True)
class Catalog:
    """One sandbox's whole catalog, each kind in stored order."""

    offers: tuple[Offer, ...] = ()
    fallbacks: tuple[FallbackOffer, ...] = ()
    placements: tuple[Placement, ...] = ()
    collections: tuple[Collection, ...] = ()
    tags: tuple[Tag, ...] = ()
    rules: tuple[Rule, ...] = ()
    formulas: tuple[RankingFormula, ...] = ()
    strategies: tuple[RankingStrategy, ...] = ()
    decisions: tuple[Decision, ...] = ()
