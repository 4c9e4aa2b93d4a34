"""The Snapshot: one sandbox's catalog, compiled once for the hot path.

It takes the typed domain model (``catalog.Catalog``, built by the catalog's loader) and does
everything request-independent: PQL is compiled, collections are resolved to offer ids and every
offer's caps become counter definitions. Per (decision, placement) the static part of the
candidate list (status, representation, priority order) is computed on first use and memoised.

Compiled PQL objects are closures and cannot be pickled, so a Snapshot pickles as its Catalog
and is recompiled when unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offerbase import pql
from offerbase.catalog import Catalog, Criterion, Decision, Offer, Placement
from offerbase.catalog.domain import FallbackOffer, RankingFormula, RankingStrategy, Rule
from offerbase.engine.bandit import Tables
from offerbase.engine.capping import CapRule, cap_rules, entity_part
from offerbase.engine.eligibility import CompiledRule
from offerbase.engine.model import EXPERIENCE_EVENTS


@dataclass(frozen=True, slots=True, eq=False)
class CriterionPlan:
    criterion: Criterion
    # Candidates that passed the static filters (approved, representation for the placement),
    # in priority tiers, highest first: ((priority, (offer, ...)), ...).
    tiers: tuple[tuple[int, tuple[Offer, ...]], ...]
    # Candidates removed by the static filters, for the trace: (offer id, reason, detail).
    dropped: tuple[tuple[str, str, str], ...]
    # The tiers' offers in one tuple (a ranking strategy ignores priorities).
    flat: tuple[Offer, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ScopePlan:
    decision: Decision
    placement: Placement
    # Criteria that apply to the placement, grouped by rank.priority (highest first);
    # equal priorities form one group ranked together.
    groups: tuple[tuple[CriterionPlan, ...], ...]
    # Every cap rule of the candidates that applies in this placement, with its entity key part
    # (for capping_keys()).
    cap_rules: tuple[tuple[CapRule, str], ...] = ()


def _compile(entity: Rule | RankingFormula, source: str, kind: pql.Kind) -> CompiledRule:
    params = entity.params
    try:
        expr = pql.compile(source, kind, params=tuple(name for name, _ in params))
    except pql.PqlError as exc:  # a broken rule excludes its offers, it must not break the sandbox
        return CompiledRule(entity.id, None, False, params, f"PqlError: {exc}")
    if "xEvent" in expr.reads_params and all(name != "xEvent" for name, _ in params):
        # Edge-style rules read the request's experience events as `xEvent`: bound from the
        # context entry of that name (model.EXPERIENCE_EVENTS), which the Edge endpoints fill.
        params = (*params, ("xEvent", EXPERIENCE_EVENTS))
    return CompiledRule(entity.id, expr, expr.reads_offer, params)


def _compile_query(source: str) -> pql.Expression | None:
    """A cap's customQuery: a rule over the event (`xEvent`, a default input of PQL)."""
    try:
        return pql.compile(source, "rule")
    except pql.PqlError:  # saved under an older PQL: validation compiles it on every save
        return None


