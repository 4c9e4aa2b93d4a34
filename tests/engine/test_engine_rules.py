"""The engine's rules pinned down (docs/decisioning.md): request validation and its limits,
criteria groups, ranking and ties, de-duplication, fallback, collections and the trace.

Real PQL only, bodies the Offer Library API accepts (see rules_support.build).
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from engine_helpers import (
    NOW,
    catalog,
    collection,
    criterion,
    decision,
    drops,
    eligible,
    events,
    fallback,
    formula,
    ids,
    load_stored,
    offer,
    placement,
    rule,
    run,
    scores,
    segments,
    simple,
    two_decisions,
)

from offerbase.engine import DecisionError, DecisionRequest, ScopeRequest, build_snapshot, decide

SECOND = timedelta(seconds=1)


def _one_decision(**kw: object):  # type: ignore[no-untyped-def]
    return catalog(
        [offer("O1", placements=("P1", "P2"))],
        [
            decision("D0", [criterion("C1")]),
            decision("D1", [criterion("C1")], **kw),  # type: ignore[arg-type]
        ],
        collections=[collection("C1", ["O1"])],
    )


def _error(snap, scopes, **kw) -> DecisionError:  # type: ignore[no-untyped-def]
    with pytest.raises(DecisionError) as err:
        run(snap, scopes, **kw)
    return err.value


# -- resolve: decision dates, status, limits ---------------------------------------------------


def test_decision_start_and_end_are_inclusive_to_the_second() -> None:
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    end = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    snap = _one_decision(start="2026-11-24T12:00:00Z", end="2026-11-25T12:00:00.000+00:00")
    assert ids(run(snap, [("D1", "P1")], now=start)) == ["O1"]
    assert ids(run(snap, [("D1", "P1")], now=end)) == ["O1"]
    for when in (start - SECOND, end + SECOND):
        err = _error(snap, [("D0", "P1"), ("D1", "P1")], now=when)
        assert err.status == 422
        assert err.pointer == "/xdm:propositionRequests/1/xdm:activityId"
        assert "D1" in err.detail
        assert str(err).startswith("422 ")


def test_decision_with_only_one_bound() -> None:
    only_start = _one_decision(start="2026-11-24T12:00:00Z")
    assert ids(run(only_start, [("D1", "P1")], now=NOW + timedelta(days=3650))) == ["O1"]
    assert _error(only_start, [("D1", "P1")], now=NOW - SECOND).status == 422
    only_end = _one_decision(end="2026-11-24T12:00:00Z")
    assert ids(run(only_end, [("D1", "P1")], now=NOW - timedelta(days=3650))) == ["O1"]
    assert _error(only_end, [("D1", "P1")], now=NOW + SECOND).status == 422


@pytest.mark.parametrize(("status", "shown"), [(None, "draft"), ("complete", "complete")])
def test_not_live_decision_names_its_status(status: str | None, shown: str) -> None:
    snap = _one_decision(status=status)
    err = _error(snap, [("D0", "P1"), ("D1", "P1")])
    assert (err.status, err.pointer) == (422, "/xdm:propositionRequests/1/xdm:activityId")
    assert f"'{shown}'" in err.detail
    assert "D1" in err.detail


def test_unknown_decision_and_placement_name_the_id() -> None:
    snap = _one_decision()
    err = _error(snap, [("D0", "P1"), ("D-missing", "P1")])
    assert (err.status, err.pointer) == (404, "/xdm:propositionRequests/1/xdm:activityId")
    assert err.title == "Not Found"
    assert "D-missing" in err.detail
    err = _error(snap, [("D0", "P1"), ("D1", "P-missing")])
    assert (err.status, err.pointer) == (404, "/xdm:propositionRequests/1/xdm:placementId")
    assert "P-missing" in err.detail


def test_errors_are_raised_before_any_scope_is_decided() -> None:
    snap = _one_decision()
    err = _error(snap, [("D1", "P1", 31), ("D-missing", "P1")])
    assert err.pointer == "/xdm:propositionRequests/0/xdm:itemCount"


def test_exactly_30_scopes_pass_and_31_fail() -> None:
    snap = _one_decision()
    result = run(snap, [("D1", "P1")] * 30)
    assert len(result.scopes) == 30
    assert ids(result, 0) == ["O1"]
    assert all(s.fallback is not None for s in result.scopes[1:])  # no duplicates by default
    err = _error(snap, [("D1", "P1")] * 31)
    assert err.status == 422
    assert err.pointer == "/xdm:propositionRequests"
    assert "31" in err.detail
    assert str(err).startswith("422 ")


def test_item_count_bounds_1_and_30() -> None:
    offers = [offer(f"O{i:02}", i) for i in range(31)]
    snap = simple(offers)
    assert len(ids(run(snap, [("D1", "P1", 30)]))) == 30
    assert len(ids(run(snap, [("D1", "P1", 1)]))) == 1
    for bad in (31, 0):
        err = _error(snap, [("D1", "P1"), ("D1", "P1", bad)])
        assert err.status == 422
        assert err.pointer == "/xdm:propositionRequests/1/xdm:itemCount"
        assert str(bad) in err.detail


def test_placement_item_count_30_is_used() -> None:
    offers = [offer(f"O{i:02}", i) for i in range(31)]
    snap = simple(offers, placements=[placement("P1", item_count=30)])
    assert len(ids(run(snap))) == 30


def test_empty_sandbox_answers_404() -> None:
    snap = build_snapshot(load_stored({}))
    assert snap.version == 0
    with pytest.raises(DecisionError) as err:
        run(snap)
    assert err.value.status == 404
    snap = build_snapshot(load_stored({"placement": [placement("P1")]}))
    with pytest.raises(DecisionError) as err:
        run(snap)
    assert err.value.status == 404


def test_snapshot_pickles_as_its_entities() -> None:
    snap = simple(
        [offer("A", 2), offer("B", 3, constraint=eligible("R"))],
        rules=[rule("R", 'tier = "gold"')],
    )
    clone = pickle.loads(pickle.dumps(snap))
    assert clone.version == snap.version == 0
    for profile, expected in (({"tier": "gold"}, ["B", "A"]), ({}, ["A"])):
        assert ids(run(clone, [("D1", "P1", 2)], profile=profile)) == expected
        assert ids(run(snap, [("D1", "P1", 2)], profile=profile)) == expected


# -- offers: dates, rank, result data ---------------------------------------------------------


def test_offer_start_and_end_are_inclusive_to_the_second() -> None:
    snap = simple(
        [
            offer("dated", 9, start="2026-11-24T12:00:00Z", end="2026-11-25T12:00:00.000+00:00"),
            offer("from", 5, start="2026-11-24T12:00:00Z"),
            offer("until", 3, end="2026-11-25T12:00:00Z"),
            offer("always", 0),
        ]
    )
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    end = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert ids(run(snap, [("D1", "P1", 4)], now=start)) == ["dated", "from", "until", "always"]
    assert ids(run(snap, [("D1", "P1", 4)], now=end)) == ["dated", "from", "until", "always"]
    result = run(snap, [("D1", "P1", 4)], now=start - SECOND, trace=True)
    assert ids(result) == ["until", "always"]
    assert {o: [r for _, r, _ in d] for o, d in drops(result).items()} == {
        "dated": ["dates"],
        "from": ["dates"],
    }
    assert ids(run(snap, [("D1", "P1", 4)], now=end + SECOND)) == ["from", "always"]


def test_offer_without_rank_has_priority_0() -> None:
    snap = catalog(
        [offer("none", None), offer("one", 1), offer("zero", 0)],
        [
            decision("D1", [criterion("C1")]),
            decision("D2", [criterion("C1", formula="F")]),
        ],
        collections=[collection("C1", ["none", "one", "zero"])],
        formulas=[formula("F", "offer.rank.priority + 1")],
    )
    firsts = set()
    for seed in range(30):
        got = ids(run(snap, [("D1", "P1", 3)], seed=seed))
        assert got[0] == "one"
        firsts.add(got[1])
    assert firsts == {"none", "zero"}
    scored = sorted(scores(run(snap, [("D2", "P1", 3)])))
    assert scored == [("none", 1), ("one", 2), ("zero", 1)]


def test_chosen_options_carry_the_offer_and_its_representation() -> None:
    body = offer("A", 1, placements=("P1", "P2"))
    body["etag"] = "e-17"
    snap = simple([body])
    scope = run(snap, [("D1", "P2")]).scopes[0]
    (chosen,) = scope.options
    assert (chosen.id, chosen.etag, chosen.body) == ("A", "e-17", body)
    assert chosen.representation == body["representations"][1]
    assert chosen.score is None
    assert (scope.activity.id, scope.activity.etag, scope.placement.id) == ("D1", 4, "P2")


# -- criteria and groups -----------------------------------------------------------------------


def test_criteria_apply_to_the_placements_they_list() -> None:
    snap = catalog(
        [offer(o, 1, placements=("P1", "P2")) for o in ("any", "p2", "both", "none")],
        [
            decision(
                "D1",
                [
                    criterion("Cp2", placements=["P2"], priority=3),
                    criterion("Cboth", placements=["P1", "P2"], priority=2),
                    criterion("Cany", placements=[], priority=1),
                    criterion("Cnone"),
                ],
            )
        ],
        collections=[
            collection("Cp2", ["p2"]),
            collection("Cboth", ["both"]),
            collection("Cany", ["any"]),
            collection("Cnone", ["none"]),
        ],
    )
    assert ids(run(snap, [("D1", "P1", 4)])) == ["both", "any", "none"]
    assert ids(run(snap, [("D1", "P2", 4)])) == ["p2", "both", "any", "none"]


def test_direct_option_lists() -> None:
    untyped = criterion(options=["B"])
    del untyped["optionSelection"]["optionSelectionType"]  # optional: options alone suffice
    snap = catalog(
        [offer("A", 1), offer("B", 2), offer("C", 3)],
        [
            decision("D1", [criterion(options=["A", "B", "A"])]),
            decision("D2", [criterion(options=["C"], priority=1), criterion(options=["A"])]),
            decision("D3", [untyped]),
        ],
    )
    assert ids(run(snap, [("D1", "P1", 3)])) == ["B", "A"]
    assert ids(run(snap, [("D2", "P1", 3)])) == ["C", "A"]
    assert ids(run(snap, [("D3", "P1", 3)])) == ["B"]


def test_missing_criterion_priority_is_0_below_priority_1() -> None:
    snap = catalog(
        [offer("hi", 9), offer("lo", 1)],
        [decision("D1", [criterion("C1"), criterion("C2", priority=1)])],
        collections=[collection("C1", ["hi"]), collection("C2", ["lo"])],
    )
    # two groups: C2 (priority 1) first, then C1 (default 0); not one group ranked by offer
    for seed in range(5):
        assert ids(run(snap, [("D1", "P1", 2)], seed=seed)) == ["lo", "hi"]


def test_empty_rank_object_means_priority_0() -> None:
    snap = simple([offer("empty", None, rank={}), offer("one", 1), offer("zero", 0)])
    firsts = Counter()
    for seed in range(40):
        got = ids(run(snap, [("D1", "P1", 3)], seed=seed))
        assert got[0] == "one"
        firsts[got[1]] += 1
    assert set(firsts) == {"empty", "zero"}  # a tie at priority 0


def test_decision_without_criteria_falls_back() -> None:
    body = decision("D1", [])
    del body["criteria"]
    snap = catalog([offer("O1")], [body])
    scope = run(snap).scopes[0]
    assert scope.options == []
    assert scope.fallback is not None
    assert scope.fallback.id == "F1"


def test_best_score_kept_when_earlier_criterion_scores_higher() -> None:
    _assert_best_score(first=50, second=10)


def test_best_score_kept_when_later_criterion_scores_higher() -> None:
    _assert_best_score(first=10, second=50)


def _assert_best_score(first: int, second: int) -> None:
    snap = catalog(
        [offer("X", 1), offer("Y", 2)],
        [decision("D1", [criterion("C1", formula="F1"), criterion("C2", formula="F2")])],
        collections=[collection("C1", ["X"]), collection("C2", ["X", "Y"])],
        formulas=[
            formula("F1", f"{first} + offer.rank.priority * 0"),
            formula("F2", f'if(offer._id = "X", {second}, 30)'),
        ],
    )
    result = run(snap, [("D1", "P1", 2)], trace=True)
    assert [(o.id, o.score) for o in result.scopes[0].options] == [("X", 50), ("Y", 30)]
    ranked = [(e["offer"], e["position"], e["score"]) for e in events(result, "ranked")]
    assert ranked == [("X", 1, 50), ("Y", 2, 30)]


def test_equal_score_keeps_the_earlier_criterion() -> None:
    # X reaches the group twice with the same value (priority 5, formula 5): the first stays
    snap = catalog(
        [offer("X", 5)],
        [decision("D1", [criterion("C1", priority=1), criterion("C2", priority=1, formula="F")])],
        collections=[collection("C1", ["X"]), collection("C2", ["X"])],
        formulas=[formula("F", "offer.rank.priority")],
    )
    assert [(o.id, o.score) for o in run(snap).scopes[0].options] == [("X", None)]


def test_multi_criteria_group_skips_a_false_criterion_and_ranks_the_next() -> None:
    snap = catalog(
        [offer("A", 9), offer("B", 1)],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=1, constraint=eligible("R1")),
                    criterion("C2", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["A"]), collection("C2", ["B"])],
        rules=[rule("R1", 'tier = "gold"')],
    )
    assert ids(run(snap, [("D1", "P1", 2)])) == ["B"]
    assert ids(run(snap, [("D1", "P1", 2)], profile={"tier": "gold"})) == ["A", "B"]


@pytest.mark.parametrize("order", [["bad", "good", "bad2", "good2"], ["good", "bad", "good2"]])
def test_formula_group_with_eligible_and_ineligible_offers(order: list[str]) -> None:
    bodies = {
        "bad": offer("bad", 1, end="2020-01-01T00:00:00Z"),
        "bad2": offer("bad2", 1, start="2030-01-01T00:00:00Z"),
        "good": offer("good", 1),
        "good2": offer("good2", 1),
    }
    snap = catalog(
        [bodies[o] for o in order],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", order)],
        formulas=[formula("F", 'if(offer._id = "good", 2, 1)')],
    )
    expected = [o for o in ("good", "good2") if o in order]
    assert ids(run(snap, [("D1", "P1", 4)])) == expected
    traced = run(snap, [("D1", "P1", 4)], trace=True)
    assert ids(traced) == expected
    assert {o: [r for _, r, _ in d] for o, d in drops(traced).items()} == {
        o: ["dates"] for o in order if o.startswith("bad")
    }


def test_group_after_a_filled_group_is_not_evaluated_each_is_traced() -> None:
    snap = catalog(
        [offer("A"), offer("B"), offer("C")],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=3),
                    criterion("C2", priority=2),
                    criterion("C3", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["A"]), collection("C2", ["B"]), collection("C3", ["C"])],
    )
    result = run(snap, trace=True)
    assert ids(result) == ["A"]
    assert [
        (e["group"], e["criteria"], e["reason"]) for e in events(result, "group_not_evaluated")
    ] == [(1, [1], "itemCount already filled"), (2, [2], "itemCount already filled")]


def test_offer_ranked_by_an_earlier_group_keeps_its_place_in_both_paths() -> None:
    for later in (criterion("C2", priority=1), criterion("C2", priority=1, formula="F")):
        snap = catalog(
            [offer("X", 1), offer("Y", 1)],
            [decision("D1", [criterion("C1", priority=2), later])],
            collections=[collection("C1", ["X"]), collection("C2", ["X", "Y"])],
            formulas=[formula("F", "offer.rank.priority")],
        )
        traced = []
        for seed in range(8):
            result = run(snap, [("D1", "P1", 2)], seed=seed, trace=True)
            assert ids(result) == ["X", "Y"]
            traced.append(drops(result).get("X"))
        # the fast path stops once it has Y, so X is traced only when it is drawn first
        expected = [(1, "already_ranked", "by an earlier group")]
        assert expected in traced
        assert all(t == expected for t in traced if t is not None)
        if later["rank"].get("order"):
            assert set(map(str, traced)) == {str(expected)}


def test_kebab_case_scoring_function_spelling() -> None:
    crit = criterion("C1", formula="F")
    crit["rank"]["order"]["orderEvaluationType"] = "scoring-function"
    snap = catalog(
        [offer("A", 1), offer("B", 2)],
        [decision("D1", [crit])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[formula("F", 'if(offer._id = "A", 10, 1)')],
    )
    assert [(o.id, o.score) for o in run(snap, [("D1", "P1", 2)]).scopes[0].options] == [
        ("A", 10),
        ("B", 1),
    ]


def test_formula_missing_is_traced_once_per_criterion() -> None:
    snap = catalog(
        [offer("A", 1)],
        [decision("D1", [criterion("C1", formula="F"), criterion("C2", formula="nope")])],
        collections=[collection("C1", ["A"]), collection("C2", ["A"])],
        formulas=[formula("F", "offer.rank.priority")],
    )
    result = run(snap, trace=True)
    assert events(result, "formula_missing") == [
        {"scope": 0, "event": "formula_missing", "criterion": 1, "formula": "nope"}
    ]
    assert [(o.id, o.score) for o in result.scopes[0].options] == [("A", 1)]


# -- ranking: ties ---------------------------------------------------------------------------


def test_a_tie_of_exactly_two_offers_is_shuffled() -> None:
    snap = simple([offer("A", 5), offer("B", 5), offer("low", 1)])
    orders = Counter(tuple(ids(run(snap, [("D1", "P1", 3)], seed=s))) for s in range(60))
    assert set(orders) == {("A", "B", "low"), ("B", "A", "low")}
    firsts = Counter(ids(run(snap, seed=s))[0] for s in range(60))
    assert set(firsts) == {"A", "B"}


def test_a_tie_is_shuffled_uniformly() -> None:
    snap = simple([offer("A", 5), offer("B", 5), offer("C", 5)])
    orders = Counter(tuple(ids(run(snap, [("D1", "P1", 3)], seed=s))) for s in range(1200))
    assert set(orders) == set(itertools.permutations("ABC"))
    assert all(140 < n < 260 for n in orders.values())  # 200 each expected


def test_a_tie_of_two_formula_scores_is_shuffled() -> None:
    snap = catalog(
        [offer("A", 1), offer("B", 2), offer("C", 3)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B", "C"])],
        formulas=[formula("F", 'if(offer._id = "C", 1, 7)')],
    )
    orders = {tuple(ids(run(snap, [("D1", "P1", 3)], seed=s))) for s in range(60)}
    assert orders == {("A", "B", "C"), ("B", "A", "C")}


def test_no_tie_is_never_shuffled() -> None:
    snap = simple([offer("c", 1), offer("a", 3), offer("b", 2)])
    assert {tuple(ids(run(snap, [("D1", "P1", 3)], seed=s))) for s in range(40)} == {
        ("a", "b", "c")
    }
    scored = catalog(
        [offer("c", 1), offer("a", 3), offer("b", 2)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["c", "a", "b"])],
        formulas=[formula("F", "offer.rank.priority * 10")],
    )
    for s in range(40):
        options = run(scored, [("D1", "P1", 3)], seed=s).scopes[0].options
        assert [(o.id, o.score) for o in options] == [("a", 30), ("b", 20), ("c", 10)]


class _ZeroRandom(random.Random):
    """An RNG that always draws 0.0: every tie-break picks the first remaining candidate."""

    def random(self) -> float:
        return 0.0


def test_ties_are_broken_by_the_rng_alone() -> None:
    """With a degenerate RNG tied offers stay in candidate order, in both ranking paths (the
    engine never falls back to comparing the offers themselves)."""
    snap = catalog(
        [offer("b", 1), offer("c", 1), offer("a", 1)],
        [
            decision("Dstatic", [criterion("C1")]),
            decision("Dscored", [criterion("C1", formula="F")]),
        ],
        collections=[collection("C1", ["b", "c", "a"])],
        formulas=[formula("F", "offer.rank.priority")],
    )
    for activity in ("Dstatic", "Dscored"):
        request = DecisionRequest([ScopeRequest(activity, "P1", 3)])
        result = decide(snap, request, {}, {}, now=NOW, rng=_ZeroRandom())
        assert ids(result) == ["b", "c", "a"]


def test_a_scope_without_ties_draws_no_randomness() -> None:
    """The fast path draws random numbers only for the ties it has to break: a scope whose
    top tier is one offer leaves the next scope's tie-break exactly as if it were alone."""
    snap = catalog(
        [
            offer("top", 9, placements=("P1", "P2")),
            offer("t1", 1, placements=("P1", "P2")),
            offer("t2", 1, placements=("P1", "P2")),
            offer("t3", 1, placements=("P1", "P2")),
        ],
        [decision("D1", [criterion("C1")]), decision("D2", [criterion("C2")])],
        collections=[collection("C1", ["top", "t1", "t2", "t3"]), collection("C2", ["t1", "t2"])],
    )
    allow = {"allow_duplicates_across_activities": True, "allow_duplicates_across_placements": True}
    for seed in range(30):
        alone = ids(run(snap, [("D2", "P2")], seed=seed, **allow))
        after = run(snap, [("D1", "P1"), ("D2", "P2")], seed=seed, **allow)
        assert ids(after, 0) == ["top"]
        assert ids(after, 1) == alone


