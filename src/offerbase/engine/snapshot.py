"""The Snapshot: one sandbox's catalog, compiled once for the hot path.

Everything request-independent happens here: PQL is compiled, collections are resolved to
offer ids, dates are parsed to epoch seconds, representations are indexed by placement and
priorities read with their defaults. Per (decision, placement) the static part of the candidate
list (status, representation, priority order) is computed on first use and memoised.

Compiled PQL objects are closures and cannot be pickled, so a Snapshot pickles as its source
entities and is rebuilt (recompiled) when unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offerbase.engine.capping import CapRule, as_utc, entity_part, parse_caps
from offerbase.engine.eligibility import (
    NO_CONSTRAINT,
    CompiledRule,
    Constraint,
    depends_on_offer,
    parse_constraint,
)
from offerbase.engine.model import EntityRef

AI_RANKING = "rankingStrategy"
FORMULA_RANKING = "scoringFunction"


@dataclass(frozen=True, slots=True, eq=False)
class Offer:
    id: str
    etag: Any
    body: Mapping[str, Any]
    approved: bool
    status: str
    start: float | None  # epoch seconds, inclusive
    end: float | None  # epoch seconds, inclusive
    priority: int
    representations: Mapping[str, Mapping[str, Any]]  # placement id -> representation
    constraint: Constraint
    caps: tuple[CapRule, ...]
    tags: frozenset[str]
    # What `offer` means inside PQL: the body plus `_id` and the default `rank.priority` (0),
    # built once so formulas like `offer.rank.priority * 2` see the documented default.
    view: Mapping[str, Any]


@dataclass(frozen=True, slots=True, eq=False)
class Fallback:
    ref: EntityRef
    representations: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True, eq=False)
class Placement:
    ref: EntityRef
    item_count: int | None  # None when absent or invalid: the default (1) applies
    allow_duplicates: bool  # allowDuplicatePlacements, default false


@dataclass(frozen=True, slots=True, eq=False)
class Criterion:
    index: int
    placements: frozenset[str] | None  # None = any placement
    priority: int
    order_type: str  # static | scoringFunction | rankingStrategy
    formula_id: str | None
    constraint: Constraint
    candidate_ids: tuple[str, ...]  # collection / option list resolved, first-seen order


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    ref: EntityRef
    status: str
    start: float | None
    end: float | None
    fallback_id: str | None
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True, eq=False)
class CriterionPlan:
    criterion: Criterion
    # Candidates that passed the static filters (approved, representation for the placement),
    # in priority tiers, highest first: ((priority, (offer, ...)), ...).
    tiers: tuple[tuple[int, tuple[Offer, ...]], ...]
    # Candidates removed by the static filters, for the trace: (offer id, reason, detail).
    dropped: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True, eq=False)
class ScopePlan:
    decision: Decision
    placement: Placement
    # Criteria that apply to the placement, grouped by rank.priority (highest first);
    # equal priorities form one group ranked together.
    groups: tuple[tuple[CriterionPlan, ...], ...]
    uses_ai: bool
    # Offers with capping rules among the candidates (for capping_keys()).
    capped_offers: tuple[Offer, ...]
    # Every cap rule of those offers that applies in this placement, with its entity key part.
    cap_rules: tuple[tuple[CapRule, str], ...] = ()


def parse_time(value: Any) -> float | None:
    """RFC 3339 -> epoch seconds; a naive time is UTC. Unparseable -> None (no bound)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value)).timestamp()
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def _str_list(value: Any) -> list[str]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [v for v in value if isinstance(v, str)]
    return []


