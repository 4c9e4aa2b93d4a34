from __future__ import annotations

import copy
from typing import Any

import pytest

from offerbase.catalog import PatchError, PatchTestFailed, PatchTooLarge, apply_patch
from offerbase.catalog.patch import MAX_PATCH_OPERATIONS, json_size

DOC: dict[str, Any] = {
    "name": "n",
    "rank": {"priority": 1},
    "tags": ["a", "b"],
    "enabled": True,
    "count": 1,
}


def run(patch: Any) -> dict[str, Any]:
    before = copy.deepcopy(DOC)
    result = apply_patch(DOC, patch)
    assert before == DOC, "apply_patch must not mutate its input"
    return result


def fails(patch: Any) -> PatchError:
    with pytest.raises(PatchError) as info:
        run(patch)
    return info.value


def test_add_member_and_array_items() -> None:
    result = run(
        [
            {"op": "add", "path": "/description", "value": "d"},
            {"op": "add", "path": "/tags/-", "value": "c"},
            {"op": "add", "path": "/tags/0", "value": "z"},
        ]
    )
    assert result["description"] == "d"
    assert result["tags"] == ["z", "a", "b", "c"]


def test_remove() -> None:
    result = run([{"op": "remove", "path": "/tags/0"}, {"op": "remove", "path": "/rank"}])
    assert result["tags"] == ["b"]
    assert "rank" not in result


def test_replace_existing() -> None:
    assert run([{"op": "replace", "path": "/name", "value": "m"}])["name"] == "m"


def test_replace_missing_member_acts_as_add() -> None:
    # Adobe's examples replace /description on entities created without one.
    result = run([{"op": "replace", "path": "/description", "value": "new"}])
    assert result["description"] == "new"
    assert run([{"op": "replace", "path": "/rank/order", "value": 1}])["rank"]["order"] == 1


@pytest.mark.parametrize("path", ["/tags/5", "/missing/child", "/name/x"])
def test_replace_cannot_create_anything_else(path: str) -> None:
    error = fails([{"op": "replace", "path": path, "value": 1}])
    assert error.pointer == "/0/path"
    assert not isinstance(error, PatchTestFailed)
    assert not error.malformed


def test_move_and_copy() -> None:
    result = run(
        [
            {"op": "copy", "from": "/name", "path": "/description"},
            {"op": "move", "from": "/rank/priority", "path": "/priority"},
        ]
    )
    assert result["description"] == "n"
    assert result["priority"] == 1
    assert result["rank"] == {}


def test_move_into_own_child_fails() -> None:
    assert fails([{"op": "move", "from": "/rank", "path": "/rank/inner"}]).pointer == "/0/path"


@pytest.mark.parametrize("op", ["move", "copy"])
def test_missing_source_points_at_from(op: str) -> None:
    assert fails([{"op": op, "from": "/nope", "path": "/x"}]).pointer == "/0/from"


def test_passing_tests() -> None:
    run(
        [
            {"op": "test", "path": "/name", "value": "n"},
            {"op": "test", "path": "/rank", "value": {"priority": 1.0}},
            {"op": "test", "path": "/tags", "value": ["a", "b"]},
        ]
    )


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        ("/name", "other", "/1/value"),
        ("/enabled", 1, "/1/value"),  # true is not 1 in JSON
        ("/count", True, "/1/value"),
        ("/tags", ["b", "a"], "/1/value"),
        ("/missing", None, "/1/path"),
    ],
)
def test_failing_test_is_all_or_nothing(path: str, value: Any, pointer: str) -> None:
    patch = [
        {"op": "replace", "path": "/name", "value": "changed"},
        {"op": "test", "path": path, "value": value},
    ]
    with pytest.raises(PatchTestFailed) as info:
        run(patch)
    assert info.value.pointer == pointer
    assert DOC["name"] == "n"