# -- de-duplication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "pl", "repeats"),
    [(None, None, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_same_activity_and_placement_twice(
    act: bool | None, pl: bool | None, repeats: bool
) -> None:
    """The same (activity, placement) twice repeats an offer only when both flags allow it."""
    result = run(
        two_decisions(3),
        [("D1", "P1"), ("D1", "P1")],
        allow_duplicates_across_activities=act,
        allow_duplicates_across_placements=pl,
    )
    assert ids(result, 0) == ["O1"]
    assert ids(result, 1) == (["O1"] if repeats else ["O2"])


@pytest.mark.parametrize(
    ("p1", "p2", "act", "pl", "other_activity", "other_placement"),
    [
        # request flags absent: the placements decide, both dimensions alike
        (True, True, None, None, True, True),
        # ... only the requested ones: (D1, P1) + (D2, P1) asks P1 only
        (True, None, None, None, True, False),
        (None, True, None, None, False, False),
        # one dimension from the request, the other from the placements
        (False, False, None, True, False, True),
        (True, True, None, False, True, False),
        (False, False, True, None, True, False),
        (True, True, False, None, False, True),
    ],
)
def test_dedup_flags_per_dimension(
    p1: bool | None,
    p2: bool | None,
    act: bool | None,
    pl: bool | None,
    other_activity: bool,
    other_placement: bool,
) -> None:
    snap = two_decisions(3, p1, p2)
    flags = {"allow_duplicates_across_activities": act, "allow_duplicates_across_placements": pl}
    # another activity, same placement / same activity, another placement
    result = run(snap, [("D1", "P1"), ("D2", "P1")], **flags)
    assert ids(result, 1) == (["O1"] if other_activity else ["O2"])
    result = run(snap, [("D1", "P1"), ("D1", "P2")], **flags)
    assert ids(result, 1) == (["O1"] if other_placement else ["O2"])


def test_dedup_is_checked_against_every_earlier_scope() -> None:
    snap = two_decisions(3)
    flags = {
        "allow_duplicates_across_activities": False,
        "allow_duplicates_across_placements": True,
    }
    # O1 was proposed by (D1, P1) and (D1, P2); (D2, P2) is blocked by the first only
    result = run(snap, [("D1", "P1"), ("D1", "P2"), ("D2", "P2")], **flags)
    assert [ids(result, i) for i in range(3)] == [["O1"], ["O1"], ["O2"]]
    traced = run(snap, [("D1", "P1"), ("D2", "P2")], trace=True)
    assert drops(traced, 1)["O1"] == [(0, "duplicate", "already proposed by an earlier scope")]


# -- fallback, collections, statuses ---------------------------------------------------------


def test_fallback_when_nothing_qualifies_with_its_entity_data() -> None:
    snap = simple(
        [offer("old", end="2020-01-01T00:00:00Z"), offer("draft", status="draft")],
        fallbacks=[fallback("F1")],
    )
    result = run(snap, trace=True)
    scope = result.scopes[0]
    assert scope.options == []
    assert scope.fallback is not None
    fb = scope.fallback
    assert (fb.id, fb.etag, fb.body["name"]) == ("F1", 2, "F1")
    assert fb.representation is not None
    assert fb.representation["placement"] == "P1"
    (event,) = events(result, "fallback")
    assert event["fallback"] == "F1"
    assert "no option qualified" in event["detail"]
    assert "no (known) fallback" not in event["detail"]
    assert (scope.activity.body["name"], scope.placement.body["name"]) == ("D1", "P1")


def test_a_placement_no_criterion_covers_falls_back_and_the_trace_says_why() -> None:
    snap = catalog(
        [offer("O1", placements=("P1", "P2"))],
        [decision("D1", [criterion("C1", placements=["P1"])])],
        collections=[collection("C1", ["O1"])],
    )
    result = run(snap, [("D1", "P2")], trace=True)
    assert result.scopes[0].options == []
    assert result.scopes[0].fallback is not None
    (event,) = events(result, "fallback")
    assert event["detail"] == "no criterion of the decision covers placement P2"
    # Covered, the same offer is proposed.
    assert ids(run(snap, [("D1", "P1")])) == ["O1"]


def test_no_fallback_is_traced_as_such() -> None:
    snap = catalog(
        [offer("old", end="2020-01-01T00:00:00Z")],
        [decision("D1", [criterion("C1")], fallback_id=None)],
        collections=[collection("C1", ["old"])],
    )
    result = run(snap, trace=True)
    assert result.scopes[0].fallback is None
    (event,) = events(result, "fallback")
    assert event["fallback"] is None
    assert "no (known) fallback" in event["detail"]


def test_collection_with_unknown_archived_draft_and_unrepresented_offers() -> None:
    norep = offer("norep")
    del norep["representations"]  # representations are optional in the API
    snap = catalog(
        [
            offer("archived", 9, status="archived"),
            offer("draft", 9, status="draft"),
            offer("nostatus", 9, status=None),
            offer("other", 9, placements=("P2",)),
            norep,
            offer("ok", 1),
        ],
        [decision("D1", [criterion("C1")])],
        collections=[
            collection(
                "C1", ["ghost", "archived", "draft", "nostatus", "other", "norep", "ok", "ok"]
            )
        ],
    )
    result = run(snap, [("D1", "P1", 5)], trace=True)
    assert ids(result) == ["ok"]
    assert drops(result) == {
        "ghost": [(0, "unknown_offer", "not in the catalog")],
        "archived": [(0, "status", "archived")],
        "draft": [(0, "status", "draft")],
        "nostatus": [(0, "status", "draft")],
        "other": [(0, "no_representation", "P1")],
        "norep": [(0, "no_representation", "P1")],
    }


def test_criterion_over_an_unknown_collection_has_no_candidates() -> None:
    snap = catalog(
        [offer("A", 5), offer("B", 1)],
        [decision("D1", [criterion("gone", priority=1), criterion("C2")])],
        collections=[collection("C2", ["B"])],
    )
    assert ids(run(snap, [("D1", "P1", 2)])) == ["B"]


def test_tag_collections() -> None:
    snap = catalog(
        [
            offer("O1", 3, tags=("t1",)),
            offer("O2", 2, tags=("t1", "t2")),
            offer("O3", 1, tags=("t2", "t3")),
            offer("O4", 0),
        ],
        [
            decision("Dany", [criterion("Cany")]),
            decision("Dall", [criterion("Call")]),
            decision("Dnone", [criterion("Cnone")]),
        ],
        collections=[
            collection("Cany", ["t3", "t1"], "any-tags"),
            collection("Call", ["t2", "t1"], "all-tags"),
            collection("Cnone", [], "all-tags"),
        ],
    )
    assert ids(run(snap, [("Dany", "P1", 4)])) == ["O1", "O2", "O3"]
    assert ids(run(snap, [("Dall", "P1", 4)])) == ["O2"]
    assert ids(run(snap, [("Dnone", "P1", 4)])) == []


# -- trace -----------------------------------------------------------------------------------


def test_trace_of_offer_level_eligibility() -> None:
    snap = simple(
        [
            offer("ruled", 3, constraint=eligible("R1")),
            offer("seg", 2, constraint=segments("allSegments", "s1")),
            offer("base", 0),
        ],
        rules=[rule("R1", 'tier = "gold"')],
    )
    result = run(snap, [("D1", "P1", 3)], trace=True)
    assert ids(result) == ["base"]
    assert drops(result) == {
        "ruled": [(0, "offer_eligibility", "rule R1 false")],
        "seg": [(0, "offer_eligibility", "allSegments [ups:s1] not satisfied")],
    }


def test_trace_of_a_skipped_criterion() -> None:
    snap = catalog(
        [offer("A", 2), offer("B", 1), offer("C", 0)],
        [
            decision(
                "D1",
                [criterion("C1", priority=1, constraint=eligible("R1")), criterion("C2")],
            )
        ],
        collections=[collection("C1", ["A", "B"]), collection("C2", ["C"])],
        rules=[rule("R1", 'tier = "gold"')],
    )
    result = run(snap, trace=True)
    assert ids(result) == ["C"]
    assert events(result, "criterion_skipped") == [
        {
            "scope": 0,
            "event": "criterion_skipped",
            "criterion": 0,
            "reason": "criterion_constraint",
            "detail": "rule R1 false",
        }
    ]
    assert drops(result) == {
        "A": [(0, "criterion_constraint", "rule R1 false")],
        "B": [(0, "criterion_constraint", "rule R1 false")],
    }


def test_trace_of_a_false_segment_criterion() -> None:
    snap = catalog(
        [offer("A", 2), offer("C", 0)],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=1, constraint=segments("anySegments", "s1", "s2")),
                    criterion("C2"),
                ],
            )
        ],
        collections=[collection("C1", ["A"]), collection("C2", ["C"])],
    )
    result = run(snap, trace=True)
    assert ids(result) == ["C"]
    (skipped,) = events(result, "criterion_skipped")
    assert skipped["detail"] == "anySegments [ups:s1, ups:s2] not satisfied"
    assert drops(result)["A"] == [(0, "criterion_constraint", skipped["detail"])]


