from __future__ import annotations

import pytest

from offerbase.catalog import Reference, references, validate

from . import examples as ex


def test_offer_references() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["representations"].append({**body["representations"][0], "placement": "pl2"})
    body["selectionConstraint"] = {
        "profileConstraintType": "eligibilityRule",
        "eligibilityRule": "r1",
    }
    body["tags"] = ["t1", "t2"]
    assert references("personalized-offer", validate("personalized-offer", body)) == [
        Reference("/representations/0/placement", ("placement",), "offerPlacement1234"),
        Reference("/representations/1/placement", ("placement",), "pl2"),
        Reference("/selectionConstraint/eligibilityRule", ("decision-rule",), "r1"),
        Reference("/tags/0", ("tag",), "t1"),
        Reference("/tags/1", ("tag",), "t2"),
    ]


def test_fallback_offer_references_its_placement() -> None:
    assert references(
        "fallback-offer", validate("fallback-offer", ex.fresh(ex.FALLBACK_OFFER))
    ) == [Reference("/representations/0/placement", ("placement",), "offerPlacement1234")]


@pytest.mark.parametrize(
    ("filter_type", "target"),
    [("offers", "personalized-offer"), ("any-tags", "tag"), ("allTags", "tag")],
)
def test_collection_ids_point_by_filter_type(filter_type: str, target: str) -> None:
    body = validate("collection", {"name": "c", "filterType": filter_type, "ids": ["a", "b"]})
    assert references("collection", body) == [
        Reference("/ids/0", (target,), "a"),
        Reference("/ids/1", (target,), "b"),
    ]


def test_decision_references() -> None:
    body = ex.fresh(ex.DECISION)
    body["criteria"][0]["profileConstraint"] = {
        "profileConstraintType": "eligibilityRule",
        "eligibilityRule": "rule1",
    }
    body["criteria"].append(
        {
            "rank": {"order": {"orderEvaluationType": "scoringFunction", "function": "rf1"}},
            "optionSelection": {"options": ["o1"]},
        }
    )
    assert references("decision", validate("decision", body)) == [
        Reference("/fallback", ("fallback-offer",), "fallbackOffer1234"),
        Reference("/criteria/0/placements/0", ("placement",), "offerPlacement1234"),
        Reference("/criteria/0/placements/1", ("placement",), "offerPlacement5678"),
        # Adobe's example ranks by an AI model; Offerbase's strategies are catalog entities
        Reference("/criteria/0/rank/order/rankingStrategy", ("ranking-strategy",), "123456789123"),
        Reference("/criteria/0/profileConstraint/eligibilityRule", ("decision-rule",), "rule1"),
        Reference("/criteria/0/optionSelection/filter", ("collection",), "offerCollection1234"),
        Reference("/criteria/1/rank/order/function", ("ranking-formula",), "rf1"),
        Reference("/criteria/1/optionSelection/options/0", ("personalized-offer",), "o1"),
    ]


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("placement", ex.PLACEMENT),
        ("tag", ex.TAG),
        ("decision-rule", ex.DECISION_RULE),
        ("ranking-formula", ex.RANKING_FORMULA),
    ],
)
def test_kinds_without_references(kind: str, body: dict[str, object]) -> None:
    assert references(kind, ex.fresh(body)) == []  # type: ignore[arg-type]


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        references("offer", {})
