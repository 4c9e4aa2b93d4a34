"""Arbitrary JSON never crashes validate / references / apply_patch (no 500 for bad input)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from offerbase.catalog import (
    KINDS,
    CatalogValidationError,
    PatchError,
    apply_patch,
    references,
    validate,
)

from . import examples as ex

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)

EXAMPLES = {
    "personalized-offer": ex.PERSONALIZED_OFFER,
    "fallback-offer": ex.FALLBACK_OFFER,
    "placement": ex.PLACEMENT,
    "collection": ex.COLLECTION_TAGS,
    "tag": ex.TAG,
    "decision-rule": ex.DECISION_RULE,
    "ranking-formula": ex.RANKING_FORMULA,
    "decision": ex.DECISION,
    "ranking-strategy": ex.RANKING_STRATEGY,
}


def _paths(doc: Any, prefix: str = "") -> list[str]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, f"{prefix}/{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, f"{prefix}/{i}")
    return out


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data(), value=json_values)
def test_corrupting_any_member_of_an_example_never_crashes(
    kind: str, data: Any, value: Any
) -> None:
    body = copy.deepcopy(EXAMPLES[kind])
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    op = data.draw(st.sampled_from(["replace", "remove"]))
    patch = [{"op": op, "path": path, **({"value": value} if op == "replace" else {})}]
    corrupted = apply_patch(body, patch)
    try:
        stored = validate(kind, corrupted)
    except CatalogValidationError as exc:
        errors = exc.errors
        stored = None
    if stored is None:
        for error in errors:
            assert error.pointer == "" or error.pointer.startswith("/")
            assert error.message
    else:
        references(kind, stored)
        # Validation is idempotent: a stored body validates to itself.
        assert validate(kind, copy.deepcopy(stored)) == stored


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), body=json_values)
def test_arbitrary_json_is_rejected_cleanly(kind: str, body: Any) -> None:
    try:
        validate(kind, body)
    except CatalogValidationError:
        pass


@settings(max_examples=200, deadline=None)
@given(patch=json_values)
def test_arbitrary_patch_is_rejected_cleanly(patch: Any) -> None:
    doc = copy.deepcopy(ex.TAG)
    try:
        apply_patch(doc, patch)
    except PatchError:
        pass
    assert doc == ex.TAG


pointers = st.sampled_from(
    [
        "",
        "/name",
        "/description",
        "/tags",
        "/tags/0",
        "/tags/-",
        "/tags/9",
        "/x/y",
        "/name/0",
        "/a~1b",
    ]
)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]), "path": pointers},
    optional={"value": json_values, "from": pointers},
)


@settings(max_examples=300, deadline=None)
@given(patch=st.lists(operations, max_size=4))
def test_well_formed_random_patches_apply_or_fail_cleanly(patch: list[dict[str, Any]]) -> None:
    doc = {"name": "n", "tags": ["a", "b"], "x": {"y": 1}}
    before = copy.deepcopy(doc)
    try:
        result: Any = apply_patch(doc, patch)
    except PatchError as exc:
        result = exc
    if isinstance(result, PatchError):
        assert result.pointer == "" or result.pointer.startswith("/")
    else:
        assert isinstance(result, dict)
    assert doc == before
