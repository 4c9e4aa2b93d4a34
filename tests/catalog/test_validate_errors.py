"""Every enum, type, cross-field and guardrail error names the right pointer."""

from __future__ import annotations

from typing import Any

import pytest

from offerbase.catalog import CatalogValidationError, FieldError, validate

from . import examples as ex


def errors_of(kind: str, body: Any) -> list[FieldError]:
    with pytest.raises(CatalogValidationError) as info:
        validate(kind, body)
    assert info.value.errors, "a CatalogValidationError always lists its problems"
    for error in info.value.errors:
        assert error.message.endswith("."), f"message is a sentence: {error.message!r}"
    return info.value.errors


def pointers(kind: str, body: Any) -> list[str]:
    return [e.pointer for e in errors_of(kind, body)]


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_body_must_be_an_object(body: Any) -> None:
    assert errors_of("tag", body) == [FieldError("", "The request body must be a JSON object.")]


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        validate("offer", {})


@pytest.mark.parametrize(
    "kind",
    [
        "personalized-offer",
        "fallback-offer",
        "placement",
        "collection",
        "tag",
        "decision-rule",
        "ranking-formula",
        "decision",
    ],
)
def test_name_is_required_everywhere(kind: str) -> None:
    assert "/name" in pointers(kind, {})


@pytest.mark.parametrize("name", ["", "   ", 5, None])
def test_name_must_be_a_non_empty_string(name: Any) -> None:
    assert pointers("tag", {"name": name}) == ["/name"]


def test_all_problems_are_reported_at_once() -> None:
    body = {"name": "", "status": "live", "rank": {"priority": -1}, "bogus": 1}
    assert sorted(pointers("personalized-offer", body)) == [
        "/bogus",
        "/name",
        "/rank/priority",
        "/status",
    ]


def test_unknown_enum_lists_allowed_values() -> None:
    [error] = errors_of("personalized-offer", {"name": "o", "status": "pending"})
    assert error.pointer == "/status"
    assert "'pending'" in error.message
    assert "draft, approved, archived" in error.message


def test_unknown_nested_field_names_its_pointer_and_the_allowed_fields() -> None:
    body = ex.fresh(ex.PLACEMENT)
    body["returnMetaData"]["offerColour"] = True
    [error] = errors_of("placement", body)
    assert error.pointer == "/returnMetaData/offerColour"
    assert "Unknown field" in error.message
    assert "offerName" in error.message


def test_field_names_with_slash_are_escaped_in_pointers() -> None:
    assert pointers("tag", {"name": "t", "a/b~c": 1}) == ["/a~1b~0c"]


