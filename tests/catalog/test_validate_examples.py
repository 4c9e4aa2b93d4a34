"""Adobe's documented bodies validate, normalize as expected, and spellings converge."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from offerbase.catalog import (
    METADATA_FIELDS,
    CatalogValidationError,
    apply_patch,
    load,
    validate,
)

from . import examples as ex

# Adobe's "Create a fallback offer" page in five languages (tests/fixtures/seeds/README.md).
SEEDS = sorted((Path(__file__).parents[1] / "fixtures" / "seeds" / "pages").glob("*.md"))


def _seed_requests(path: Path) -> list[tuple[str, Any]]:
    """(method, body) for every curl request in a seed page."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"curl -X (\w+) .*?-d '(.*?)'\n", text, re.S):
        found.append((match.group(1), json.loads(match.group(2))))
    return found


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("personalized-offer", ex.PERSONALIZED_OFFER),
        ("fallback-offer", ex.FALLBACK_OFFER),
        ("fallback-offer", ex.FALLBACK_OFFER_EMAIL),
        ("placement", ex.PLACEMENT),
        ("collection", ex.COLLECTION_TAGS),
        ("collection", ex.COLLECTION_OFFERS),
        ("tag", ex.TAG),
        ("tag", {"name": "Sneakers"}),
        ("decision-rule", ex.DECISION_RULE),
    ],
)
def test_documented_bodies_are_stored_as_sent(kind: str, body: dict[str, Any]) -> None:
    # These examples already use the stored spellings, so normalization must be the identity:
    # no injected defaults, no dropped members.
    assert validate(kind, ex.fresh(body)) == body


def test_ranking_formula_example_is_stored_as_sent() -> None:
    assert validate("ranking-formula", ex.fresh(ex.RANKING_FORMULA)) == ex.RANKING_FORMULA


def test_decision_example_keeps_its_ranking_strategy_spelling() -> None:
    # Adobe's lookup examples read `ranking-strategy` back as it was written.
    stored = validate("decision", ex.fresh(ex.DECISION))
    assert stored["criteria"][0]["rank"]["order"]["orderEvaluationType"] == "ranking-strategy"


def test_validate_does_not_mutate_input() -> None:
    body = ex.fresh(ex.DECISION)
    validate("decision", body)
    assert body == ex.DECISION


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_every_seed_request_works(seed: Path) -> None:
    requests = _seed_requests(seed)
    assert requests, "each seed page contains a curl request with a body"
    for method, body in requests:
        if method == "POST":
            stored = validate("fallback-offer", body)
            assert stored["name"] == "Test Fallback Offer DPS"
            assert stored["representations"][0]["components"][0]["type"] == "imagelink"
        else:
            assert method == "PATCH"
            # The seed PATCH replaces /description on the seed offer; also on one without it.
            created = validate("fallback-offer", ex.fresh(ex.FALLBACK_OFFER))
            del created["description"]
            patched = validate("fallback-offer", apply_patch(created, body))
            assert patched["name"] == "Updated fallback offer"
            assert patched["description"] == "Updated fallback offer description"


def test_metadata_fields_are_dropped_on_put() -> None:
    read_back = {
        "created": "2023-05-15T14:35:16.781+00:00",
        "modified": "2023-05-15T14:38:26.691+00:00",
        "etag": 2,
        "schemas": ["https://ns.adobe.com/experience/offer-management/tag;version=0.1"],
        "createdBy": "x",
        "lastModifiedBy": "y",
        "id": "tag1234",
        "sandboxId": "s",
        "datasetId": "d",
        "name": "Sneakers",
    }
    assert validate("tag", read_back) == {"name": "Sneakers"}
    assert {"id", "etag", "schemas", "createdByClientId", "lastModifiedDate"} <= METADATA_FIELDS


def test_metadata_names_are_only_dropped_at_top_level() -> None:
    body = {"name": "o", "rank": {"priority": 1, "id": "x"}}
    with pytest.raises(CatalogValidationError) as info:
        validate("personalized-offer", body)
    assert [e.pointer for e in info.value.errors] == ["/rank/id"]


