"""The loader: validated stored bodies -> the typed domain model, with defaults and canonical
enum spellings, without touching the stored body."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from offerbase.catalog import (
    NO_CONSTRAINT,
    Catalog,
    Collection,
    Decision,
    FallbackOffer,
    Offer,
    Placement,
    RankingFormula,
    Rule,
    Tag,
    load,
    load_catalog,
    validate,
)
from offerbase.catalog.load import defined_on_params
from offerbase.catalog.schema import parse_datetime

from . import examples as ex

EXAMPLES = {
    "personalized-offer": (ex.PERSONALIZED_OFFER, Offer),
    "fallback-offer": (ex.FALLBACK_OFFER, FallbackOffer),
    "placement": (ex.PLACEMENT, Placement),
    "collection": (ex.COLLECTION_TAGS, Collection),
    "tag": (ex.TAG, Tag),
    "decision-rule": (ex.DECISION_RULE, Rule),
    "ranking-formula": (ex.RANKING_FORMULA, RankingFormula),
    "decision": (ex.DECISION, Decision),
}


def stored(kind: str, body: dict[str, Any], eid: str = "E1") -> dict[str, Any]:
    return {**validate(kind, copy.deepcopy(body)), "id": eid, "etag": 3}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_kind_loads_keeps_its_body_and_pickles(kind: str) -> None:
    body, cls = EXAMPLES[kind]
    raw = stored(kind, body)
    before = copy.deepcopy(raw)
    entity = load(kind, raw)
    assert isinstance(entity, cls)
    assert (entity.id, entity.etag, entity.body) == ("E1", 3, before)
    assert raw == before  # the stored body is never rewritten
    assert pickle.loads(pickle.dumps(entity)) == entity
    with pytest.raises(AttributeError):
        entity.id = "other"  # type: ignore[misc]


def test_defaults_apply_when_members_are_absent() -> None:
    offer = load("personalized-offer", stored("personalized-offer", {"name": "o"}))
    assert (offer.status, offer.priority, offer.approved) == ("draft", 0, False)
    assert offer.constraint is NO_CONSTRAINT
    assert (offer.start, offer.end, offer.caps, offer.tags) == (None, None, (), frozenset())
    assert (offer.global_cap, offer.profile_cap) == (None, None)
    assert offer.view["rank"] == {"priority": 0}
    assert offer.view["_id"] == "E1"

    placement = load("placement", stored("placement", {"name": "p"}))
    assert (placement.item_count, placement.allow_duplicates, placement.return_content) == (
        1,
        False,
        True,
    )
    assert all(placement.return_metadata.values())
    assert len(placement.return_metadata) == 7

    decision = load(
        "decision",
        stored("decision", {"name": "d", "criteria": [{"optionSelection": {"filter": "C"}}]}),
    )
    assert (decision.status, decision.fallback_id, decision.start) == ("draft", None, None)
    (criterion,) = decision.criteria
    assert (criterion.priority, criterion.order, criterion.placements) == (0, "static", None)
    assert (criterion.collection_id, criterion.option_ids) == ("C", ())
    assert criterion.constraint is NO_CONSTRAINT

    formula = load(
        "ranking-formula",
        stored("ranking-formula", {"name": "f", "expression": {"value": "1"}}),
    )
    assert formula.return_type == "INTEGER"


def test_caps_defaults_and_legacy() -> None:
    offer = load(
        "personalized-offer",
        stored(
            "personalized-offer",
            {
                "name": "o",
                "frequencyCappingConstraints": [
                    {"limit": 2, "scope": "profile", "entity": "placement", "placement": "P9"},
                    {
                        "enabled": False,
                        "limit": 3,
                        "scope": "global",
                        "entity": "offer",
                        "repeat": {"enabled": True, "unit": "week", "unitCount": 2},
                        "events": ["click", "impression"],
                        "placements": ["P1", "P2"],
                    },
                ],
                "cappingConstraint": {"globalCap": 100, "profileCap": 5},
            },
        ),
    )
    first, second = offer.caps
    assert (first.index, first.limit, first.enabled) == (0, 2, True)
    assert (first.per_profile, first.per_placement) == (True, True)
    assert (first.placements, first.repeat_unit, first.repeat_count) == (
        frozenset({"P9"}),
        None,
        1,
    )
    assert first.events == frozenset({"decisioning"})
    assert (second.enabled, second.per_profile, second.per_placement) == (False, False, False)
    assert (second.repeat_unit, second.repeat_count) == ("week", 2)
    assert second.events == frozenset({"click", "impression"})
    assert second.placements == frozenset({"P1", "P2"})
    assert (offer.global_cap, offer.profile_cap) == (100, 5)


def test_constraints_dates_and_representations() -> None:
    offer = load(
        "personalized-offer",
        stored(
            "personalized-offer",
            {
                "name": "o",
                "status": "approved",
                "rank": {"priority": 4},
                "tags": ["t1", "t2"],
                "selectionConstraint": {
                    "startDate": "2026-11-24T00:00:00Z",
                    "endDate": "2026-11-25T01:00:00+01:00",
                    "profileConstraintType": "anySegments",
                    "segmentIdentities": [
                        {"_id": "s1", "namespace": {"code": "ups"}},
                        {"_id": "s2", "namespace": {"code": "aam"}},
                    ],
                },
                "representations": [
                    {
                        "channel": "https://ns.adobe.com/xdm/channel-types/web",
                        "placement": p,
                        "components": [{"type": "html", "format": "text/html", "content": p}],
                    }
                    for p in ("P1", "P2")
                ],
            },
        ),
    )
    start = parse_datetime("2026-11-24T00:00:00Z")
    assert start is not None
    assert offer.start == start.timestamp()
    assert offer.end == offer.start + 86400  # 01:00 at +01:00 is midnight UTC
    assert (offer.approved, offer.priority, offer.tags) == (True, 4, frozenset({"t1", "t2"}))
    assert offer.constraint.type == "anySegments"
    assert not offer.constraint.is_rule
    assert offer.constraint.segments == (("ups", "s1"), ("aam", "s2"))
    assert list(offer.representations) == ["P1", "P2"]
    assert offer.representations["P2"]["components"][0]["content"] == "P2"

    rule_constraint = {"profileConstraintType": "rules", "eligibilityRule": "R1"}
    decision = load(
        "decision",
        stored(
            "decision",
            {
                "name": "d",
                "criteria": [
                    {
                        "profileConstraint": rule_constraint,
                        "optionSelection": {"options": ["A", "B", "A"]},
                    }
                ],
            },
        ),
    )
    (criterion,) = decision.criteria
    assert criterion.constraint.is_rule
    assert criterion.constraint.rule_ids == ("R1",)
    assert (criterion.collection_id, criterion.option_ids) == (None, ("A", "B"))


@pytest.mark.parametrize(
    ("kind", "body", "read"),
    [
        # every accepted spelling reads as the canonical one (catalog.enums)
        (
            "decision",
            {"name": "d", "status": "completed"},
            lambda d: d.status == "complete",
        ),
        (
            "decision",
            {
                "name": "d",
                "criteria": [
                    {
                        "rank": {
                            "order": {
                                "orderEvaluationType": "ranking-strategy",
                                "rankingStrategy": "ai1",
                            }
                        },
                        "optionSelection": {"filter": "C"},
                    },
                    {
                        "rank": {
                            "order": {"orderEvaluationType": "scoring-function", "function": "F1"}
                        },
                        "optionSelection": {"filter": "C"},
                    },
                ],
            },
            lambda d: (
                [(c.order, c.strategy_id, c.formula_id) for c in d.criteria]
                == [("rankingStrategy", "ai1", None), ("scoringFunction", None, "F1")]
            ),
        ),
        (
            "collection",
            {"name": "c", "filterType": "anyTags", "ids": ["t"]},
            lambda c: c.filter_type == "any-tags",
        ),
        (
            "collection",
            {"name": "c", "filterType": "allTags", "ids": ["t"]},
            lambda c: c.filter_type == "all-tags",
        ),
        (
            "placement",
            {"name": "p", "componentType": "text"},
            lambda p: p.component_type == "component-text",
        ),
        (
            "ranking-formula",
            {"name": "f", "expression": {"value": "1"}, "returnType": {"type": "double"}},
            lambda f: f.return_type == "DOUBLE",
        ),
    ],
)
def test_enum_spellings_are_canonical(kind: str, body: dict[str, Any], read: Any) -> None:
    assert read(load(kind, stored(kind, body)))


def test_defined_on_params() -> None:
    defined = {
        "profile": {"referencePaths": ["a"]},
        "offer": {},
        "xEvent": {},
        "boosted": {"schema": {"altId": "_xdm.context.foo", "version": "0"}},
        "weather": {"schema": {"ref": "_xdm.context.weather"}},
        "bare": {},
        "odd": 3,  # definedOn values are free-form: one that is no object names no schema
    }
    assert defined_on_params(defined) == (
        ("boosted", "_xdm.context.foo;version=0"),
        ("weather", "_xdm.context.weather"),
        ("bare", None),
        ("odd", None),
    )
    assert defined_on_params(None) == ()
    rule = load(
        "decision-rule",
        stored(
            "decision-rule",
            {
                "name": "r",
                "condition": {"value": "boosted.x = 1"},
                "definedOn": {"boosted": defined["boosted"]},
            },
        ),
    )
    assert rule.condition == "boosted.x = 1"
    assert rule.params == (("boosted", "_xdm.context.foo;version=0"),)


def test_collections_resolve_offers() -> None:
    cat = load_catalog(
        {
            "personalized-offer": [
                stored("personalized-offer", {"name": n, "tags": tags}, n)
                for n, tags in (("A", ["t1"]), ("B", ["t1", "t2"]), ("C", []))
            ],
            "collection": [
                stored("collection", {"name": "x", "filterType": ft, "ids": ids}, cid)
                for cid, ft, ids in (
                    ("any", "any-tags", ["t1", "t2"]),
                    ("all", "all-tags", ["t1", "t2"]),
                    ("none", "all-tags", []),
                    ("list", "offers", ["C", "A", "C"]),
                )
            ],
        }
    )
    assert isinstance(cat, Catalog)
    assert [o.id for o in cat.offers] == ["A", "B", "C"]
    resolved = {c.id: c.offer_ids(cat.offers) for c in cat.collections}
    assert resolved == {"any": ("A", "B"), "all": ("B",), "none": (), "list": ("C", "A")}
    assert load_catalog({}) == Catalog()


def test_fields_read_from_the_body_not_left_at_their_defaults() -> None:
    fallback = load("fallback-offer", stored("fallback-offer", {"name": "f", "status": "approved"}))
    assert fallback.status == "approved"
    assert load("fallback-offer", stored("fallback-offer", {"name": "f"})).status == "draft"

    placement = load(
        "placement",
        stored(
            "placement",
            {"name": "p", "returnContent": False, "returnMetaData": {"offerName": False}},
        ),
    )
    assert placement.return_content is False
    assert placement.return_metadata["offerName"] is False
    assert placement.return_metadata["decisionName"] is True

    assert load("tag", stored("tag", {"name": "Black Friday"})).name == "Black Friday"
    collection = load("collection", stored("collection", {"name": "c", "filterType": "offers"}))
    assert collection.ids == ()

    offer = load(
        "personalized-offer",
        stored(
            "personalized-offer",
            {
                "name": "o",
                "frequencyCappingConstraints": [
                    {
                        "limit": 1,
                        "scope": "global",
                        "entity": "offer",
                        "events": ["custom"],
                        "customQuery": 'type = "signup"',
                    }
                ],
            },
        ),
    )
    assert offer.caps[0].custom_query == 'type = "signup"'
    assert offer.caps[0].events == frozenset({"custom"})


def test_a_criterion_keeps_only_the_ranking_its_order_uses() -> None:
    decision = load(
        "decision",
        stored(
            "decision",
            {
                "name": "d",
                "criteria": [
                    {
                        "rank": {
                            "order": {
                                "orderEvaluationType": "static",
                                "function": "F1",
                                "rankingStrategy": "ai1",
                            }
                        },
                        "optionSelection": {"filter": "C"},
                    }
                ],
            },
        ),
    )
    (criterion,) = decision.criteria
    assert (criterion.order, criterion.formula_id, criterion.strategy_id) == ("static", None, None)


def test_load_catalog_reads_every_kind() -> None:
    bodies = {kind: [stored(kind, body)] for kind, (body, _) in EXAMPLES.items()}
    cat = load_catalog(bodies)
    for field, cls in (
        ("offers", Offer),
        ("fallbacks", FallbackOffer),
        ("placements", Placement),
        ("collections", Collection),
        ("tags", Tag),
        ("rules", Rule),
        ("formulas", RankingFormula),
        ("decisions", Decision),
    ):
        (entity,) = getattr(cat, field)
        assert isinstance(entity, cls)