CASES: list[tuple[str, str, Any, str]] = [
    # kind, pointer to set, bad value, expected error pointer
    ("personalized-offer", "/rank/priority", 1.5, "/rank/priority"),
    ("personalized-offer", "/rank/priority", True, "/rank/priority"),
    ("personalized-offer", "/rank/priority", "1", "/rank/priority"),
    ("personalized-offer", "/rank", [], "/rank"),
    ("personalized-offer", "/representations/0/channel", "web", "/representations/0/channel"),
    (
        "personalized-offer",
        "/representations/0/components/0/format",
        "html",
        "/representations/0/components/0/format",
    ),
    (
        "personalized-offer",
        "/representations/0/components/0/type",
        "banner",
        "/representations/0/components/0/type",
    ),
    (
        "personalized-offer",
        "/representations/0/components/0/language",
        "en",
        "/representations/0/components/0/language",
    ),
    (
        "personalized-offer",
        "/representations/0/components/0/content",
        5,
        "/representations/0/components/0/content",
    ),
    (
        "personalized-offer",
        "/selectionConstraint/startDate",
        "2022-07-27",
        "/selectionConstraint/startDate",
    ),
    (
        "personalized-offer",
        "/selectionConstraint/endDate",
        "2022-07-27T05:00:00",
        "/selectionConstraint/endDate",
    ),
    (
        "personalized-offer",
        "/selectionConstraint/profileConstraintType",
        "segments",
        "/selectionConstraint/profileConstraintType",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/limit",
        0,
        "/frequencyCappingConstraints/0/limit",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/scope",
        "user",
        "/frequencyCappingConstraints/0/scope",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/entity",
        "decision",
        "/frequencyCappingConstraints/0/entity",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/enabled",
        "false",
        "/frequencyCappingConstraints/0/enabled",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/repeat/unit",
        "year",
        "/frequencyCappingConstraints/0/repeat/unit",
    ),
    (
        "personalized-offer",
        "/frequencyCappingConstraints/0/repeat/unitCount",
        0,
        "/frequencyCappingConstraints/0/repeat/unitCount",
    ),
    ("personalized-offer", "/cappingConstraint/globalCap", 0, "/cappingConstraint/globalCap"),
    ("personalized-offer", "/characteristics", {"a": 1}, "/characteristics/a"),
    ("personalized-offer", "/tags", "tag1", "/tags"),
    ("personalized-offer", "/labels", [""], "/labels/0"),
    ("placement", "/itemCount", 0, "/itemCount"),
    ("placement", "/itemCount", 31, "/itemCount"),
    ("placement", "/componentType", "video", "/componentType"),
    ("placement", "/returnContent", 1, "/returnContent"),
    ("placement", "/contentTypes", ["html"], "/contentTypes/0"),
    ("collection", "/filterType", "anytags", "/filterType"),
    ("collection", "/ids", [1], "/ids/0"),
    ("decision-rule", "/condition/type", "SQL", "/condition/type"),
    ("decision-rule", "/condition/format", "text/plain", "/condition/format"),
    ("decision-rule", "/exdRule", "true", "/exdRule"),
    ("decision-rule", "/definedOn", [], "/definedOn"),
    ("ranking-formula", "/returnType/type", "string", "/returnType/type"),
    ("ranking-formula", "/isPure", None, "/isPure"),
    ("ranking-formula", "/expression/value", "", "/expression/value"),
    ("decision", "/status", "approved", "/status"),
    ("decision", "/startDate", "yesterday", "/startDate"),
    ("decision", "/fallback", 7, "/fallback"),
    (
        "decision",
        "/criteria/0/rank/order/orderEvaluationType",
        "random",
        "/criteria/0/rank/order/orderEvaluationType",
    ),
    ("decision", "/criteria/0/rank/priority", -1, "/criteria/0/rank/priority"),
    (
        "decision",
        "/criteria/0/optionSelection/optionSelectionType",
        "list",
        "/criteria/0/optionSelection/optionSelectionType",
    ),
]

_BASE = {
    "personalized-offer": ex.PERSONALIZED_OFFER,
    "placement": ex.PLACEMENT,
    "collection": ex.COLLECTION_TAGS,
    "decision-rule": ex.DECISION_RULE,
    "ranking-formula": ex.RANKING_FORMULA,
    "decision": ex.DECISION,
}


def _set(doc: Any, pointer: str, value: Any) -> None:
    *parents, last = pointer.split("/")[1:]
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc.setdefault(part, {})
    doc[last] = value


@pytest.mark.parametrize(("kind", "where", "value", "expected"), CASES)
def test_bad_value_is_reported_at_its_pointer(
    kind: str, where: str, value: Any, expected: str
) -> None:
    body = ex.fresh(_BASE[kind])
    _set(body, where, value)
    assert pointers(kind, body) == [expected]


def test_start_after_end_is_reported_on_end_date() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["selectionConstraint"]["endDate"] = "2022-07-27T04:59:59+00:00"
    [error] = errors_of("personalized-offer", body)
    assert error.pointer == "/selectionConstraint/endDate"
    assert "before startDate" in error.message


def test_dates_compare_across_time_zones() -> None:
    body = ex.fresh(ex.DECISION)
    body["startDate"] = "2021-08-23T07:00:00.000+02:00"  # 05:00Z
    body["endDate"] = "2021-08-23T06:00:00Z"
    validate("decision", body)
    body["endDate"] = "2021-08-23T04:59:59Z"
    assert pointers("decision", body) == ["/endDate"]


def test_capping_dates_in_order() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["frequencyCappingConstraints"][0]["endDate"] = "2023-05-01T00:00:00Z"
    assert pointers("personalized-offer", body) == ["/frequencyCappingConstraints/0/endDate"]


def test_duplicate_placement_is_reported_on_the_duplicate() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    rep = ex.fresh(body["representations"][0])
    body["representations"] += [
        {**rep, "placement": "other"},
        rep,
    ]
    [error] = errors_of("personalized-offer", body)
    assert error.pointer == "/representations/2/placement"
    assert "/representations/0" in error.message


