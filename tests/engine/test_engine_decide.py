"""decide(): the algorithm of docs/decisioning.md, step by step."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from engine_helpers import (
    NOW,
    catalog,
    collection,
    criterion,
    decision,
    events,
    fallback,
    formula,
    ids,
    member,
    offer,
    placement,
    rule,
    run,
    segments,
    simple,
    spy,
    two_decisions,
)

from offerbase.engine import DecisionError, DecisionRequest, ScopeRequest, decide

# -- step 1: resolve decision and scope -------------------------------------------------------


def test_unknown_activity_and_placement_are_404() -> None:
    snap = simple([offer("O1")])
    with pytest.raises(DecisionError) as err:
        run(snap, [("nope", "P1")])
    assert err.value.status == 404
    assert err.value.pointer == "/xdm:propositionRequests/0/xdm:activityId"
    with pytest.raises(DecisionError) as err:
        run(snap, [("D1", "P1"), ("D1", "nope")])
    assert err.value.status == 404
    assert err.value.pointer == "/xdm:propositionRequests/1/xdm:placementId"


@pytest.mark.parametrize("status", ["draft", "complete", "archived", None])
def test_only_live_decisions(status: str | None) -> None:
    snap = catalog(
        [offer("O1")],
        [decision("D1", [criterion("C1")], status=status)],
        collections=[collection("C1", ["O1"])],
    )
    with pytest.raises(DecisionError) as err:
        run(snap)
    assert err.value.status == 422


def test_decision_dates() -> None:
    snap = catalog(
        [offer("O1")],
        [
            decision(
                "D1", [criterion("C1")], start="2026-11-24T00:00:00Z", end="2026-11-25T00:00:00Z"
            )
        ],
        collections=[collection("C1", ["O1"])],
    )
    assert ids(run(snap, now=NOW)) == ["O1"]
    for when in (NOW - timedelta(days=1), NOW + timedelta(days=1)):
        with pytest.raises(DecisionError) as err:
            run(snap, now=when)
        assert err.value.status == 422


def test_a_strategy_the_snapshot_does_not_know_ranks_at_random() -> None:
    snap = catalog(
        [offer("O1"), offer("O2", 5)],
        [decision("D1", [criterion("C1", order_type="rankingStrategy")])],
        collections=[collection("C1", ["O1", "O2"])],
    )
    result = run(snap, trace=True)
    assert len(ids(result)) == 1
    assert result.scopes[0].ranking is None
    assert [e["strategy"] for e in events(result, "strategy_missing")] == ["ai1"]
    chosen = {ids(run(snap, seed=s))[0] for s in range(40)}
    assert chosen == {"O1", "O2"}  # priority is not what ranks it


def test_item_count_limits_and_defaults() -> None:
    offers = [offer(f"O{i}", i) for i in range(40)]
    snap = catalog(
        offers,
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in offers])],
        placements=[placement("P1"), placement("P2", item_count=3)],
    )
    for o in offers:
        o["representations"].append({**o["representations"][0], "placement": "P2"})
    snap = catalog(
        offers,
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in offers])],
        placements=[placement("P1"), placement("P2", item_count=3)],
    )
    assert len(ids(run(snap, [("D1", "P1")]))) == 1  # default 1
    assert len(ids(run(snap, [("D1", "P2")]))) == 3  # placement's itemCount
    assert len(ids(run(snap, [("D1", "P2", 5)]))) == 5  # request wins
    assert len(ids(run(snap, [("D1", "P1", 30)]))) == 30
    for bad in (31, 0):
        with pytest.raises(DecisionError) as err:
            run(snap, [("D1", "P1", bad)])
        assert err.value.status == 422
        assert err.value.pointer == "/xdm:propositionRequests/0/xdm:itemCount"
    with pytest.raises(DecisionError):
        run(snap, [("D1", "P1")] * 31)


def test_criteria_filtered_by_placement() -> None:
    snap = catalog(
        [offer("O1", placements=("P1", "P2")), offer("O2", placements=("P1", "P2"))],
        [
            decision(
                "D1",
                [
                    criterion("C1", placements=["P2"], priority=5),
                    criterion("C2", placements=[], priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["O1"]), collection("C2", ["O2"])],
    )
    assert ids(run(snap, [("D1", "P1")])) == ["O2"]  # C1 does not list P1
    assert ids(run(snap, [("D1", "P2")])) == ["O1"]  # C1 has the higher priority


def test_direct_option_list() -> None:
    snap = catalog(
        [offer("O1", 1), offer("O2", 2)],
        [decision("D1", [criterion(options=["O1"])])],
    )
    assert ids(run(snap)) == ["O1"]


# -- step 2: status, representation, dates ----------------------------------------------------


def test_status_and_representation_filters() -> None:
    snap = simple(
        [
            offer("draft", 9, status="draft"),
            offer("nostatus", 9, status=None),
            offer("archived", 9, status="archived"),
            offer("other", 9, placements=("P2",)),
            offer("ok", 1),
        ]
    )
    assert ids(run(snap, [("D1", "P1", 5)])) == ["ok"]


def test_offer_date_window_with_injected_now() -> None:
    snap = simple(
        [
            offer("O1", 5, start="2026-11-24T12:00:00.000+00:00", end="2026-11-24T13:00:00Z"),
            offer("O2", 1),
        ]
    )
    assert ids(run(snap, now=NOW)) == ["O1"]  # start is inclusive
    assert ids(run(snap, now=NOW - timedelta(seconds=1))) == ["O2"]
    assert ids(run(snap, now=NOW + timedelta(hours=1))) == ["O1"]  # end is inclusive
    assert ids(run(snap, now=NOW + timedelta(hours=1, seconds=1))) == ["O2"]
    naive = NOW.replace(tzinfo=None)  # naive times are UTC
    assert ids(run(snap, now=naive)) == ["O1"]


# -- step 3: eligibility ----------------------------------------------------------------------


def test_segments_any_and_all() -> None:
    snap = simple(
        [
            offer(
                "any",
                3,
                constraint=segments("anySegments", "s1", "s2"),
            ),
            offer(
                "all",
                5,
                constraint=segments("allSegments", "s1", "s2"),
            ),
            offer("base", 1),
        ]
    )

    assert ids(run(snap, profile={})) == ["base"]
    assert ids(run(snap, profile=member(s2="existing"))) == ["any"]
    assert ids(run(snap, profile=member(s1="realized", s2="existing"))) == ["all"]
    assert ids(run(snap, profile=member(s1="realized", s2="exited"))) == ["any"]
    assert ids(run(snap, profile=member(s1="exited", s2="exited"))) == ["base"]


def test_offer_eligibility_rule_and_context() -> None:
    ctx_type = "_xdm.context.additionalParameters;version=1"
    snap = simple(
        [
            offer(
                "gold",
                5,
                constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R1"},
            ),
            offer(
                "mobile",
                3,
                constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R2"},
            ),
            offer("base", 1),
        ],
        rules=[
            rule("R1", 'tier = "gold"'),
            rule("R2", f'@{{{ctx_type}}}.channel = "mobile"'),
        ],
    )
    assert ids(run(snap, profile={"tier": "gold"})) == ["gold"]
    assert ids(run(snap, profile={"tier": "silver"})) == ["base"]
    assert ids(run(snap, context={ctx_type: {"channel": "mobile"}})) == ["mobile"]


def test_rules_evaluated_once_per_request() -> None:
    offers = [
        offer(
            f"O{i}",
            0,
            constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R1"},
        )
        for i in range(20)
    ] + [
        offer(
            f"X{i}",
            0,
            constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R2"},
        )
        for i in range(5)
    ]
    snap = simple(
        offers,
        rules=[
            rule("R1", "x = 1"),  # offer-independent: once per request
            rule("R2", 'offer._id.startsWith("X") and false'),  # per (rule, offer)
        ],
    )
    r1, r2 = spy(snap, "R1"), spy(snap, "R2")
    result = run(
        snap,
        [("D1", "P1", 30), ("D1", "P1", 30)],
        profile={"x": 2},
        allow_duplicates_across_activities=True,
        allow_duplicates_across_placements=True,
    )
    assert result.scopes[0].fallback is not None
    assert (r1.calls, r2.calls) == (1, 5)


def test_criterion_constraint_removes_whole_criterion_when_offer_independent() -> None:
    snap = catalog(
        [offer("O1", 9), offer("O2", 1)],
        [
            decision(
                "D1",
                [
                    criterion(
                        "C1",
                        priority=2,
                        constraint={
                            "profileConstraintType": "eligibilityRule",
                            "eligibilityRule": "R1",
                        },
                    ),
                    criterion("C2", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["O1"]), collection("C2", ["O2"])],
        rules=[rule("R1", "vip = true")],
    )
    assert ids(run(snap, profile={"vip": True})) == ["O1"]
    result = run(snap, profile={}, trace=True)
    assert ids(result) == ["O2"]
    assert any(
        e["event"] == "criterion_skipped" and e["criterion"] == 0 for e in result.trace or []
    )


def test_criterion_constraint_per_offer_when_rule_reads_offer() -> None:
    snap = catalog(
        [
            offer("O1", 9, characteristics={"kind": "a"}),
            offer("O2", 1, characteristics={"kind": "b"}),
        ],
        [
            decision(
                "D1",
                [
                    criterion(
                        "C1",
                        constraint={
                            "profileConstraintType": "eligibilityRule",
                            "eligibilityRule": "R1",
                        },
                    )
                ],
            )
        ],
        collections=[collection("C1", ["O1", "O2"])],
        rules=[rule("R1", "offer.characteristics.kind = profile.want")],
    )
    assert ids(run(snap, profile={"want": "b"})) == ["O2"]
    assert ids(run(snap, profile={"want": "a"})) == ["O1"]


def test_rules_constraint_type_uses_its_combined_rule() -> None:
    # XDM's `rules` type has one rule field, eligibilityRule: the combined rule
    snap = simple(
        [
            offer(
                "O1",
                5,
                constraint={"profileConstraintType": "rules", "eligibilityRule": "R1"},
            ),
            offer("O2", 1),
        ],
        rules=[rule("R1", "a = 1 and b = 1")],
    )
    assert ids(run(snap, profile={"a": 1, "b": 1})) == ["O1"]
    assert ids(run(snap, profile={"a": 1})) == ["O2"]


def test_failing_rule_excludes_and_is_traced() -> None:
    snap = simple(
        [
            offer(
                "O1",
                5,
                constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R1"},
            ),
            offer("O2", 1),
        ],
        rules=[rule("R1", "a = 1")],
    )
    spy(snap, "R1", raising=True)
    result = run(snap, trace=True)
    assert ids(result) == ["O2"]
    assert any(e["event"] == "rule_error" and e["rule"] == "R1" for e in result.trace or [])


# -- step 5: ranking --------------------------------------------------------------------------


def test_priority_order_higher_first_and_default_zero() -> None:
    snap = simple([offer("low", None), offer("high", 7), offer("mid", 3)])
    assert ids(run(snap, [("D1", "P1", 3)])) == ["high", "mid", "low"]
    assert all(o.score is None for o in run(snap).scopes[0].options)


def test_priority_ties_uniform_and_deterministic() -> None:
    snap = simple([offer(f"T{i}", 5) for i in range(4)] + [offer("below", 1)])
    first = Counter(ids(run(snap, seed=s))[0] for s in range(4000))
    assert set(first) == {"T0", "T1", "T2", "T3"}
    for count in first.values():
        assert 800 < count < 1200  # ~1000 each; a 6-sigma band
    assert [ids(run(snap, seed=42)) for _ in range(5)] == [ids(run(snap, seed=42))] * 5
    # the whole tie tier is returned in random order when itemCount covers it
    assert sorted(ids(run(snap, [("D1", "P1", 5)]))[:4]) == ["T0", "T1", "T2", "T3"]
    assert ids(run(snap, [("D1", "P1", 5)]))[4] == "below"


def test_tie_breaks_only_among_eligible() -> None:
    snap = simple(
        [offer(f"T{i}", 5, status="draft" if i else "approved") for i in range(4)]
        + [offer("E", 5, end="2000-01-01T00:00:00Z")]
    )
    assert {ids(run(snap, seed=s))[0] for s in range(50)} == {"T0"}


def test_formula_scores_and_null_last() -> None:
    snap = catalog(
        [
            offer("O1", 1, characteristics={"s": "10"}),
            offer("O2", 2, characteristics={"s": "30"}),
            offer("O3", 3, characteristics={}),
            offer("O4", 4, characteristics={"s": "20"}),
        ],
        [decision("D1", [criterion("C1", formula="F1")])],
        collections=[collection("C1", ["O1", "O2", "O3", "O4"])],
        # O3 has no `s`: its score is null, and it ranks last
        formulas=[
            formula(
                "F1",
                'if(offer.characteristics.s = "10", 10, if(offer.characteristics.s = "30", 30,'
                ' if(offer.characteristics.s = "20", 20, offer.characteristics.s)))',
            )
        ],
    )
    result = run(snap, [("D1", "P1", 4)])
    assert ids(result) == ["O2", "O4", "O1", "O3"]
    assert [o.score for o in result.scopes[0].options] == [30.0, 20.0, 10.0, None]


def test_formula_sees_priority_default_and_params() -> None:
    ctx = "_xdm.context.foo;version=0"
    snap = catalog(
        [offer("O1", None, tags=("t1",)), offer("O2", 2)],
        [decision("D1", [criterion("C1", formula="F1")])],
        collections=[collection("C1", ["O1", "O2"])],
        formulas=[
            formula(
                "F1",
                "offer.rank.priority + if(offer.tags.intersects(boosted), 100, 0)",
                definedOn={"boosted": {"schema": {"altId": "_xdm.context.foo", "version": "0"}}},
            )
        ],
    )
    assert [(o.id, o.score) for o in run(snap).scopes[0].options] == [("O2", 2.0)]
    boosted = run(snap, context={ctx: ["t1"]}).scopes[0].options
    assert [(o.id, o.score) for o in boosted] == [("O1", 100.0)]


def test_sequential_groups_fill_remaining_slots_static() -> None:
    snap = catalog(
        [offer("A", 1), offer("B", 100), offer("C", 50)],
        [decision("D1", [criterion("C1", priority=10), criterion("C2", priority=0)])],
        collections=[collection("C1", ["A"]), collection("C2", ["B", "C", "A"])],
    )
    # later groups are appended after earlier ones regardless of priority
    assert ids(run(snap, [("D1", "P1", 3)])) == ["A", "B", "C"]


def test_static_group_of_two_criteria_ranked_together() -> None:
    snap = catalog(
        [offer("A", 1), offer("B", 100), offer("C", 50)],
        [decision("D1", [criterion("C1", priority=3), criterion("C2", priority=3)])],
        collections=[collection("C1", ["A", "C"]), collection("C2", ["B", "C"])],
    )
    assert ids(run(snap, [("D1", "P1", 3)])) == ["B", "C", "A"]


# -- step 7: itemCount, de-duplication, fallback ----------------------------------------------


def test_worked_example_section_3_7() -> None:
    snap = two_decisions(4)
    result = run(snap, [("D1", "P1", 2), ("D2", "P2", 2)])
    assert ids(result, 0) == ["O1", "O2"]
    assert ids(result, 1) == ["O3", "O4"]
    # duplicates allowed: each scope ranked independently
    result = run(
        snap,
        [("D1", "P1", 2), ("D2", "P2", 2)],
        allow_duplicates_across_activities=True,
        allow_duplicates_across_placements=True,
    )
    assert ids(result, 0) == ["O1", "O2"]
    assert ids(result, 1) == ["O1", "O2"]


def test_worked_example_section_3_7_capped_variant_falls_back() -> None:
    offers = [
        offer(
            f"O{i}",
            10 - i,
            placements=("P1", "P2"),
            caps=[{"limit": 1, "scope": "global", "entity": "offer"}] if i in (1, 3) else None,
        )
        for i in range(1, 5)
    ]
    snap = catalog(
        offers,
        [decision("D1", [criterion("C1")]), decision("D2", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in offers])],
    )
    counters = {"cap|O1|fc0|global|-|offer|-|all": 1, "cap|O3|fc0|global|-|offer|-|all": 1}
    result = run(snap, [("D1", "P1", 2), ("D2", "P2", 2)], counters=counters)
    assert ids(result, 0) == ["O2", "O4"]
    assert ids(result, 1) == []
    assert result.scopes[1].fallback is not None
    assert result.scopes[1].fallback.id == "F1"
    assert result.scopes[1].fallback.representation is not None
    assert result.scopes[1].fallback.representation["placement"] == "P2"


def test_dedup_flag_precedence() -> None:
    both = [("D1", "P1", 2), ("D2", "P2", 2)]
    # default placements (allowDuplicatePlacements absent = false) -> no duplicates
    assert ids(run(two_decisions(4), both), 1) == ["O3", "O4"]
    # every placement allows -> duplicates
    assert ids(run(two_decisions(4, True, True), both), 1) == ["O1", "O2"]
    # one placement forbids -> the whole request forbids
    assert ids(run(two_decisions(4, True, False), both), 1) == ["O3", "O4"]
    # the request wins over the placements, per dimension
    snap = two_decisions(4, False, False)
    allow = {"allow_duplicates_across_activities": True, "allow_duplicates_across_placements": True}
    assert ids(run(snap, both, **allow), 1) == ["O1", "O2"]
    deny = {
        "allow_duplicates_across_activities": False,
        "allow_duplicates_across_placements": False,
    }
    assert ids(run(two_decisions(4, True, True), both, **deny), 1) == ["O3", "O4"]


def test_dedup_dimensions() -> None:
    snap = two_decisions(4)
    same_activity = [("D1", "P1", 2), ("D1", "P2", 2)]
    same_placement = [("D1", "P1", 2), ("D2", "P1", 2)]
    only_acts = {
        "allow_duplicates_across_activities": False,
        "allow_duplicates_across_placements": True,
    }
    # acrossActivities=false does not constrain the same activity in another placement
    assert ids(run(snap, same_activity, **only_acts), 1) == ["O1", "O2"]
    # ... but does constrain another activity
    assert ids(run(snap, same_placement, **only_acts), 1) == ["O3", "O4"]
    only_pls = {
        "allow_duplicates_across_activities": True,
        "allow_duplicates_across_placements": False,
    }
    assert ids(run(snap, same_placement, **only_pls), 1) == ["O1", "O2"]
    assert ids(run(snap, same_activity, **only_pls), 1) == ["O3", "O4"]


def test_no_fallback_gives_empty_options_and_none() -> None:
    snap = catalog(
        [offer("O1", status="draft")],
        [decision("D1", [criterion("C1")], fallback_id=None)],
        collections=[collection("C1", ["O1"])],
    )
    result = run(snap)
    assert result.scopes[0].options == []
    assert result.scopes[0].fallback is None


def test_result_shape() -> None:
    snap = simple([offer("O1", 1)])
    scope = run(snap).scopes[0]
    assert (scope.activity.id, scope.activity.etag) == ("D1", 4)
    assert (scope.placement.id, scope.placement.etag) == ("P1", 1)
    opt = scope.options[0]
    assert (opt.id, opt.etag, opt.body["name"]) == ("O1", 1, "O1")
    assert opt.representation["placement"] == "P1"
    assert scope.fallback is None


def test_scopes_in_request_order() -> None:
    snap = two_decisions(4)
    result = run(snap, [("D2", "P2"), ("D1", "P1")])
    assert [(s.activity.id, s.placement.id) for s in result.scopes] == [("D2", "P2"), ("D1", "P1")]
    assert ids(result, 0) == ["O1"]
    assert ids(result, 1) == ["O2"]


def test_decide_does_not_mutate_inputs() -> None:
    snap = simple([offer("O1", 1)])
    profile = {"a": 1}
    counters: dict[str, int] = {}
    decide(
        snap,
        DecisionRequest([ScopeRequest("D1", "P1")]),
        profile,
        counters,
        now=NOW,
        rng=random.Random(0),
    )
    assert profile == {"a": 1}
    assert counters == {}


def test_fallback_builder_unused_warning() -> None:
    assert fallback("F9")["id"] == "F9"
