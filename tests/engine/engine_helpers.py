"""Engine test helpers, the one set for every engine test: entity builders, a run() shortcut,
constraint/profile/trace helpers and an evaluation spy.

The builders write stored DPS bodies (with id and etag); `catalog()` passes every one through
the catalog's validation and loader, exactly as the server does, so no test feeds the engine a
body the Offer Library API would refuse. Rules and formulas are real PQL.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import builders
from offerbase.catalog import load_catalog, validate
from offerbase.engine import (
    DecisionRequest,
    DecisionResult,
    ScopeRequest,
    Snapshot,
    build_snapshot,
    decide,
)
from offerbase.engine.bandit import RankingStats

# The shared entity builders (tests/builders.py), under the names the engine tests use.
collection = builders.collection
criterion = builders.criterion
decision = builders.decision
fallback = builders.fallback
formula = builders.formula
offer = builders.offer
placement = builders.placement
rep = builders.rep
rule = builders.rule
strategy = builders.strategy

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def catalog(
    offers: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    *,
    collections: list[dict[str, Any]] = (),  # type: ignore[assignment]
    placements: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] = (),  # type: ignore[assignment]
    formulas: list[dict[str, Any]] = (),  # type: ignore[assignment]
    fallbacks: list[dict[str, Any]] | None = None,
    strategies: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Snapshot:
    return build_snapshot(
        load_stored(
            {
                "personalized-offer": offers,
                "fallback-offer": fallbacks if fallbacks is not None else [fallback()],
                "placement": placements
                if placements is not None
                else [placement("P1"), placement("P2")],
                "collection": list(collections),
                "decision": decisions,
                "decision-rule": list(rules),
                "ranking-formula": list(formulas),
                "ranking-strategy": list(strategies),
            }
        )
    )


def stored(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body as the store keeps it: validated and normalised, with id and etag."""
    return {**validate(kind, body), "id": body["id"], "etag": body.get("etag", 1)}


def load_stored(bodies: dict[str, list[dict[str, Any]]]) -> Any:
    """A Catalog from builder bodies, through validation and the loader."""
    return load_catalog({kind: [stored(kind, b) for b in items] for kind, items in bodies.items()})


def simple(offers: list[dict[str, Any]], **kw: Any) -> Snapshot:
    """One live decision D1 over collection C1 holding every offer, placement P1."""
    return catalog(
        offers,
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in offers])],
        **kw,
    )


def run(
    snap: Snapshot,
    scopes: list[tuple[str, str] | tuple[str, str, int]] | None = None,
    *,
    profile: dict[str, Any] | None = None,
    counters: dict[str, int] | None = None,
    now: datetime = NOW,
    seed: int = 1,
    ranking: RankingStats | None = None,
    rng: random.Random | None = None,
    **req: Any,
) -> DecisionResult:
    scope_objs = [ScopeRequest(*s) for s in (scopes or [("D1", "P1")])]
    request = DecisionRequest(scopes=scope_objs, **req)
    return decide(
        snap,
        request,
        profile or {},
        counters or {},
        now=now,
        rng=rng or random.Random(seed),
        ranking=ranking,
    )


def ids(result: DecisionResult, scope: int = 0) -> list[str]:
    return [o.id for o in result.scopes[scope].options]


def scores(result: DecisionResult, scope: int = 0) -> list[tuple[str, float | None]]:
    """(offer id, score) of each option of the scope, in order."""
    return [(o.id, o.score) for o in result.scopes[scope].options]


def two_decisions(offers: int, p1_dup: bool | None = None, p2_dup: bool | None = None) -> Snapshot:
    """Decisions D1 and D2 over one collection of `offers` offers O1, O2, ... (priorities
    descending), each with a representation for P1 and P2; the placements'
    allowDuplicatePlacements as given (de-duplication across scopes)."""
    bodies = [offer(f"O{i}", 10 - i, placements=("P1", "P2")) for i in range(1, offers + 1)]
    return catalog(
        bodies,
        [decision("D1", [criterion("C1")]), decision("D2", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in bodies])],
        placements=[placement("P1", allow_dup=p1_dup), placement("P2", allow_dup=p2_dup)],
    )