@pytest.mark.parametrize("key", ["channel", "placement", "components"])
def test_representation_members_are_required(key: str) -> None:
    body = ex.fresh(ex.FALLBACK_OFFER)
    del body["representations"][0][key]
    assert pointers("fallback-offer", body) == [f"/representations/0/{key}"]


def test_component_content_rules() -> None:
    body = ex.fresh(ex.FALLBACK_OFFER)
    comp = body["representations"][0]["components"][0]
    del comp["deliveryURL"]
    assert pointers("fallback-offer", body) == ["/representations/0/components/0/deliveryURL"]
    comp["type"] = "html"
    assert pointers("fallback-offer", body) == ["/representations/0/components/0/content"]
    del comp["type"]
    assert pointers("fallback-offer", body) == ["/representations/0/components/0/type"]


def test_fallback_offer_rejects_personalized_only_fields() -> None:
    body = ex.fresh(ex.FALLBACK_OFFER)
    body["tags"] = ["t"]
    body["frequencyCappingConstraints"] = []
    assert sorted(pointers("fallback-offer", body)) == ["/frequencyCappingConstraints", "/tags"]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ({"profileConstraintType": "eligibilityRule"}, ["/eligibilityRule"]),
        ({"profileConstraintType": "rules"}, ["/eligibilityRule"]),
        ({"profileConstraintType": "none", "eligibilityRule": "r"}, ["/eligibilityRule"]),
        ({"eligibilityRule": "r"}, ["/eligibilityRule"]),
        ({"profileConstraintType": "anySegments"}, ["/segmentIdentities"]),
        ({"profileConstraintType": "allSegments", "segmentIdentities": []}, ["/segmentIdentities"]),
        (
            {
                "profileConstraintType": "eligibilityRule",
                "eligibilityRule": "r",
                "segmentIdentities": [{"_id": "a", "namespace": {"code": "ups"}}],
            },
            ["/segmentIdentities"],
        ),
        (
            {"profileConstraintType": "anySegments", "segmentIdentities": [{"_id": "a"}]},
            ["/segmentIdentities/0/namespace"],
        ),
        (
            {
                "profileConstraintType": "anySegments",
                "segmentIdentities": [{"_id": "a", "namespace": {}}],
            },
            ["/segmentIdentities/0/namespace/code"],
        ),
    ],
)
def test_profile_constraint_rules(constraint: dict[str, Any], expected: list[str]) -> None:
    offer = {"name": "o", "selectionConstraint": constraint}
    assert pointers("personalized-offer", offer) == [f"/selectionConstraint{p}" for p in expected]
    decision = {
        "name": "d",
        "criteria": [{"profileConstraint": constraint, "optionSelection": {"filter": "c"}}],
    }
    assert pointers("decision", decision) == [f"/criteria/0/profileConstraint{p}" for p in expected]


def test_decision_profile_constraint_has_no_dates() -> None:
    body = {
        "name": "d",
        "criteria": [
            {
                "profileConstraint": {"startDate": "2024-01-01T00:00:00Z"},
                "optionSelection": {"filter": "c"},
            }
        ],
    }
    assert pointers("decision", body) == ["/criteria/0/profileConstraint/startDate"]


def test_custom_capping_events_need_a_query() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["frequencyCappingConstraints"][0]["events"] = ["decisioning", "custom"]
    assert pointers("personalized-offer", body) == ["/frequencyCappingConstraints/0/customQuery"]
    body["frequencyCappingConstraints"][0]["events"] = []
    assert pointers("personalized-offer", body) == ["/frequencyCappingConstraints/0/events"]


def test_a_custom_cap_query_is_compiled_when_saved() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["frequencyCappingConstraints"][0]["events"] = ["custom"]
    body["frequencyCappingConstraints"][0]["customQuery"] = 'xEvent.eventType = "x"'
    validate("personalized-offer", body)
    body["frequencyCappingConstraints"][0]["customQuery"] = "xEvent.eventType = "
    (error,) = errors_of("personalized-offer", body)
    assert error.pointer == "/frequencyCappingConstraints/0/customQuery"
    assert "line 1, column 20" in error.message


