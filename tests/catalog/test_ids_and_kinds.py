from __future__ import annotations

import re
import threading
import time

import pytest
from pydantic import BaseModel

from offerbase.catalog import (
    KIND_BY_PATH,
    KINDS,
    new_id,
    snowflake_millis,
    validate,
)

from . import examples as ex

ID_WORDS = {
    "personalized-offer": "personalized-offer",
    "fallback-offer": "fallback-offer",
    "placement": "offer-placement",
    "collection": "offer-filter",
    "tag": "tag",
    "decision-rule": "eligibility-rule",
    "ranking-formula": "ranking-function",
    "decision": "offer-activity",
    "ranking-strategy": "ranking-strategy",
}


@pytest.mark.parametrize("kind", sorted(ID_WORDS))
def test_new_id_shape(kind: str) -> None:
    value = new_id(kind)
    assert re.fullmatch(rf"dps:{ID_WORDS[kind]}:[0-9a-f]+", value)
    assert not value.split(":")[2].startswith("0")


def test_new_id_encodes_the_current_time() -> None:
    before = int(time.time() * 1000)
    value = new_id("tag")
    after = int(time.time() * 1000)
    assert before <= snowflake_millis(value) <= after + 1


def test_snowflake_decodes_adobe_examples() -> None:
    # Adobe's Offer Library API: 19c5fa7448c6fcab was created 2024-11-14T20:56:45.540Z.
    assert snowflake_millis("dps:offer-placement:19c5fa7448c6fcab") == 1731617805540


def test_new_ids_strictly_increase_across_threads() -> None:
    out: list[list[int]] = [[] for _ in range(4)]

    def work(bucket: list[int]) -> None:
        bucket.extend(int(new_id("tag").rsplit(":", 1)[1], 16) for _ in range(3000))

    threads = [threading.Thread(target=work, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [v for bucket in out for v in bucket]
    assert len(set(everything)) == len(everything)
    for bucket in out:
        assert bucket == sorted(bucket)


def test_unknown_kind_id() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        new_id("offer")


def test_kinds_table() -> None:
    assert set(KINDS) == set(ID_WORDS)
    assert {k: v.id_word for k, v in KINDS.items()} == ID_WORDS
    assert [k.name for k in KIND_BY_PATH["offers"]] == ["personalized-offer", "fallback-offer"]
    assert {p: [k.name for k in ks] for p, ks in KIND_BY_PATH.items() if p != "offers"} == {
        "placements": ["placement"],
        "offer-collections": ["collection"],
        "tags": ["tag"],
        "offer-rules": ["decision-rule"],
        "ranking-formulas": ["ranking-formula"],
        "offer-decisions": ["decision"],
        "ranking-strategies": ["ranking-strategy"],
    }
    ns = "https://ns.adobe.com/experience/offer-management/"
    assert KINDS["personalized-offer"].schema_uri == ns + "personalized-offer;version=0.15"
    assert KINDS["fallback-offer"].schema_uri == ns + "fallback-offer;version=0.8"
    assert KINDS["placement"].schema_uri == ns + "offer-placement;version=0.5"
    assert KINDS["collection"].schema_uri == ns + "offer-filter;version=0.4"
    assert KINDS["tag"].schema_uri == ns + "tag;version=0.1"
    assert KINDS["decision-rule"].schema_uri == ns + "eligibility-rule;version=0.3"
    assert KINDS["decision"].schema_uri == ns + "offer-activity;version=0.8"
    # Offerbase's own collection is in Offerbase's namespace, not Adobe's.
    assert KINDS["ranking-strategy"].schema_uri == (
        "https://ns.offerbase.dev/ranking-strategy;version=1"
    )


VARIANTS = {
    "personalized-offer": ex.PERSONALIZED_OFFER,
    "fallback-offer": ex.FALLBACK_OFFER,
    "placement": {
        **ex.PLACEMENT,
        "componentType": "https://ns.adobe.com/experience/offer-management/content-component-text",
    },
    "collection": {**ex.COLLECTION_TAGS, "filterType": "anyTags"},
    "tag": {**ex.TAG, "id": "tag1", "etag": 3},
    "decision-rule": ex.DECISION_RULE,
    "ranking-formula": {**ex.RANKING_FORMULA, "returnType": {"type": "integer"}},
    "decision": ex.DECISION,
}


@pytest.mark.parametrize("kind", sorted(VARIANTS))
def test_models_accept_what_validate_accepts(kind: str) -> None:
    model = KINDS[kind].model
    assert issubclass(model, BaseModel)
    body = ex.fresh(VARIANTS[kind])
    validate(kind, ex.fresh(body))
    model.model_validate(body)
    assert model.model_json_schema()["type"] == "object"


def test_model_accepts_audiences_with_underscore_id() -> None:
    body = {
        "name": "o",
        "selectionConstraint": {
            "profileConstraintType": "anySegments",
            "segmentIdentities": [{"_id": "a1", "namespace": {"code": "ups"}}],
        },
    }
    validate("personalized-offer", ex.fresh(body))
    KINDS["personalized-offer"].model.model_validate(body)
    schema = KINDS["personalized-offer"].model.model_json_schema()
    segment = next(d for n, d in schema["$defs"].items() if n.endswith("SegmentIdentities"))
    assert "_id" in segment["properties"]
    assert segment["required"] == ["_id", "namespace"]


def test_model_schema_lists_spellings() -> None:
    schema = KINDS["collection"].model.model_json_schema()
    assert set(schema["properties"]["filterType"]["enum"]) == {
        "offers",
        "any-tags",
        "all-tags",
        "anyTags",
        "allTags",
    }
    assert schema["required"] == ["name", "filterType"]