class Snapshot:
    """Immutable compiled catalog of one sandbox (plus a memo of per-scope plans)."""

    def __init__(self, catalog: Catalog, version: int) -> None:
        self.version = version
        self.catalog = catalog
        self.offers: dict[str, Offer] = {o.id: o for o in catalog.offers}
        self.fallbacks: dict[str, FallbackOffer] = {f.id: f for f in catalog.fallbacks}
        self.placements: dict[str, Placement] = {p.id: p for p in catalog.placements}
        self.decisions: dict[str, Decision] = {d.id: d for d in catalog.decisions}
        self.strategies: dict[str, RankingStrategy] = {s.id: s for s in catalog.strategies}
        self.rules: dict[str, CompiledRule] = {
            r.id: _compile(r, r.condition, "rule") for r in catalog.rules
        }
        self.formulas: dict[str, CompiledRule] = {
            f.id: _compile(f, f.expression, "formula") for f in catalog.formulas
        }
        # Counter definitions of the offers that have caps (offer id -> rules).
        self.caps: dict[str, tuple[CapRule, ...]] = {}
        # The rules that feedback events feed (impression, click, custom: engine/feedback.py),
        # and the compiled customQuery of each custom one (by rule prefix; None: it does not
        # compile, so it counts nothing).
        self.feedback_caps: dict[str, tuple[CapRule, ...]] = {}
        self.cap_queries: dict[str, pql.Expression | None] = {}
        for offer in catalog.offers:
            rules = cap_rules(offer)
            if rules:
                self.caps[offer.id] = rules
            fed = tuple(
                r for r in rules if r.counts_impressions or r.counts_clicks or r.custom_query
            )
            if fed:
                self.feedback_caps[offer.id] = fed
            for rule in fed:
                if rule.custom_query is not None:
                    self.cap_queries[rule.prefix] = _compile_query(rule.custom_query)
        self._collections = {c.id: c.offer_ids(catalog.offers) for c in catalog.collections}
        # Rules and formulas that failed to compile, for diagnostics: id -> message.
        self.errors: dict[str, str] = {
            r.id: r.error
            for r in (*self.rules.values(), *self.formulas.values())
            if r.error is not None
        }
        self._plans: dict[tuple[str, str], ScopePlan] = {}
        # Ranking strategies' posterior tables (engine/bandit.py), memoised per evidence.
        self.bandit_tables = Tables()

    def candidates(self, criterion: Criterion) -> tuple[str, ...]:
        """The criterion's offer ids: its option list, or its collection's offers."""
        if criterion.collection_id is None:
            return criterion.option_ids
        return self._collections.get(criterion.collection_id, ())

    def placements_of(self, decision: Decision) -> tuple[Placement, ...]:
        """The placements a decision can be asked for: those its criteria name, or every
        placement of the catalog when a criterion names none."""
        named: set[str] = set()
        for criterion in decision.criteria:
            if criterion.placements is None:
                return tuple(self.catalog.placements)
            named |= criterion.placements
        return tuple(p for p in self.catalog.placements if p.id in named)

    def candidate_offers(self, decision: Decision) -> tuple[Offer, ...]:
        """The offers a decision can propose before any rule or cap is evaluated: approved, among
        its criteria's candidates and with a representation for one of its placements, each
        once, in the order of the first placement that has it (the legacy API's
        activity-to-offers view)."""
        found: dict[str, Offer] = {}
        for placement in self.placements_of(decision):
            for group in self.plan(decision, placement).groups:
                for criterion_plan in group:
                    for _priority, offers in criterion_plan.tiers:
                        for offer in offers:
                            found.setdefault(offer.id, offer)
        return tuple(found.values())

    def plan(self, decision: Decision, placement: Placement) -> ScopePlan:
        key = (decision.id, placement.id)
        got = self._plans.get(key)
        if got is None:
            got = self._build_plan(decision, placement)
            self._plans[key] = got  # benign race: two threads build equal plans
        return got

    def _build_plan(self, decision: Decision, placement: Placement) -> ScopePlan:
        pid = placement.id
        applicable = [c for c in decision.criteria if c.placements is None or pid in c.placements]
        # Higher rank.priority first; stable, so equal priorities keep their listed order.
        applicable.sort(key=lambda c: -c.priority)
        groups: list[list[CriterionPlan]] = []
        last: int | None = None
        capped: dict[str, tuple[CapRule, ...]] = {}
        for crit in applicable:
            kept: list[Offer] = []
            dropped: list[tuple[str, str, str]] = []
            for oid in self.candidates(crit):
                offer = self.offers.get(oid)
                if offer is None:
                    dropped.append((oid, "unknown_offer", "not in the catalog"))
                elif not offer.approved:
                    dropped.append((oid, "status", offer.status))
                elif pid not in offer.representations:
                    dropped.append((oid, "no_representation", pid))
                else:
                    kept.append(offer)
                    if oid in self.caps:
                        capped[oid] = self.caps[oid]
            kept.sort(key=lambda o: -o.priority)
            tiers: list[tuple[int, list[Offer]]] = []
            for offer in kept:
                if tiers and tiers[-1][0] == offer.priority:
                    tiers[-1][1].append(offer)
                else:
                    tiers.append((offer.priority, [offer]))
            frozen_tiers = tuple((prio, tuple(members)) for prio, members in tiers)
            cplan = CriterionPlan(crit, frozen_tiers, tuple(dropped), tuple(kept))
            if last is not None and crit.priority == last:
                groups[-1].append(cplan)
            else:
                groups.append([cplan])
                last = crit.priority
        return ScopePlan(
            decision=decision,
            placement=placement,
            groups=tuple(tuple(g) for g in groups),
            cap_rules=tuple(
                (rule, entity_part(rule, pid))
                for rules in capped.values()
                for rule in rules
                if rule.placements is None or pid in rule.placements
            ),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled PQL closures do not pickle: ship the catalog, recompile on arrival.
        return (Snapshot, (self.catalog, self.version))


def build_snapshot(catalog: Catalog, *, version: int = 0) -> Snapshot:
    """Compile one sandbox's catalog (see ``catalog.load_catalog``)."""
    return Snapshot(catalog, version)