def _index_representations(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    reps: dict[str, Mapping[str, Any]] = {}
    raw = body.get("representations")
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for rep in raw:
            if isinstance(rep, Mapping) and isinstance(rep.get("placement"), str):
                reps.setdefault(rep["placement"], rep)  # first representation wins
    return reps


def _ref(body: Mapping[str, Any]) -> EntityRef:
    return EntityRef(id=str(body["id"]), etag=body.get("etag"), body=body)


_DEFINED_ON_SKIP = frozenset({"", "profile", "offer", "xEvent"})


def _param_bindings(body: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """definedOn entries other than profile/offer: parameter name -> context type."""
    defined = body.get("definedOn")
    if not isinstance(defined, Mapping):
        return ()
    out: list[tuple[str, str]] = []
    for name, spec in defined.items():
        if name in _DEFINED_ON_SKIP or not isinstance(spec, Mapping):
            continue
        schema = spec.get("schema")
        if not isinstance(schema, Mapping):
            continue
        alt = schema.get("altId") or schema.get("ref")
        if not isinstance(alt, str):
            continue
        version = schema.get("version")
        out.append((str(name), f"{alt};version={version}" if version is not None else alt))
    return tuple(out)


def _compile(source: str, kind: str, params: tuple[str, ...] = ()) -> Any:
    """Compile PQL; a seam so engine unit tests can substitute a tiny fake compiler."""
    from offerbase import pql

    return pql.compile(source, "formula" if kind == "formula" else "rule", params=params)


def _compile_entity(body: Mapping[str, Any], field_name: str, kind: str) -> CompiledRule:
    rid = str(body["id"])
    holder = body.get(field_name)
    source = holder.get("value") if isinstance(holder, Mapping) else None
    params = _param_bindings(body)
    if not isinstance(source, str):
        return CompiledRule(rid, None, False, params, f"no {field_name}.value")
    try:
        expr = _compile(source, kind, tuple(name for name, _ in params))
    except Exception as exc:  # a broken rule excludes its offers, it must not break the sandbox
        return CompiledRule(rid, None, False, params, f"{type(exc).__name__}: {exc}")
    return CompiledRule(rid, expr, depends_on_offer(expr, source), params)


def _build_offer(body: Mapping[str, Any]) -> Offer:
    oid = str(body["id"])
    status = body.get("status") or "draft"  # missing status = draft
    sel = body.get("selectionConstraint")
    sel = sel if isinstance(sel, Mapping) else {}
    rank = body.get("rank")
    priority = _int(rank.get("priority"), 0) if isinstance(rank, Mapping) else 0
    view: dict[str, Any] = dict(body)
    view.setdefault("_id", oid)
    view["rank"] = {**(rank if isinstance(rank, Mapping) else {}), "priority": priority}
    return Offer(
        id=oid,
        etag=body.get("etag"),
        body=body,
        approved=status == "approved",
        status=str(status),
        start=parse_time(sel.get("startDate")),
        end=parse_time(sel.get("endDate")),
        priority=priority,
        representations=_index_representations(body),
        constraint=parse_constraint(sel) if sel else NO_CONSTRAINT,
        caps=parse_caps(oid, body),
        tags=frozenset(_str_list(body.get("tags"))),
        view=view,
    )


_ORDER_SPELLINGS = {"ranking-strategy": AI_RANKING, "scoring-function": FORMULA_RANKING}


def _build_criterion(
    index: int,
    raw: Mapping[str, Any],
    collections: Mapping[str, tuple[str, ...]],
) -> Criterion:
    placements = _str_list(raw.get("placements"))
    rank = raw.get("rank")
    rank = rank if isinstance(rank, Mapping) else {}
    order = rank.get("order")
    order = order if isinstance(order, Mapping) else {}
    order_type = order.get("orderEvaluationType") or "static"
    order_type = _ORDER_SPELLINGS.get(order_type, order_type)
    formula = order.get("function") if order_type == FORMULA_RANKING else None
    selection = raw.get("optionSelection")
    selection = selection if isinstance(selection, Mapping) else {}
    ids: list[str] = []
    direct = _str_list(selection.get("options"))
    if direct and (
        selection.get("optionSelectionType") == "directList" or not selection.get("filter")
    ):
        ids = direct
    elif isinstance(selection.get("filter"), str):
        ids = list(collections.get(selection["filter"], ()))
    return Criterion(
        index=index,
        placements=frozenset(placements) if placements else None,
        priority=_int(rank.get("priority"), 0),
        order_type=str(order_type),
        formula_id=formula if isinstance(formula, str) else None,
        constraint=parse_constraint(raw.get("profileConstraint")),
        candidate_ids=tuple(dict.fromkeys(ids)),
    )


def _resolve_collection(body: Mapping[str, Any], offers: Sequence[Offer]) -> tuple[str, ...]:
    ids = _str_list(body.get("ids"))
    ftype = body.get("filterType") or "offers"
    if ftype == "offers":
        return tuple(dict.fromkeys(ids))
    wanted = frozenset(ids)
    if ftype == "all-tags":
        return tuple(o.id for o in offers if wanted and wanted <= o.tags)
    return tuple(o.id for o in offers if o.tags & wanted)  # any-tags


class Snapshot:
    """Immutable compiled catalog of one sandbox (plus a memo of per-scope plans)."""

    def __init__(self, entities: Mapping[str, Sequence[Mapping[str, Any]]], version: int) -> None:
        self.version = version
        self._entities = {k: list(v) for k, v in entities.items()}
        offers = [_build_offer(b) for b in entities.get("personalized-offer", ())]
        self.offers: dict[str, Offer] = {o.id: o for o in offers}
        self.fallbacks: dict[str, Fallback] = {
            str(b["id"]): Fallback(_ref(b), _index_representations(b))
            for b in entities.get("fallback-offer", ())
        }
        self.placements: dict[str, Placement] = {}
        for b in entities.get("placement", ()):
            count = b.get("itemCount")
            valid = isinstance(count, int) and not isinstance(count, bool) and count >= 1
            self.placements[str(b["id"])] = Placement(
                _ref(b), count if valid else None, b.get("allowDuplicatePlacements") is True
            )
        self.rules: dict[str, CompiledRule] = {
            str(b["id"]): _compile_entity(b, "condition", "rule")
            for b in entities.get("decision-rule", ())
        }
        self.formulas: dict[str, CompiledRule] = {
            str(b["id"]): _compile_entity(b, "expression", "formula")
            for b in entities.get("ranking-formula", ())
        }
        collections = {
            str(b["id"]): _resolve_collection(b, offers) for b in entities.get("collection", ())
        }
        self.decisions: dict[str, Decision] = {}
        for b in entities.get("decision", ()):
            raw_criteria = b.get("criteria")
            crit_list = raw_criteria if isinstance(raw_criteria, Sequence) else ()
            criteria = tuple(
                _build_criterion(i, c, collections)
                for i, c in enumerate(crit_list)
                if isinstance(c, Mapping)
            )
            fallback = b.get("fallback")
            self.decisions[str(b["id"])] = Decision(
                ref=_ref(b),
                status=str(b.get("status") or "draft"),
                start=parse_time(b.get("startDate")),
                end=parse_time(b.get("endDate")),
                fallback_id=fallback if isinstance(fallback, str) and fallback else None,
                criteria=criteria,
            )
        # Rules and formulas that failed to compile, for diagnostics: id -> message.
        self.errors: dict[str, str] = {
            r.id: r.error
            for r in (*self.rules.values(), *self.formulas.values())
            if r.error is not None
        }
        self._plans: dict[tuple[str, str], ScopePlan] = {}

    def plan(self, decision: Decision, placement: Placement) -> ScopePlan:
        key = (decision.ref.id, placement.ref.id)
        got = self._plans.get(key)
        if got is None:
            got = self._build_plan(decision, placement)
            self._plans[key] = got  # benign race: two threads build equal plans
        return got

    def _build_plan(self, decision: Decision, placement: Placement) -> ScopePlan:
        pid = placement.ref.id
        applicable = [c for c in decision.criteria if c.placements is None or pid in c.placements]
        # Higher rank.priority first; stable, so equal priorities keep their listed order.
        applicable.sort(key=lambda c: -c.priority)
        groups: list[list[CriterionPlan]] = []
        last: int | None = None
        capped: dict[str, Offer] = {}
        for crit in applicable:
            kept: list[Offer] = []
            dropped: list[tuple[str, str, str]] = []
            for oid in crit.candidate_ids:
                offer = self.offers.get(oid)
                if offer is None:
                    dropped.append((oid, "unknown_offer", "not in the catalog"))
                elif not offer.approved:
                    dropped.append((oid, "status", offer.status))
                elif pid not in offer.representations:
                    dropped.append((oid, "no_representation", pid))
                else:
                    kept.append(offer)
                    if offer.caps:
                        capped[oid] = offer
            kept.sort(key=lambda o: -o.priority)
            tiers: list[tuple[int, list[Offer]]] = []
            for offer in kept:
                if tiers and tiers[-1][0] == offer.priority:
                    tiers[-1][1].append(offer)
                else:
                    tiers.append((offer.priority, [offer]))
            frozen_tiers = tuple((prio, tuple(members)) for prio, members in tiers)
            cplan = CriterionPlan(crit, frozen_tiers, tuple(dropped))
            if last is not None and crit.priority == last:
                groups[-1].append(cplan)
            else:
                groups.append([cplan])
                last = crit.priority
        return ScopePlan(
            decision=decision,
            placement=placement,
            groups=tuple(tuple(g) for g in groups),
            uses_ai=any(c.order_type == AI_RANKING for c in applicable),
            capped_offers=tuple(capped.values()),
            cap_rules=tuple(
                (rule, entity_part(rule, pid))
                for offer in capped.values()
                for rule in offer.caps
                if rule.placements is None or pid in rule.placements
            ),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled PQL closures do not pickle: ship the source entities, recompile on arrival.
        return (_rebuild, (self._entities, self.version))


def _rebuild(entities: dict[str, list[Mapping[str, Any]]], version: int) -> Snapshot:
    return Snapshot(entities, version)


def build_snapshot(
    entities: Mapping[str, Sequence[Mapping[str, Any]]], *, version: int = 0
) -> Snapshot:
    """Compile one sandbox's catalog: kind name -> stored bodies (each with id and etag)."""
    return Snapshot(entities, version)