def test_trace_of_offer_dependent_criterion_constraint_past_the_cut_off() -> None:
    """Offers past the itemCount cut-off are still traced with their real reason."""
    snap = catalog(
        [
            offer("top", 5, characteristics={"kind": "a"}),
            offer("A", 1, characteristics={"kind": "a"}),
            offer("B", 1, characteristics={"kind": "b"}),
            offer("low", 0, characteristics={"kind": "b"}),
        ],
        [decision("D1", [criterion("C1", constraint=eligible("R1"))])],
        collections=[collection("C1", ["top", "A", "B", "low"])],
        rules=[rule("R1", 'offer.characteristics.kind = "a"')],
    )
    for items, seeds in ((1, range(1)), (2, range(12))):
        for seed in seeds:
            result = run(snap, [("D1", "P1", items)], seed=seed, trace=True)
            assert ids(result) == ["top", "A"][:items]
            reasons = {o: [r for _, r, _ in d] for o, d in drops(result).items()}
            assert reasons["B"] == ["criterion_constraint"]
            assert reasons["low"] == ["criterion_constraint"]
            assert drops(result)["B"][0][2] == "rule R1 false"


def test_trace_accounts_for_every_candidate_exactly_once() -> None:
    snap = simple([offer(f"T{i}", 5) for i in range(4)] + [offer("low", 1)])
    for seed in range(10):
        result = run(snap, seed=seed, trace=True)
        (chosen,) = ids(result)
        ranked = events(result, "ranked")
        assert [(e["offer"], e["position"], e["selected"]) for e in ranked] == [(chosen, 1, True)]
        assert ranked[0]["priority"] == 5
        assert ranked[0]["score"] is None
        dropped = events(result, "dropped")
        assert sorted(e["offer"] for e in dropped) == sorted(
            {f"T{i}" for i in range(4)} - {chosen} | {"low"}
        )
        assert {e["reason"] for e in dropped} == {"not_needed"}
        assert {e["detail"] for e in dropped} == {"eligible, below the itemCount cut-off"}


def test_ranked_event_has_score_and_priority() -> None:
    snap = catalog(
        [offer("A", 4), offer("B", 2)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[formula("F", "offer.rank.priority * 3")],
    )
    result = run(snap, [("D1", "P1", 1)], trace=True)
    assert [
        (e["offer"], e["position"], e["score"], e["priority"], e["selected"])
        for e in events(result, "ranked")
    ] == [("A", 1, 12, 4, True), ("B", 2, 6, 2, False)]


def test_dropped_events_name_their_criterion() -> None:
    snap = catalog(
        [offer("A", 2), offer("old", 1, end="2020-01-01T00:00:00Z"), offer("B", 1)],
        [decision("D1", [criterion("C1", priority=1), criterion("C2")])],
        collections=[collection("C1", ["A"]), collection("C2", ["old", "B"])],
    )
    result = run(snap, [("D1", "P1", 2)], trace=True)
    assert ids(result) == ["A", "B"]
    assert drops(result) == {"old": [(1, "dates", "outside selectionConstraint startDate/endDate")]}