SPELLINGS = [
    ("collection", "/filterType", "anyTags", "any-tags"),
    ("collection", "/filterType", "allTags", "all-tags"),
    ("collection", "/filterType", "all-tags", "all-tags"),
    (
        "decision",
        "/criteria/0/rank/order/orderEvaluationType",
        "ranking-strategy",
        "rankingStrategy",
    ),
    (
        "decision",
        "/criteria/0/rank/order/orderEvaluationType",
        "rankingStrategy",
        "rankingStrategy",
    ),
    ("decision", "/status", "completed", "complete"),
    ("placement", "/componentType", "text", "component-text"),
    ("placement", "/componentType", "component-text", "component-text"),
    (
        "placement",
        "/componentType",
        "https://ns.adobe.com/experience/offer-management/content-component-html",
        "html",
    ),
    (
        "placement",
        "/componentType",
        "https://ns.adobe.com/experience/offer-management/content-component-json",
        "json",
    ),
    (
        "placement",
        "/componentType",
        "https://ns.adobe.com/experience/offer-management/content-component-imagelink",
        "imagelink",
    ),
    (
        "personalized-offer",
        "/representations/0/components/0/type",
        "https://ns.adobe.com/experience/offer-management/content-component-text",
        "component-text",
    ),
    ("personalized-offer", "/representations/0/components/0/type", "text", "component-text"),
    ("ranking-formula", "/returnType/type", "Decimal", "DECIMAL"),
    ("ranking-formula", "/returnType/type", "INTEGER", "INTEGER"),
]

_BASE = {
    "collection": ex.COLLECTION_TAGS,
    "decision": ex.DECISION,
    "placement": ex.PLACEMENT,
    "personalized-offer": ex.PERSONALIZED_OFFER,
    "ranking-formula": ex.RANKING_FORMULA,
}


def _set(doc: Any, pointer: str, value: Any) -> None:
    *parents, last = pointer.split("/")[1:]
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    doc[last] = value


def _get(doc: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


@pytest.mark.parametrize(("kind", "pointer", "sent", "canonical"), SPELLINGS)
def test_spelling_variants_are_stored_as_sent_and_loaded_canonical(
    kind: str, pointer: str, sent: str, canonical: str
) -> None:
    body = ex.fresh(_BASE[kind])
    _set(body, pointer, sent)
    if kind == "personalized-offer":
        _set(body, "/representations/0/components/0/format", "text/plain")
    stored = validate(kind, body)
    assert _get(stored, pointer) == sent
    assert _canonical_value(kind, stored, pointer) == canonical


def _canonical_value(kind: str, stored: dict[str, Any], pointer: str) -> str:
    """What the loader (the engine's view) makes of the spelling at `pointer`."""
    entity = load(kind, {**stored, "id": "x", "etag": 1})
    if pointer == "/filterType":
        return str(entity.filter_type)
    if pointer.endswith("/orderEvaluationType"):
        return str(entity.criteria[0].order)
    if pointer == "/status":
        return str(entity.status)
    if pointer == "/componentType":
        return str(entity.component_type)
    if pointer == "/returnType/type":
        return str(entity.return_type)
    (representation,) = entity.representations.values()
    return str(representation["components"][0]["type"])


def test_offer_with_audiences_and_every_optional_field() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body.update(
        description="d",
        characteristics={"color": "red", "size": "L"},
        tags=["tag1", "tag2"],
        labels=["core/C1"],
        cappingConstraint={"globalCap": 100, "profileCap": 2},
    )
    body["selectionConstraint"] = {
        "startDate": "2024-01-01T00:00:00Z",
        "endDate": "2024-12-31T23:59:59.999Z",
        "profileConstraintType": "anySegments",
        "segmentIdentities": [
            {"_id": "5c2b2b3c-0000", "namespace": {"code": "ups"}},
            {"_id": "aud-2", "namespace": {"code": "ups"}, "xid": "x"},
        ],
    }
    body["frequencyCappingConstraints"][0].update(
        events=["custom"], customQuery='xEvent.eventType = "click"', index=1
    )
    body["representations"][0]["components"].append(
        {
            "type": "imagelink",
            "format": "image/png",
            "deliveryURL": "https://x/i.png",
            "linkURL": "https://x",
            "name": "banner",
        }
    )
    assert validate("personalized-offer", ex.fresh(body)) == body


def test_json_component_may_carry_a_json_value() -> None:
    body = ex.fresh(ex.PERSONALIZED_OFFER)
    body["representations"][0]["components"] = [
        {"type": "json", "format": "application/json", "content": {"a": [1, 2]}}
    ]
    assert validate("personalized-offer", body)["representations"][0]["components"][0][
        "content"
    ] == {"a": [1, 2]}


def test_integral_floats_are_stored_as_ints() -> None:
    stored = validate("placement", {"name": "p", "itemCount": 3.0})
    assert stored["itemCount"] == 3
    assert isinstance(stored["itemCount"], int)


def test_decision_with_direct_options_and_scoring_function() -> None:
    body = {
        "name": "d",
        "status": "draft",
        "criteria": [
            {
                "rank": {
                    "priority": 2,
                    "order": {"orderEvaluationType": "scoring-function", "function": "rf1"},
                },
                "profileConstraint": {
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": "rule1",
                },
                "optionSelection": {"options": ["o1", "o2"], "optionSelectionType": "directList"},
            }
        ],
    }
    stored = validate("decision", body)
    assert stored["criteria"][0]["rank"]["order"]["orderEvaluationType"] == "scoring-function"