def test_later_failure_applies_nothing() -> None:
    doc = copy.deepcopy(DOC)
    with pytest.raises(PatchError):
        apply_patch(doc, [{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/y"}])
    assert doc == DOC


def test_added_values_are_copied() -> None:
    value = {"k": ["v"]}
    result = apply_patch({}, [{"op": "add", "path": "/a", "value": value}])
    result["a"]["k"].append("w")
    assert value == {"k": ["v"]}


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"op": "add"}, ""),
        ("[]", ""),
        ([1], "/0"),
        ([{"path": "/a", "value": 1}], "/0/op"),
        ([{"op": "append", "path": "/a"}], "/0/op"),
        ([{"op": "add", "path": "/a", "value": 1}, {"op": "add", "value": 1}], "/1/path"),
        ([{"op": "add", "path": "/a"}], "/0/value"),
        ([{"op": "replace", "path": "/a"}], "/0/value"),
        ([{"op": "test", "path": "/a"}], "/0/value"),
        ([{"op": "move", "path": "/a"}], "/0/from"),
        ([{"op": "copy", "path": "/a", "from": "name"}], "/0/from"),
        ([{"op": "remove", "path": "name"}], "/0/path"),
        ([{"op": "remove", "path": "/a~2b"}], "/0/path"),
        ([{"op": "remove", "path": 5}], "/0/path"),
    ],
)
def test_malformed_patches(patch: Any, pointer: str) -> None:
    error = fails(patch)
    assert error.pointer == pointer
    assert error.malformed


def test_malformed_is_detected_before_anything_applies() -> None:
    # The second op is malformed: even a failing first test is not what gets reported.
    error = fails([{"op": "test", "path": "/name", "value": "x"}, {"op": "bogus", "path": "/a"}])
    assert error.pointer == "/1/op"


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "remove", "path": "/nope"}],
        [{"op": "remove", "path": "/tags/7"}],
        [{"op": "add", "path": "/tags/9", "value": 1}],
        [{"op": "add", "path": "/nope/deeper", "value": 1}],
    ],
)
def test_operations_that_cannot_apply(patch: Any) -> None:
    error = fails(patch)
    assert error.pointer == "/0/path"
    assert not error.malformed


def test_replacing_the_root_with_a_non_object_fails() -> None:
    assert fails([{"op": "replace", "path": "", "value": [1]}]).pointer == ""
    assert run([{"op": "replace", "path": "", "value": {"name": "x"}}]) == {"name": "x"}


def test_empty_patch_returns_an_equal_copy() -> None:
    result = run([])
    assert result == DOC
    assert result is not DOC


# -- bounded work ------------------------------------------------------------------------------


def test_at_most_max_operations() -> None:
    test_op = {"op": "test", "path": "/name", "value": "n"}
    assert run([test_op] * MAX_PATCH_OPERATIONS)["name"] == "n"
    error = fails([test_op] * (MAX_PATCH_OPERATIONS + 1))
    assert isinstance(error, PatchTooLarge)
    assert f"at most {MAX_PATCH_OPERATIONS} operations" in error.message


def test_copy_amplification_is_refused_before_it_grows() -> None:
    # Each copy doubles /a: 60 of them would need 2**60 times the start (exabytes), so the
    # test only returns because the size of each copy is measured before it is applied.
    doc = {"name": "n", "a": ["x" * 100]}
    doubling = [{"op": "add", "path": "/b", "value": []}]
    for _ in range(60):
        doubling += [
            {"op": "copy", "from": "/a", "path": "/b/-"},
            {"op": "copy", "from": "/b", "path": "/a/-"},
        ]
    with pytest.raises(PatchTooLarge) as info:
        apply_patch(doc, doubling, max_written=100_000)
    # 2**k * ~100 bytes pass 100,000 after about ten doublings, long before op 120.
    index = int(info.value.pointer.strip("/"))
    assert 10 < index < 30
    assert "more than 100000 bytes" in info.value.message


def test_writes_add_up_to_the_limit_exactly() -> None:
    value = "x" * 98  # 100 bytes as JSON
    assert json_size(value) == 100
    ops = [{"op": "add", "path": f"/k{i}", "value": value} for i in range(10)]
    assert len(apply_patch(DOC, ops, max_written=1000)) == len(DOC) + 10
    with pytest.raises(PatchTooLarge) as info:
        apply_patch(DOC, ops, max_written=999)
    assert info.value.pointer == "/9"
    replace = [{"op": "replace", "path": "/name", "value": value}] * 3
    with pytest.raises(PatchTooLarge):
        apply_patch(DOC, replace, max_written=299)
    # remove, move and test write nothing
    free = [
        {"op": "test", "path": "/name", "value": "n"},
        {"op": "move", "from": "/tags", "path": "/labels"},
        {"op": "remove", "path": "/labels"},
    ]
    assert "labels" not in apply_patch(DOC, free, max_written=0)


def test_json_size_of_integers_past_64_bits() -> None:
    assert json_size(10**30) == 31