@pytest.mark.parametrize("key", ["limit", "scope", "entity"])
def test_capping_required_members(key: str) -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    del body["frequencyCappingConstraints"][0][key]
    assert pointers("personalized-offer", body) == [f"/frequencyCappingConstraints/0/{key}"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"orderEvaluationType": "scoringFunction"}, "/function"),
        ({"orderEvaluationType": "ranking-strategy"}, "/rankingStrategy"),
        ({"function": "rf"}, "/orderEvaluationType"),
    ],
)
def test_order_needs_its_reference(order: dict[str, Any], expected: str) -> None:
    body = ex.fresh(ex.DECISION)
    body["criteria"][0]["rank"]["order"] = order
    assert pointers("decision", body) == [f"/criteria/0/rank/order{expected}"]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({}, "/filter"),
        ({"filter": "c", "options": ["o"]}, "/options"),
        ({"options": []}, "/options"),
        ({"options": ["o"], "optionSelectionType": "filter"}, "/filter"),
        ({"filter": "c", "optionSelectionType": "directList"}, "/options"),
    ],
)
def test_option_selection_rules(selection: dict[str, Any], expected: str) -> None:
    body = ex.fresh(ex.DECISION)
    body["criteria"][0]["optionSelection"] = selection
    assert pointers("decision", body) == [f"/criteria/0/optionSelection{expected}"]


def test_criterion_needs_option_selection() -> None:
    body = ex.fresh(ex.DECISION)
    del body["criteria"][0]["optionSelection"]
    assert pointers("decision", body) == ["/criteria/0/optionSelection"]


def test_collection_needs_filter_type() -> None:
    assert pointers("collection", {"name": "c", "ids": ["t"]}) == ["/filterType"]


# --- guardrails (Adobe's guardrails) ---------------------------------------------------------


def test_at_most_20_tags_per_offer() -> None:
    body = {"name": "o", "tags": [f"t{i}" for i in range(20)]}
    validate("personalized-offer", body)
    body["tags"].append("t20")
    [error] = errors_of("personalized-offer", body)
    assert error.pointer == "/tags"
    assert "at most 20" in error.message


def test_at_most_10_capping_rules_per_offer() -> None:
    cap = {"limit": 1, "scope": "profile", "entity": "offer"}
    body = {"name": "o", "frequencyCappingConstraints": [cap] * 10}
    validate("personalized-offer", body)
    body["frequencyCappingConstraints"].append(cap)
    assert pointers("personalized-offer", body) == ["/frequencyCappingConstraints"]


def test_at_most_30_characteristics() -> None:
    body = {"name": "o", "characteristics": {f"k{i}": "v" for i in range(30)}}
    validate("personalized-offer", body)
    body["characteristics"]["k30"] = "v"
    assert pointers("personalized-offer", body) == ["/characteristics"]


@pytest.mark.parametrize(
    ("filter_type", "limit"), [("offers", 500), ("any-tags", 20), ("allTags", 20)]
)
def test_collection_id_limits(filter_type: str, limit: int) -> None:
    body = {"name": "c", "filterType": filter_type, "ids": [f"x{i}" for i in range(limit)]}
    validate("collection", body)
    body["ids"].append("one-more")
    [error] = errors_of("collection", body)
    assert error.pointer == "/ids"
    assert f"at most {limit}" in error.message


def _criterion(placements: list[str], collection: str) -> dict[str, Any]:
    return {"placements": placements, "optionSelection": {"filter": collection}}


def test_at_most_30_placements_per_criterion_and_per_decision() -> None:
    body = {"name": "d", "criteria": [_criterion([f"p{i}" for i in range(31)], "c")]}
    assert pointers("decision", body) == ["/criteria/0/placements", "/criteria"]
    body = {
        "name": "d",
        "criteria": [
            _criterion([f"p{i}" for i in range(20)], "c"),
            _criterion([f"p{i}" for i in range(10, 30)], "c"),
        ],
    }
    validate("decision", body)  # 30 distinct placements
    body["criteria"][1]["placements"].append("p30")
    assert pointers("decision", body) == ["/criteria"]


def test_at_most_30_collections_per_decision() -> None:
    body = {"name": "d", "criteria": [_criterion([], f"c{i}") for i in range(30)]}
    validate("decision", body)
    body["criteria"].append(_criterion([], "c0"))  # same collection again: still 30 distinct
    validate("decision", body)
    body["criteria"].append(_criterion([], "c30"))
    [error] = errors_of("decision", body)
    assert error.pointer == "/criteria"
    assert "collections" in error.message
