"""Opaque JSON values (json component content, segment models) nest at most MAX_JSON_DEPTH."""

from __future__ import annotations

from typing import Any

from offerbase.catalog.schema import MAX_JSON_DEPTH, AnyValue, too_deep


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for index in range(depth):
        value = {"a": value} if index % 2 else [value]
    return value


def test_depth_counts_arrays_and_objects() -> None:
    assert not too_deep("x", 0)
    assert not too_deep([], 1)
    assert too_deep([], 0)
    assert not too_deep(nested(5), 5)
    assert too_deep(nested(6), 5)
    assert not too_deep([[1], {"a": [2]}, 3], 3)
    assert too_deep([[1], {"a": [[2]]}, 3], 3)


def test_depth_of_values_past_the_recursion_limit() -> None:
    assert too_deep(nested(100_000), MAX_JSON_DEPTH)


def test_any_value_refuses_what_is_too_deep() -> None:
    errors: list[Any] = []
    assert AnyValue().check(nested(MAX_JSON_DEPTH), "/c", errors) == nested(MAX_JSON_DEPTH)
    assert errors == []
    AnyValue().check(nested(MAX_JSON_DEPTH + 1), "/c", errors)
    assert [(e.pointer, e.message) for e in errors] == [
        ("/c", f"Nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects.")
    ]
