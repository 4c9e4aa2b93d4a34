"""Eligibility and scoring with the real PQL compiler: the per-request rule memo (observed with
a counting spy around the snapshot's compiled rules), the injected clock, definedOn parameters
bound from the request context, audiences, rule types and run-time failures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from engine_helpers import (
    catalog,
    collection,
    criterion,
    decision,
    eligible,
    events,
    formula,
    ids,
    member,
    offer,
    rule,
    run,
    scores,
    segments,
    simple,
    spy,
)

ALLOW = {"allow_duplicates_across_activities": True, "allow_duplicates_across_placements": True}
Y2001 = datetime(2001, 6, 1, tzinfo=UTC)
Y2031 = datetime(2031, 6, 1, tzinfo=UTC)


# -- the rule memo -----------------------------------------------------------------------------


def _tiered(oid: str, tier: str, priority: int = 1, **kw: Any) -> dict[str, Any]:
    return offer(oid, priority, characteristics={"tier": tier}, **kw)


RULES = [
    rule("Roffer", "offer.characteristics.tier = tier"),  # reads the offer: once per offer
    rule("Rprof", 'tier = "gold"'),  # does not: once per request
]


def test_memo_in_a_formula_ranked_criterion_with_mixed_eligibility() -> None:
    snap = catalog(
        [
            _tiered("A", "gold", constraint=eligible("Roffer")),
            _tiered("B", "silver", constraint=eligible("Roffer")),
            _tiered("C", "x", constraint=eligible("Rprof")),
            _tiered("D", "x", constraint=eligible("Rprof")),
            _tiered("E", "gold", constraint=eligible("Roffer"), end="2020-01-01T00:00:00Z"),
            _tiered("F", "x", 0),
        ],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B", "C", "D", "E", "F"])],
        rules=RULES,
        formulas=[formula("F", 'if(offer._id = "D", 50, if(offer._id = "A", 40, 10))')],
    )
    per_offer, once = spy(snap, "Roffer"), spy(snap, "Rprof")
    result = run(snap, [("D1", "P1", 6)], profile={"tier": "gold"})
    assert ids(result)[:2] == ["D", "A"]
    assert sorted(ids(result)[2:]) == ["C", "F"]
    assert sorted(per_offer.offers) == ["A", "B"]  # E is out on its dates, before any rule
    assert once.offers == [None]  # evaluated without an offer, once
    result = run(snap, [("D1", "P1", 6)], profile={"tier": "silver"})
    assert sorted(ids(result)) == ["B", "F"]
    assert (per_offer.calls, once.calls) == (4, 2)  # the memo is per request


def test_memo_in_a_multi_criteria_group() -> None:
    snap = catalog(
        [
            _tiered("A", "gold", 3, constraint=eligible("Roffer")),
            _tiered("B", "silver", 2, constraint=eligible("Roffer")),
            _tiered("C", "gold", 1, constraint=eligible("Rprof")),
            _tiered("D", "gold", 0),
        ],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=1),
                    criterion("C2", priority=1, constraint=eligible("Rkind")),
                ],
            )
        ],
        collections=[collection("C1", ["A", "B", "C"]), collection("C2", ["B", "C", "D", "A"])],
        rules=[*RULES, rule("Rkind", 'offer.characteristics.tier != "silver"')],
    )
    per_offer, once, crit = spy(snap, "Roffer"), spy(snap, "Rprof"), spy(snap, "Rkind")
    result = run(snap, [("D1", "P1", 4)], profile={"tier": "gold"})
    assert ids(result) == ["A", "C", "D"]
    assert sorted(per_offer.offers) == ["A", "B"]  # A and B are in both criteria: once each
    assert once.calls == 1
    assert sorted(crit.offers) == ["A", "C", "D"]  # per offer; B failed its own rule first
    result = run(snap, [("D1", "P1", 4)], profile={"tier": "silver"})
    assert ids(result) == ["B", "D"]  # B passes Roffer but C2 rejects it; C1 still has it


def test_memo_spans_the_scopes_of_one_request() -> None:
    snap = simple(
        [
            _tiered("A", "gold", 2, constraint=eligible("Roffer"), placements=("P1", "P2")),
            _tiered("B", "gold", 1, constraint=eligible("Rprof"), placements=("P1", "P2")),
        ],
        rules=RULES,
    )
    per_offer, once = spy(snap, "Roffer"), spy(snap, "Rprof")
    result = run(snap, [("D1", "P1", 2), ("D1", "P2", 2)], profile={"tier": "gold"}, **ALLOW)
    assert [ids(result, 0), ids(result, 1)] == [["A", "B"], ["A", "B"]]
    assert (per_offer.offers, once.offers) == (["A"], [None])


def test_offer_independent_rule_answers_every_offer() -> None:
    snap = simple(
        [offer(f"O{i}", i, constraint=eligible("Rprof")) for i in range(3)] + [offer("base", 0)],
        rules=RULES,
    )
    once = spy(snap, "Rprof")
    assert ids(run(snap, [("D1", "P1", 4)], profile={"tier": "gold"})) == ["O2", "O1", "O0", "base"]
    assert ids(run(snap, [("D1", "P1", 4)], profile={"tier": "silver"})) == ["base"]
    assert once.calls == 2


def test_offer_is_read_only_through_the_offer_root() -> None:
    """`offerCount` is a profile field: the rule does not read the offer (compile-time test)."""
    snap = simple(
        [offer(f"O{i}", i, constraint=eligible("R")) for i in range(3)],
        rules=[rule("R", "person.offerCount > 2")],
    )
    r = spy(snap, "R")
    assert ids(run(snap, [("D1", "P1", 3)], profile={"person": {"offerCount": 3}})) == [
        "O2",
        "O1",
        "O0",
    ]
    assert r.offers == [None]


def test_fast_path_evaluates_only_the_offers_it_needs() -> None:
    snap = simple(
        [_tiered(f"T{i}", "gold", 5, constraint=eligible("Roffer")) for i in range(5)],
        rules=RULES,
    )
    r = spy(snap, "Roffer")
    assert len(ids(run(snap, profile={"tier": "gold"}))) == 1
    assert r.calls == 1
    assert len(ids(run(snap, [("D1", "P1", 2)], profile={"tier": "gold"}))) == 2
    assert r.calls == 3
    # a traced decision also explains the offers past the cut-off
    run(snap, profile={"tier": "gold"}, trace=True)
    assert r.calls == 8


def test_offer_level_rule_reading_the_offer_is_per_offer() -> None:
    snap = simple(
        [
            _tiered("gold", "gold", 3, constraint=eligible("Roffer")),
            _tiered("silver", "silver", 2, constraint=eligible("Roffer")),
            _tiered("base", "x", 0),
        ],
        rules=RULES,
    )
    assert ids(run(snap, [("D1", "P1", 3)], profile={"tier": "silver"})) == ["silver", "base"]
    assert ids(run(snap, [("D1", "P1", 3)], profile={"tier": "gold"})) == ["gold", "base"]


def test_rules_type_uses_its_eligibility_rule() -> None:
    snap = simple(
        [offer("O1", 5, constraint=eligible("Rprof", kind="rules")), offer("O2", 1)],
        rules=RULES,
    )
    assert ids(run(snap, profile={"tier": "gold"})) == ["O1"]
    assert ids(run(snap, profile={"tier": "silver"})) == ["O2"]


def test_formula_is_memoised_per_request_and_gives_every_scope_the_same_score() -> None:
    snap = catalog(
        [offer("A", 2, placements=("P1", "P2")), offer("B", 1, placements=("P1", "P2"))],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[formula("F", "offer.rank.priority * 10 + score")],
    )
    f = spy(snap, "F")
    result = run(snap, [("D1", "P1", 2), ("D1", "P2", 2)], profile={"score": 1}, **ALLOW)
    assert scores(result, 0) == scores(result, 1) == [("A", 21), ("B", 11)]
    assert sorted(f.offers) == ["A", "B"]


def test_unknown_rule_excludes() -> None:
    """A dangling rule id (the store forbids it, the engine must still be safe) is false."""
    snap = catalog(
        [offer("ruled", 5, constraint=eligible("gone")), offer("A", 1), offer("B", 0)],
        [
            decision(
                "D1", [criterion("C1", priority=1, constraint=eligible("gone")), criterion("C2")]
            )
        ],
        collections=[collection("C1", ["A"]), collection("C2", ["ruled", "B"])],
    )
    assert ids(run(snap, [("D1", "P1", 3)])) == ["B"]


def test_rule_reads_the_request_context() -> None:
    ctx = "_xdm.context.additionalParameters;version=1"
    snap = simple(
        [offer("mobile", 5, constraint=eligible("R")), offer("base", 0)],
        rules=[rule("R", f'@{{{ctx}}}.channel = "mobile"')],
    )
    assert ids(run(snap, context={ctx: {"channel": "mobile"}})) == ["mobile"]
    assert ids(run(snap, context={ctx: {"channel": "web"}})) == ["base"]
    assert ids(run(snap)) == ["base"]


# -- the injected clock ------------------------------------------------------------------------


def test_clock_reaches_rules() -> None:
    snap = catalog(
        [offer("old", 5, constraint=eligible("Rold")), offer("base", 0)],
        [
            decision("D1", [criterion("C1")]),
            decision("D2", [criterion("C1", constraint=eligible("Rold")), criterion("C2")]),
        ],
        collections=[collection("C1", ["old", "base"]), collection("C2", ["base"])],
        rules=[rule("Rold", "currentYear() < 2010")],
    )
    assert ids(run(snap, now=Y2001)) == ["old"]
    assert ids(run(snap, now=Y2031)) == ["base"]
    assert ids(run(snap, [("D2", "P1")], now=Y2001)) == ["old"]
    result = run(snap, [("D2", "P1")], now=Y2031, trace=True)
    assert ids(result) == ["base"]
    assert events(result, "criterion_skipped")[0]["criterion"] == 0


def test_clock_reaches_time_comparisons_on_profile_data() -> None:
    snap = simple(
        [offer("member", 5, constraint=eligible("R")), offer("base", 0)],
        rules=[rule("R", "membership.end occurs after now")],
    )
    profile = {"membership": {"end": "2026-11-24T12:00:00Z"}}
    assert ids(run(snap, profile=profile, now=datetime(2026, 11, 24, 11, tzinfo=UTC))) == ["member"]
    assert ids(run(snap, profile=profile, now=datetime(2026, 11, 24, 13, tzinfo=UTC))) == ["base"]


def test_clock_reaches_formulas() -> None:
    snap = catalog(
        [offer("A", 1)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A"])],
        formulas=[formula("F", "currentYear() - 2000")],
    )
    assert scores(run(snap, now=Y2001)) == [("A", 1)]
    assert scores(run(snap, now=Y2031)) == [("A", 31)]


# -- definedOn parameters from the request context -------------------------------------------

WEATHER = "_xdm.context.weather"


@pytest.mark.parametrize(
    ("schema", "context", "bound"),
    [
        ({"altId": WEATHER, "version": "1"}, {f"{WEATHER};version=1": {"temp": 30}}, True),
        ({"altId": WEATHER, "version": 1}, {f"{WEATHER};version=1": {"temp": 30}}, True),
        # no version in definedOn: the context type matches whatever its version
        ({"altId": WEATHER}, {f"{WEATHER};version=1": {"temp": 30}}, True),
        # a context type sent without a version matches the versioned definedOn
        ({"altId": WEATHER, "version": "1"}, {WEATHER: {"temp": 30}}, True),
        # the exact type wins over another version listed before it
        (
            {"altId": WEATHER, "version": "1"},
            {f"{WEATHER};version=2": {"temp": 10}, f"{WEATHER};version=1": {"temp": 30}},
            True,
        ),
        (
            {"altId": WEATHER, "version": "2"},
            {f"{WEATHER};version=2": {"temp": 10}, f"{WEATHER};version=1": {"temp": 30}},
            False,
        ),
        # ... also without a version on either side
        ({"altId": WEATHER}, {f"{WEATHER};version=2": {"temp": 10}, WEATHER: {"temp": 30}}, True),
        # a context type with a further parameter still matches by its type
        ({"altId": WEATHER, "version": "1"}, {f"{WEATHER};version=3;x=y": {"temp": 30}}, True),
        ({"ref": WEATHER, "version": "1"}, {f"{WEATHER};version=1": {"temp": 30}}, True),
        ({"altId": WEATHER, "version": "1"}, {}, False),
        ({"altId": WEATHER, "version": "1"}, {"_xdm.context.other;version=1": {"temp": 30}}, False),
        ({"altId": WEATHER, "version": "1"}, {f"{WEATHER}.x;version=1": {"temp": 30}}, False),
    ],
)
def test_defined_on_parameter_of_a_rule(
    schema: dict[str, Any], context: dict[str, Any], bound: bool
) -> None:
    defined_on = {
        "profile": {"referencePaths": []},
        "note": {"description": "not a parameter"},
        "nameless": {"schema": {"version": "1"}},
        "weather": {"schema": schema},
    }
    body = {**rule("R", "weather.temp > 20"), "definedOn": defined_on}
    snap = simple([offer("hot", 5, constraint=eligible("R")), offer("base", 0)], rules=[body])
    assert ids(run(snap, context=context)) == (["hot"] if bound else ["base"])


def test_defined_on_profile_offer_and_xevent_are_not_parameters() -> None:
    events_type = "_xdm.context.experienceevent"
    body = {
        **rule("R", 'tier = "gold" and xEvent.type.isNull()'),
        "definedOn": {
            "profile": {"schema": {"ref": "_xdm.context.profile", "version": "1"}},
            "offer": {"schema": {"altId": "_experience.offer-management.personalized-offer"}},
            "xEvent": {"schema": {"altId": events_type, "version": "1"}},
        },
    }
    snap = simple([offer("gold", 5, constraint=eligible("R")), offer("base", 0)], rules=[body])
    context = {
        "_xdm.context.profile;version=1": {"tier": "silver"},
        "_experience.offer-management.personalized-offer": {"tier": "silver"},
        f"{events_type};version=1": [{"type": "click"}],
    }
    assert ids(run(snap, profile={"tier": "gold"}, context=context)) == ["gold"]


def test_parameter_attributes_do_not_count_as_profile_attributes() -> None:
    """26 attributes of a definedOn parameter: fine (the limit is 25 *profile* attributes)."""
    source = " + ".join(f"w.a{i}" for i in range(26))
    snap = catalog(
        [offer("A", 1)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A"])],
        formulas=[formula("F", source, definedOn={"w": {"schema": {"altId": "_xdm.context.w"}}})],
    )
    context = {"_xdm.context.w;version=1": {f"a{i}": 1 for i in range(26)}}
    assert scores(run(snap, context=context)) == [("A", 26)]


def test_defined_on_parameter_of_a_formula() -> None:
    snap = catalog(
        [offer("A", 1, tags=("t1",)), offer("B", 2)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[
            formula(
                "F",
                "offer.rank.priority + if(offer.tags.intersects(promo.tags), promo.boost, 0)",
                definedOn={"promo": {"schema": {"altId": "_xdm.context.promo"}}},
            )
        ],
    )
    promo = {"_xdm.context.promo;version=3": {"tags": ["t1"], "boost": 10}}
    assert scores(run(snap, [("D1", "P1", 2)], context=promo)) == [("A", 11), ("B", 2)]
    assert scores(run(snap, [("D1", "P1", 2)])) == [("B", 2), ("A", 1)]


def test_formula_reads_the_request_context() -> None:
    ctx = "_xdm.context.additionalParameters;version=1"
    snap = catalog(
        [offer("A", 1)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A"])],
        formulas=[formula("F", f"@{{{ctx}}}.boost * 2")],
    )
    assert scores(run(snap, context={ctx: {"boost": 4}})) == [("A", 8)]


# -- audiences -------------------------------------------------------------------------------


def test_segments_in_another_namespace() -> None:
    snap = simple(
        [
            offer("aam", 5, constraint=segments("anySegments", "s1", namespace="aam")),
            offer("base", 0),
        ]
    )
    assert ids(run(snap, profile=member("aam", s1="realized"))) == ["aam"]
    assert ids(run(snap, profile=member("ups", s1="realized"))) == ["base"]
    assert ids(run(snap, profile={"segmentMembership": {}})) == ["base"]
    assert ids(run(snap, profile={})) == ["base"]


@pytest.mark.parametrize(
    ("statuses", "any_ok", "all_ok"),
    [
        ({"s1": "realized", "s2": "existing"}, True, True),
        ({"s1": "existing"}, True, False),
        ({"s1": "exited", "s2": "realized"}, True, False),
        ({"s1": "exited", "s2": "exited"}, False, False),
        ({"s3": "realized"}, False, False),
    ],
)
def test_any_and_all_segments(statuses: dict[str, str], any_ok: bool, all_ok: bool) -> None:
    snap = catalog(
        [
            offer("any", constraint=segments("anySegments", "s1", "s2")),
            offer("all", constraint=segments("allSegments", "s1", "s2")),
        ],
        [decision("Dany", [criterion("C1")]), decision("Dall", [criterion("C2")])],
        collections=[collection("C1", ["any"]), collection("C2", ["all"])],
    )
    profile = member(**statuses)
    assert ids(run(snap, [("Dany", "P1")], profile=profile)) == (["any"] if any_ok else [])
    assert ids(run(snap, [("Dall", "P1")], profile=profile)) == (["all"] if all_ok else [])


def test_segment_criterion_constraint() -> None:
    snap = catalog(
        [offer("vip", 5), offer("base", 0)],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=1, constraint=segments("allSegments", "s1")),
                    criterion("C2"),
                ],
            )
        ],
        collections=[collection("C1", ["vip"]), collection("C2", ["base"])],
    )
    assert ids(run(snap, profile=member(s1="existing"))) == ["vip"]
    assert ids(run(snap, profile=member(s1="exited"))) == ["base"]


# -- run-time failures -------------------------------------------------------------------------


class FailingProfile(Mapping[str, Any]):
    """A profile whose `boom` attribute cannot be read (e.g. a lazily loaded profile store
    failing): PQL raises while evaluating a rule that reads it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> Any:
        if key == "boom":
            raise RuntimeError("profile store down")
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_a_rule_failing_at_run_time_excludes_and_is_traced() -> None:
    snap = simple(
        [
            offer("O1", 5, constraint=eligible("Rboom")),
            offer("O2", 4, constraint=eligible("Rboomoffer")),
            offer("O4", 3, constraint=eligible("Rboom")),
            offer("O3", 1),
        ],
        rules=[
            rule("Rboom", "boom = 1"),
            rule("Rboomoffer", "offer.rank.priority > 0 and boom = 1"),
        ],
    )
    profile = FailingProfile({"tier": "gold"})  # not empty: run() replaces a falsy profile
    assert ids(run(snap, profile=profile)) == ["O3"]  # untraced: no error escapes
    result = run(snap, [("D1", "P1", 3)], profile=profile, trace=True)
    assert ids(result) == ["O3"]
    errors = {(e["rule"], e["offer"]): e["detail"] for e in events(result, "rule_error")}
    # a failure is memoised like any answer: Rboom (offer-independent) fails once for O1, O4
    assert set(errors) == {("Rboom", "O1"), ("Rboomoffer", "O2")}
    assert all("profile store down" in d for d in errors.values())


def test_a_formula_failing_at_run_time_ranks_last_and_is_traced() -> None:
    snap = catalog(
        [offer("A", 9), offer("B", 1)],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[formula("F", 'if(offer._id = "A", boom * 2, offer.rank.priority)')],
    )
    profile = FailingProfile({"tier": "gold"})  # not empty: run() replaces a falsy profile
    assert scores(run(snap, [("D1", "P1", 2)], profile=profile)) == [("B", 1), ("A", None)]
    result = run(snap, [("D1", "P1", 2)], profile=profile, trace=True)
    (event,) = events(result, "rule_error")
    assert (event["rule"], event["offer"]) == ("F", "A")
    assert "profile store down" in event["detail"]


def test_a_null_score_is_not_an_error() -> None:
    snap = catalog(
        [offer("A", 1), offer("B", 2, characteristics={"s": "3"})],
        [decision("D1", [criterion("C1", formula="F")])],
        collections=[collection("C1", ["A", "B"])],
        formulas=[formula("F", "offer.characteristics.s * 1")],
    )
    result = run(snap, [("D1", "P1", 2)], trace=True)
    assert scores(result) == [("B", 3), ("A", None)]
    assert events(result, "rule_error") == []
