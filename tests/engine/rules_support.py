"""Support for the engine rule tests (test_engine_rules*.py).

Every catalog is built from the engine_helpers builders and each body is first checked with
the Offer Library's own validator (`offerbase.catalog.validate`), so these tests only feed the
engine bodies the API would accept (valid enums, dates and PQL; no fake `py:` sources).
`Spy` counts how often a compiled rule or formula is evaluated, by wrapping the snapshot's
compiled objects after the build (the real PQL compiler stays in place).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine_helpers import catalog, collection, criterion, decision, fallback, placement

from offerbase.catalog import validate
from offerbase.engine import DecisionResult, Snapshot

KINDS = {
    "offers": "personalized-offer",
    "decisions": "decision",
    "collections": "collection",
    "placements": "placement",
    "rules": "decision-rule",
    "formulas": "ranking-formula",
    "fallbacks": "fallback-offer",
}


def build(
    offers: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    **kw: Any,
) -> Snapshot:
    """`engine_helpers.catalog` after validating every body as the API would."""
    bodies = {
        "offers": offers,
        "decisions": decisions,
        "placements": kw.get("placements") or [placement("P1"), placement("P2")],
        "fallbacks": kw.get("fallbacks") or [fallback()],
        **{k: kw.get(k, ()) for k in ("collections", "rules", "formulas")},
    }
    for key, items in bodies.items():
        for body in items:
            validate(KINDS[key], body)  # raises CatalogValidationError on an invalid body
    return catalog(offers, decisions, **kw)


def build_simple(offers: list[dict[str, Any]], **kw: Any) -> Snapshot:
    """One live decision D1 over collection C1 holding every offer (like engine_helpers.simple)."""
    return build(
        offers,
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", [o["id"] for o in offers])],
        **kw,
    )


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
    """Stands in for one compiled PQL expression and records every evaluation's offer id."""

    def __init__(self, expr: Any) -> None:
        self.expr = expr
        self.offers: list[str | None] = []

    @property
    def calls(self) -> int:
        return len(self.offers)

    def evaluate(self, profile: Any, **kw: Any) -> Any:
        offer = kw.get("offer")
        self.offers.append(offer.get("_id") if isinstance(offer, Mapping) else None)
        return self.expr.evaluate(profile, **kw)


def spy(snap: Snapshot, entity_id: str) -> Spy:
    """Wrap the compiled rule (or formula) `entity_id` of `snap` in a counting Spy."""
    table = snap.rules if entity_id in snap.rules else snap.formulas
    compiled = table[entity_id]
    wrapper = Spy(compiled.expr)
    table[entity_id] = dataclasses.replace(compiled, expr=wrapper)
    return wrapper
