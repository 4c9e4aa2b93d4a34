"""Edge cases: missing formulas, group events, pickling of results and errors."""

from __future__ import annotations

import pickle

import pytest
from engine_helpers import (
    catalog,
    collection,
    criterion,
    decision,
    fallback,
    formula,
    ids,
    offer,
    placement,
    rule,
    run,
    spy,
)

from offerbase.engine import DecisionError


def test_missing_formula_ranks_with_null_scores_and_is_traced() -> None:
    snap = catalog(
        [offer("O1", 1), offer("O2", 2)],
        [decision("D1", [criterion("C1", formula="nope")])],
        collections=[collection("C1", ["O1", "O2"])],
    )
    result = run(snap, [("D1", "P1", 2)], trace=True)
    assert sorted(ids(result)) == ["O1", "O2"]
    assert all(o.score is None for o in result.scopes[0].options)
    assert any(e["event"] == "formula_missing" for e in result.trace or [])


def test_failing_formula_ranks_last() -> None:
    snap = catalog(
        [offer("O1", 1), offer("O2", 2)],
        [
            decision(
                "D1",
                [
                    criterion("C1", formula="F1", priority=1),
                    criterion("C2", formula="F2", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["O1"]), collection("C2", ["O2"])],
        formulas=[formula("F1", "1"), formula("F2", "2")],
    )
    spy(snap, "F2", raising=True)
    assert ids(run(snap, [("D1", "P1", 2)])) == ["O1", "O2"]


def test_group_not_evaluated_once_item_count_is_filled() -> None:
    snap = catalog(
        [offer("O1", 1), offer("O2", 2)],
        [decision("D1", [criterion("C1", priority=2), criterion("C2", priority=1)])],
        collections=[collection("C1", ["O1"]), collection("C2", ["O2"])],
    )
    result = run(snap, trace=True)
    assert ids(result) == ["O1"]
    events = [e for e in result.trace or [] if e["event"] == "group_not_evaluated"]
    assert events == [
        {
            "scope": 0,
            "event": "group_not_evaluated",
            "group": 1,
            "criteria": [1],
            "reason": "itemCount already filled",
        }
    ]


def test_offer_dependent_criterion_constraint_in_a_group() -> None:
    snap = catalog(
        [offer("O1", 5, tags=("a",)), offer("O2", 4, tags=("b",)), offer("O3", 3)],
        [
            decision(
                "D1",
                [
                    criterion(
                        "C1",
                        priority=1,
                        constraint={
                            "profileConstraintType": "eligibilityRule",
                            "eligibilityRule": "R1",
                        },
                    ),
                    criterion("C2", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["O1", "O2"]), collection("C2", ["O3"])],
        rules=[rule("R1", 'offer.tags.includes("b")')],
    )
    assert ids(run(snap, [("D1", "P1", 3)])) == ["O2", "O3"]


def test_fallback_without_representation_for_placement() -> None:
    snap = catalog(
        [offer("O1", status="draft")],
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", ["O1"])],
        fallbacks=[fallback("F1", placements=("P2",))],
    )
    fb = run(snap).scopes[0].fallback
    assert fb is not None
    assert fb.id == "F1"
    assert fb.representation is None


def test_results_and_errors_pickle() -> None:
    snap = catalog(
        [offer("O1", 1)],
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", ["O1"])],
    )
    result = run(snap, trace=True)
    assert pickle.loads(pickle.dumps(result)) == result
    err = DecisionError(422, "Invalid itemCount", "too many", "/x")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.status, clone.title, clone.detail, clone.pointer) == (
        422,
        "Invalid itemCount",
        "too many",
        "/x",
    )


def test_the_response_budget_counts_each_placements_item_count() -> None:
    """100 offers per response, all scopes together: a scope without xdm:itemCount asks for its
    placement's itemCount (here 30), so four such scopes ask for 120."""
    snap = catalog(
        [offer(f"O{i}", placements=("P1",)) for i in range(3)],
        [decision("D1", [criterion(options=["O0", "O1", "O2"])])],
        placements=[placement("P1", item_count=30)],
    )
    with pytest.raises(DecisionError) as raised:
        run(snap, [("D1", "P1")] * 4, allow_duplicates_across_placements=True)
    assert raised.value.status == 422
    assert raised.value.pointer == "/xdm:propositionRequests"
    assert "ask for 120" in raised.value.detail
    # Three such scopes (90) are within it; so is the fourth asking for 10 explicitly.
    assert len(run(snap, [("D1", "P1")] * 3).scopes) == 3
    assert len(run(snap, [("D1", "P1")] * 3 + [("D1", "P1", 10)]).scopes) == 4
