"""Trace contents, snapshot building (collections, compile-once, pickling)."""

from __future__ import annotations

import dataclasses
import pickle
import random

from engine_helpers import (
    NOW,
    catalog,
    collection,
    criterion,
    decision,
    ids,
    load_stored,
    offer,
    rule,
    run,
    simple,
)

from offerbase.engine import DecisionRequest, ScopeRequest, build_snapshot, decide


def _trace_catalog():  # type: ignore[no-untyped-def]
    return catalog(
        [
            offer("draft", 9, status="draft", placements=("P1", "P2")),
            offer("norep", 9, placements=("P2",)),
            offer("expired", 9, end="2020-01-01T00:00:00Z", placements=("P1", "P2")),
            offer(
                "ruled",
                8,
                placements=("P1", "P2"),
                constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R1"},
            ),
            offer(
                "capped",
                7,
                placements=("P1", "P2"),
                caps=[{"limit": 1, "scope": "global", "entity": "offer"}],
            ),
            offer("A", 6, placements=("P1", "P2")),
            offer("B", 5, placements=("P1", "P2")),
            offer("C", 4, placements=("P1", "P2")),
        ],
        [decision("D1", [criterion("C1")]), decision("D2", [criterion("C1")])],
        collections=[
            collection("C1", ["draft", "norep", "expired", "ruled", "capped", "A", "B", "C"])
        ],
        rules=[rule("R1", "false")],
    )


def test_trace_says_why_each_candidate_dropped_or_where_it_ranked() -> None:
    snap = _trace_catalog()
    result = run(
        snap,
        [("D1", "P1"), ("D2", "P2")],
        counters={"cap|capped|fc0|global|-|offer|-|all": 1},
        trace=True,
    )
    assert ids(result, 0) == ["A"]
    assert ids(result, 1) == ["norep"]  # it has a P2 representation
    trace = result.trace or []
    reasons = {(e["scope"], e["offer"]): e["reason"] for e in trace if e["event"] == "dropped"}
    assert reasons[(0, "draft")] == "status"
    assert reasons[(0, "norep")] == "no_representation"
    assert reasons[(0, "expired")] == "dates"
    assert reasons[(0, "ruled")] == "offer_eligibility"
    assert reasons[(0, "capped")] == "capped"
    assert reasons[(0, "B")] == "not_needed"
    assert reasons[(1, "A")] == "duplicate"
    ranked = [e for e in trace if e["event"] == "ranked"]
    assert {(e["scope"], e["offer"], e["position"], e["selected"]) for e in ranked} == {
        (0, "A", 1, True),
        (1, "norep", 1, True),
    }
    assert all(e["score"] is None and "priority" in e for e in ranked)
    assert "rule R1 false" in next(
        e["detail"] for e in trace if e.get("offer") == "ruled" and e["scope"] == 0
    )


def test_trace_fallback_event() -> None:
    snap = simple([offer("O1", status="draft")])
    result = run(snap, trace=True)
    assert [e["event"] for e in result.trace or []] == ["dropped", "fallback"]
    assert (result.trace or [])[-1]["fallback"] == "F1"


def test_trace_does_not_change_the_decision() -> None:
    snap = simple([offer(f"T{i}", i % 3, placements=("P1", "P2")) for i in range(30)])
    scopes = [("D1", "P1", 4), ("D1", "P2", 4)]
    for seed in range(20):
        plain = run(snap, scopes, seed=seed)
        traced = run(snap, scopes, seed=seed, trace=True)
        assert plain.trace is None
        assert [ids(plain, i) for i in (0, 1)] == [ids(traced, i) for i in (0, 1)]
        dropped = {e["offer"] for e in traced.trace or [] if e["event"] == "dropped"}
        ranked = {e["offer"] for e in traced.trace or [] if e["event"] == "ranked"}
        assert dropped | ranked == {f"T{i}" for i in range(30)}  # every candidate accounted for


def test_collections_offers_any_tags_all_tags() -> None:
    offers = [
        offer("O1", 3, tags=("t1",)),
        offer("O2", 2, tags=("t1", "t2")),
        offer("O3", 1, tags=("t2",)),
    ]
    snap = catalog(
        offers,
        [
            decision("Dany", [criterion("Cany")]),
            decision("Dall", [criterion("Call")]),
            decision("Doff", [criterion("Coff")]),
        ],
        collections=[
            collection("Cany", ["t2"], "any-tags"),
            collection("Call", ["t1", "t2"], "all-tags"),
            collection("Coff", ["O3", "O1", "unknown"], "offers"),
        ],
    )
    three = 3
    assert ids(run(snap, [("Dany", "P1", three)])) == ["O2", "O3"]
    assert ids(run(snap, [("Dall", "P1", three)])) == ["O2"]
    assert ids(run(snap, [("Doff", "P1", three)])) == ["O1", "O3"]


def test_rules_compiled_once_and_snapshot_pickles(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from offerbase import pql

    compiled: list[str] = []
    inner = pql.compile

    def counting(source: str, kind: str, **kw):  # type: ignore[no-untyped-def]
        compiled.append(kind)
        return inner(source, kind, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pql, "compile", counting)
    snap = simple(
        [
            offer(
                f"O{i}",
                i,
                constraint={"profileConstraintType": "eligibilityRule", "eligibilityRule": "R1"},
            )
            for i in range(5)
        ],
        rules=[rule("R1", "ok = true")],
    )
    compiled.clear()  # validation compiled the rule too; count the snapshot's compilations
    snap = build_snapshot(snap.catalog)
    assert compiled == ["rule"]
    for _ in range(3):
        run(snap, profile={"ok": True})
    assert compiled == ["rule"]  # decide() never compiles
    clone = pickle.loads(pickle.dumps(snap))
    assert compiled == ["rule", "rule"]  # recompiled on unpickle
    assert clone.version == snap.version
    assert ids(run(clone, profile={"ok": True})) == ids(run(snap, profile={"ok": True}))


def test_rule_that_no_longer_compiles_is_reported_and_excludes() -> None:
    """A rule stored under an older PQL that the current one refuses: its offers are out, the
    rest of the sandbox decides as usual."""
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
    stale = tuple(dataclasses.replace(r, condition="(") for r in snap.catalog.rules)
    snap = build_snapshot(dataclasses.replace(snap.catalog, rules=stale))
    assert "R1" in snap.errors
    assert ids(run(snap, profile={"a": 1})) == ["O2"]


def test_minimal_bodies_decide_with_defaults() -> None:
    snap = build_snapshot(
        load_stored(
            {
                "personalized-offer": [offer("O1", None, status="approved")],
                "placement": [{"id": "P1", "name": "P1"}],
                "decision": [
                    {
                        "id": "D1",
                        "name": "D1",
                        "status": "live",
                        "criteria": [{"optionSelection": {"options": ["O1"]}}],
                    }
                ],
            }
        ),
        version=7,
    )
    assert snap.version == 7
    result = decide(
        snap,
        DecisionRequest([ScopeRequest("D1", "P1")]),
        {},
        {},
        now=NOW,
        rng=random.Random(0),
    )
    assert ids(result) == ["O1"]
    assert result.scopes[0].fallback is None