# Adobe's worked example of ranking with several criteria: scores per criterion, by offer id.
EXAMPLE_3_6_SCORES = (
    {"O1": 10, "O2": 20, "O3": 30},
    {"O3": 45, "O4": 40, "O5": 50},
    {"O5": 5, "O6": 60},
)


def example_3_6(formula_source: Callable[[dict[str, int]], str]) -> Snapshot:
    """Group 1 = C1 {O1,O2,O3} + C2 {O3,O4,O5} (priority 2); group 2 = C3 {O5,O6}; each
    criterion ranked by its formula, whose source `formula_source` writes from the scores."""
    return catalog(
        [offer(f"O{i}") for i in range(1, 7)],
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=2, formula="F1"),
                    criterion("C2", priority=2, formula="F2"),
                    criterion("C3", priority=1, formula="F3"),
                ],
            )
        ],
        collections=[
            collection("C1", ["O1", "O2", "O3"]),
            collection("C2", ["O3", "O4", "O5"]),
            collection("C3", ["O5", "O6"]),
        ],
        formulas=[
            formula(f"F{i}", formula_source(scores))
            for i, scores in enumerate(EXAMPLE_3_6_SCORES, start=1)
        ],
    )


# -- constraints, profiles, traces and spies ---------------------------------------------


def eligible(rule_id: str, kind: str = "eligibilityRule") -> dict[str, str]:
    """A selectionConstraint / profileConstraint naming one decision rule."""
    return {"profileConstraintType": kind, "eligibilityRule": rule_id}


def segments(kind: str, *seg_ids: str, namespace: str = "ups") -> dict[str, Any]:
    return {
        "profileConstraintType": kind,
        "segmentIdentities": [{"_id": s, "namespace": {"code": namespace}} for s in seg_ids],
    }


def member(namespace: str = "ups", **statuses: str) -> dict[str, Any]:
    """A profile whose segmentMembership[namespace] has these segment statuses."""
    return {"segmentMembership": {namespace: {k: {"status": v} for k, v in statuses.items()}}}


def events(result: DecisionResult, kind: str, scope: int | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in result.trace or []
        if e["event"] == kind and (scope is None or e["scope"] == scope)
    ]


def drops(result: DecisionResult, scope: int = 0) -> dict[str, list[tuple[Any, str, Any]]]:
    """offer id -> [(criterion, reason, detail), ...] of the scope's `dropped` events."""
    out: dict[str, list[tuple[Any, str, Any]]] = {}
    for e in events(result, "dropped", scope):
        out.setdefault(e["offer"], []).append((e["criterion"], e["reason"], e["detail"]))
    return out


class Spy:
    """Stands in for one compiled PQL expression and records every evaluation's offer id
    (and raises instead of evaluating when `raising`: a rule that fails at run time)."""

    def __init__(self, expr: Any, raising: bool = False) -> None:
        self.expr = expr
        self.raising = raising
        self.offers: list[str | None] = []

    @property
    def calls(self) -> int:
        return len(self.offers)

    def evaluate(self, profile: Any, **kw: Any) -> Any:
        offer = kw.get("offer")
        self.offers.append(offer.get("_id") if isinstance(offer, Mapping) else None)
        if self.raising:
            raise RuntimeError("evaluation failed")
        return self.expr.evaluate(profile, **kw)


def spy(snap: Snapshot, entity_id: str, *, raising: bool = False) -> Spy:
    """Wrap the compiled rule (or formula) `entity_id` of `snap` in a counting Spy."""
    table = snap.rules if entity_id in snap.rules else snap.formulas
    compiled = table[entity_id]
    wrapper = Spy(compiled.expr, raising)
    table[entity_id] = dataclasses.replace(compiled, expr=wrapper)
    return wrapper
