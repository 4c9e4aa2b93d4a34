"""decide(): one Decisioning API request against a Snapshot.

Per scope, in request order: resolve the live decision and the placement, take the criteria
that apply to the placement grouped by rank.priority, and for each group collect the eligible
candidates (dates, de-duplication, caps, offer-level and criterion-level eligibility), rank
them, append them after the earlier groups' offers, and stop once itemCount offers are found.
Nothing qualifying -> the decision's fallback.

Pure: time, randomness, the profile and the capping counters are all passed in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from offerbase.catalog import NO_CONSTRAINT, Offer, ProfileConstraint, RankingStrategy, enums
from offerbase.engine import bandit
from offerbase.engine.bandit import RankingStats
from offerbase.engine.capping import (
    BucketCache,
    CapRule,
    applies,
    as_utc,
    compose_key,
    entity_part,
    profile_part,
)
from offerbase.engine.eligibility import Evaluator
from offerbase.engine.model import (
    MAX_ITEM_COUNT,
    MAX_OPTIONS_PER_RESPONSE,
    MAX_SCOPES,
    CapConsumption,
    ChosenOption,
    CounterKey,
    DecisionError,
    DecisionRequest,
    DecisionResult,
    FallbackOption,
    RankingChoice,
    ScopeRequest,
    ScopeResult,
)
from offerbase.engine.ranking import order_scored, random_order, rank_value
from offerbase.engine.snapshot import CriterionPlan, ScopePlan, Snapshot

_Drop = tuple[str, str]  # (reason, detail)


def _pointer(i: int, name: str) -> str:
    return f"/xdm:propositionRequests/{i}/xdm:{name}"


def _resolve(
    snapshot: Snapshot, i: int, scope: ScopeRequest, now_ts: float
) -> tuple[ScopePlan, int]:
    """Validate one scope; errors are raised before any scope is decided."""
    decision = snapshot.decisions.get(scope.activity_id)
    if decision is None:
        raise DecisionError(
            404,
            "Not Found",
            f"Decision '{scope.activity_id}' not found",
            _pointer(i, "activityId"),
            i,
        )
    placement = snapshot.placements.get(scope.placement_id)
    if placement is None:
        raise DecisionError(
            404,
            "Not Found",
            f"Placement '{scope.placement_id}' not found",
            _pointer(i, "placementId"),
            i,
        )
    if decision.status != enums.DECISION_LIVE:
        raise DecisionError(
            422,
            "Decision not live",
            f"Decision '{decision.id}' has status '{decision.status}'; only live decisions "
            "can be used",
            _pointer(i, "activityId"),
            i,
        )
    if (decision.start is not None and now_ts < decision.start) or (
        decision.end is not None and now_ts > decision.end
    ):
        raise DecisionError(
            422,
            "Decision not active",
            f"Decision '{decision.id}' is outside its start/end dates",
            _pointer(i, "activityId"),
            i,
        )
    count = scope.item_count if scope.item_count is not None else placement.item_count
    if count < 1 or count > MAX_ITEM_COUNT:
        raise DecisionError(
            422,
            "Invalid itemCount",
            f"itemCount must be between 1 and {MAX_ITEM_COUNT}, got {count}",
            _pointer(i, "itemCount"),
            i,
        )
    return snapshot.plan(decision, placement), count


def _dedup_flags(request: DecisionRequest, plans: Sequence[ScopePlan]) -> tuple[bool, bool]:
    """(allow across activities, allow across placements): the request wins per dimension;
    otherwise duplicates are allowed only if every requested placement allows them."""
    placements_allow = all(p.placement.allow_duplicates for p in plans)
    act = request.allow_duplicates_across_activities
    pl = request.allow_duplicates_across_placements
    return (placements_allow if act is None else act, placements_allow if pl is None else pl)


class _Run:
    """State of one decide() call shared by its scopes."""

    def __init__(
        self,
        snapshot: Snapshot,
        request: DecisionRequest,
        profile: Mapping[str, Any],
        counters: Mapping[CounterKey, int],
        now: datetime,
        rng: random.Random,
        allow: tuple[bool, bool],
        known_rules: Mapping[str, bool] | None = None,
        ranking: RankingStats | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.ranking: RankingStats = ranking or {}
        self.context_keys: dict[str, str] = {}  # strategy id -> this request's context key
        self.profile = profile
        self.context = request.context
        # this scope's offers ranked by a strategy -> how (the scope's `offerbase:ranking`)
        self.ranked_by: dict[str, RankingChoice] = {}
        self.caps = snapshot.caps
        self.profile_key = request.profile_key
        self.profile_part: str | None = None
        self.counters = counters
        self.now_ts = now.timestamp()
        self.rng = rng
        self.allow_act, self.allow_pl = allow
        self.ev = Evaluator(snapshot.rules, profile, request.context, now, known_rules)
        self.buckets = BucketCache(now)
        self.pending: dict[CounterKey, int] = {}  # increments planned by earlier scopes
        self.used: dict[str, list[tuple[str, str]]] = {}  # offer id -> (activity, placement)
        self.consumption: list[CapConsumption] = []
        self.trace: list[dict[str, Any]] | None = [] if request.trace else None
        if self.trace is not None:
            self.ev.on_error = self._rule_error
        self.scope_index = 0
        self.capped: dict[str, None] = {}  # this scope's capped offers, ordered, once each
        self.counting_caps = True  # False while a trace looks past the cut-off
        self.activity_id = ""
        self.placement_id = ""

    # -- trace -------------------------------------------------------------------------------

    def _rule_error(self, rule_id: str, offer_id: str | None, message: str) -> None:
        self.event("rule_error", rule=rule_id, offer=offer_id, detail=message)

    def event(self, kind: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.append({"scope": self.scope_index, "event": kind, **fields})

    # -- per-candidate checks ----------------------------------------------------------------

    def _blocked(self, offer_id: str) -> bool:
        prev = self.used.get(offer_id)
        if not prev:
            return False
        act, pl, both = self.activity_id, self.placement_id, self.allow_act and self.allow_pl
        for a, p in prev:
            if (a != act and not self.allow_act) or (p != pl and not self.allow_pl):
                return True
            if a == act and p == pl and not both:
                return True
        return False

    def _cap_key(self, rule: CapRule) -> CounterKey:
        # counter_key's parts, the profile's escaped once per request (on first use: most
        # priority walks never reach a capped offer)
        part = self.profile_part
        if part is None:
            part = self.profile_part = profile_part(self.profile_key)
        entity = entity_part(rule, self.placement_id)
        return compose_key(rule, part, entity, self.buckets.label(rule))

    def _capped(self, rules: Sequence[CapRule]) -> _Drop | None:
        for rule in rules:
            if not applies(rule, self.placement_id, self.profile_key):
                continue
            key = self._cap_key(rule)
            if self.counters.get(key, 0) + self.pending.get(key, 0) >= rule.limit:
                which = f"#{rule.index}" if rule.index >= 0 else rule.tag + "Cap"
                return ("capped", f"constraint {which} ({key})")
        return None

    def check(self, offer: Offer, cplan: CriterionPlan, crit_per_offer: bool) -> _Drop | None:
        """Why `offer` is not eligible in this scope for this criterion, or None if it is.

        Cheapest checks first: dates, de-duplication, caps, then rules (memoised)."""
        now = self.now_ts
        if (offer.start is not None and now < offer.start) or (
            offer.end is not None and now > offer.end
        ):
            return ("dates", "outside selectionConstraint startDate/endDate")
        if self.used and self._blocked(offer.id):
            return ("duplicate", "already proposed by an earlier scope")
        rules = self.caps.get(offer.id)
        if rules is not None:
            capped = self._capped(rules)
            if capped is not None:
                if self.counting_caps:
                    self.capped[offer.id] = None
                return capped
        constraint = offer.constraint
        # (identity: the loader shares one NO_CONSTRAINT; an equal copy just takes the slow path)
        if constraint is not NO_CONSTRAINT and not self.ev.check(constraint, offer.id, offer.view):
            # details are only worth building for a trace (this is the hot path)
            return ("offer_eligibility", _describe(constraint) if self.trace is not None else "")
        if crit_per_offer:
            cc = cplan.criterion.constraint
            if not self.ev.check(cc, offer.id, offer.view):
                detail = _describe(cc) if self.trace is not None else ""
                return ("criterion_constraint", detail)
        return None

    def _drop(self, cplan: CriterionPlan, offer_id: str, drop: _Drop) -> None:
        self.event(
            "dropped",
            criterion=cplan.criterion.index,
            offer=offer_id,
            reason=drop[0],
            detail=drop[1],
        )

    # -- one criterion group -----------------------------------------------------------------

    def _criterion_gate(self, cplan: CriterionPlan) -> bool | None:
        """False: the criterion is out; True: its constraint is checked per offer; None: passed.

        A criterion constraint that does not read the offer removes the whole criterion when
        false (Adobe: a criterion whose rule fails is skipped); one that reads the offer is
        evaluated per candidate."""
        cc = cplan.criterion.constraint
        if cc is NO_CONSTRAINT:
            return None
        if not self.ev.offer_independent(cc):
            return True
        if self.ev.check(cc, None, None):
            return None
        self.event(
            "criterion_skipped",
            criterion=cplan.criterion.index,
            reason="criterion_constraint",
            detail=_describe(cc),
        )
        if self.trace is not None:
            for _, tier in cplan.tiers:
                for offer in tier:
                    self._drop(cplan, offer.id, ("criterion_constraint", _describe(cc)))
        return False

    def _static_walk(
        self, cplan: CriterionPlan, per_offer: bool, need: int, ranked: dict[str, float | None]
    ) -> list[tuple[Offer, float | None]]:
        """Priority ranking of a single criterion: walk the tiers, highest first, each in
        uniformly random order, and stop once `need` new eligible offers are found."""
        out: list[tuple[Offer, float | None]] = []
        tracing = self.trace is not None
        for _, tier in cplan.tiers:
            if len(out) >= need:
                if not tracing:
                    break
                self._trace_rest(cplan, tier, per_offer, ranked, set())
                continue
            seen: set[str] = set()
            for offer in random_order(tier, self.rng):
                if len(out) >= need:
                    break
                if tracing:
                    seen.add(offer.id)
                if offer.id in ranked:
                    self._drop(cplan, offer.id, ("already_ranked", "by an earlier group"))
                    continue
                drop = self.check(offer, cplan, per_offer)
                if drop is None:
                    out.append((offer, None))
                elif tracing:
                    self._drop(cplan, offer.id, drop)
            if tracing and len(seen) < len(tier):
                self._trace_rest(cplan, tier, per_offer, ranked, seen)
        return out

    def _trace_rest(
        self,
        cplan: CriterionPlan,
        tier: Sequence[Offer],
        per_offer: bool,
        ranked: Mapping[str, float | None],
        seen: set[str],
    ) -> None:
        """Trace only: say why candidates past the cut-off would or would not qualify, without
        touching the RNG (so a traced decision equals the untraced one)."""
        self.counting_caps = False  # an untraced decision never checks these
        try:
            self._trace_tier(cplan, tier, per_offer, ranked, seen)
        finally:
            self.counting_caps = True

    def _trace_tier(
        self,
        cplan: CriterionPlan,
        tier: Sequence[Offer],
        per_offer: bool,
        ranked: Mapping[str, float | None],
        seen: set[str],
    ) -> None:
        for offer in tier:
            if offer.id in seen or offer.id in ranked:
                continue
            drop = self.check(offer, cplan, per_offer)
            if drop is None:
                drop = ("not_needed", "eligible, below the itemCount cut-off")
            self._drop(cplan, offer.id, drop)

    def _group(
        self, group: Sequence[CriterionPlan], need: int, ranked: dict[str, float | None]
    ) -> list[tuple[Offer, float | None]]:
        for cplan in group:
            if self.trace is not None:
                for oid, reason, detail in cplan.dropped:
                    self._drop(cplan, oid, (reason, detail))
        if len(group) == 1 and group[0].criterion.order != enums.ORDER_FORMULA:
            gate = self._criterion_gate(group[0])
            if gate is False:
                return []
            if group[0].criterion.order == enums.ORDER_AI:
                return self._strategy_walk(group[0], gate is True, need, ranked)
            return self._static_walk(group[0], gate is True, need, ranked)
        # General case: every candidate of every criterion in the group is scored; an offer
        # in several criteria keeps its best score (Adobe's worked example).
        best: dict[str, tuple[float, float | None, Offer]] = {}
        checked: dict[tuple[str, bool], _Drop | None] = {}
        for cplan in group:
            gate = self._criterion_gate(cplan)
            if gate is False:
                continue
            per_offer = gate is True
            crit = cplan.criterion
            formula = None
            by_strategy = crit.order == enums.ORDER_AI
            eligible: list[Offer] = []  # a strategy ranks the eligible offers all at once
            if crit.order == enums.ORDER_FORMULA:
                formula = self.snapshot.formulas.get(crit.formula_id or "")
                if formula is None or formula.expr is None:
                    self.event("formula_missing", criterion=crit.index, formula=crit.formula_id)
            for priority, tier in cplan.tiers:
                for offer in tier:
                    if offer.id in ranked:
                        self._drop(cplan, offer.id, ("already_ranked", "by an earlier group"))
                        continue
                    ck = (offer.id, per_offer)
                    if per_offer or ck not in checked:
                        checked[ck] = self.check(offer, cplan, per_offer)
                    drop = checked[ck]
                    if drop is not None:
                        self._drop(cplan, offer.id, drop)
                        continue
                    if by_strategy:
                        eligible.append(offer)
                        continue
                    if crit.order == enums.ORDER_FORMULA:
                        score = (
                            self.ev.score(formula, offer.id, offer.view)
                            if formula is not None
                            else None
                        )
                        value = rank_value(score)
                    else:
                        score, value = None, float(priority)
                    prev = best.get(offer.id)
                    if prev is None or value > prev[0]:
                        best[offer.id] = (value, score, offer)
            if eligible:
                for offer, score in self._by_strategy(cplan, eligible):
                    value = rank_value(score)
                    prev = best.get(offer.id)
                    if prev is None or value > prev[0]:
                        best[offer.id] = (value, score, offer)
        ordered = order_scored([(v, (o, s)) for v, s, o in best.values()], self.rng)
        return ordered

    # -- ranking by a strategy (engine/bandit.py) ---------------------------------------------

    def _arm(self, cplan: CriterionPlan) -> tuple[RankingStrategy, RankingChoice] | None:
        """The criterion's strategy and the arm this request is served by (the holdout drawn
        from the request's rng); None, and a trace event, when the snapshot lacks it."""
        crit = cplan.criterion
        strategy = self.snapshot.strategies.get(crit.strategy_id or "")
        if strategy is None:  # an older snapshot, or an engine caller's own catalog
            self.event("strategy_missing", criterion=crit.index, strategy=crit.strategy_id)
            return None
        key = "" if strategy.type == enums.STRATEGY_AUTO else self.context_keys.get(strategy.id)
        if key is None:
            key = self.context_keys[strategy.id] = bandit.context_key(
                strategy, self.profile, self.context
            )
        arm = bandit.MODEL
        if strategy.holdout and self.rng.random() * 100.0 < strategy.holdout:
            arm = bandit.HOLDOUT
        if self.trace is not None:
            self.event(
                "ranking_strategy",
                criterion=crit.index,
                strategy=strategy.id,
                type=strategy.type,
                arm=arm,
                contextKey=key,
                candidates=len(cplan.flat),
            )
        return strategy, RankingChoice(strategy.id, arm, key)

    def _world(
        self, cplan: CriterionPlan, strategy: RankingStrategy, choice: RankingChoice
    ) -> tuple[bandit.Table, list[float], list[int]]:
        """The posterior draws this request ranks by (one of the table's worlds)."""
        table = self.snapshot.bandit_tables.get(
            cplan,  # the snapshot's memoised plan of this criterion in this placement
            strategy,
            self.ranking.get(strategy.id, bandit.EMPTY),
            choice.context_key,
            cplan.flat,
        )
        scores, order = table.world(int(self.rng.random() * bandit.WORLDS))
        if self.trace is not None:
            for i in order:
                alpha, beta = table.params[i]
                self.event(
                    "sampled",
                    criterion=cplan.criterion.index,
                    offer=cplan.flat[i].id,
                    score=scores[i],
                    alpha=alpha,
                    beta=beta,
                )
        return table, scores, order

    def _strategy_walk(
        self, cplan: CriterionPlan, per_offer: bool, need: int, ranked: dict[str, float | None]
    ) -> list[tuple[Offer, float | None]]:
        """A single criterion ranked by a strategy: walk its candidates best draw first (the
        model arm) or in uniformly random order (the holdout), and stop once `need` new
        eligible offers are found."""
        flat = cplan.flat
        picked = self._arm(cplan)
        walk: Iterator[int]
        scores: list[float] | None = None  # the holdout scores none
        if picked is None or picked[1].arm == bandit.HOLDOUT:
            walk = random_order(range(len(flat)), self.rng)
        else:
            _table, scores, order = self._world(cplan, *picked)
            walk = iter(order)
        out: list[tuple[Offer, float | None]] = []
        tracing = self.trace is not None
        seen: set[str] = set()  # (trace only)
        for i in walk:
            offer = flat[i]
            if tracing:
                seen.add(offer.id)
            if offer.id in ranked:
                self._drop(cplan, offer.id, ("already_ranked", "by an earlier group"))
                continue
            drop = self.check(offer, cplan, per_offer)
            if drop is None:
                out.append((offer, scores[i] if scores is not None else None))
                if len(out) >= need:
                    break
            elif tracing:
                self._drop(cplan, offer.id, drop)
        if tracing and len(seen) < len(flat):
            self._trace_rest(cplan, flat, per_offer, ranked, seen)
        if picked is not None:
            for offer, _score in out:
                self.ranked_by.setdefault(offer.id, picked[1])
        return out

    def _by_strategy(
        self, cplan: CriterionPlan, offers: Sequence[Offer]
    ) -> list[tuple[Offer, float | None]]:
        """Scores of a criterion's eligible offers when it is ranked together with others of
        the same rank.priority: the draws of the model arm, none on the holdout (so they are
        ordered uniformly at random)."""
        picked = self._arm(cplan)
        if picked is None:
            return [(offer, None) for offer in offers]
        for offer in offers:
            self.ranked_by.setdefault(offer.id, picked[1])
        if picked[1].arm == bandit.HOLDOUT:
            return [(offer, None) for offer in offers]
        table, scores, _order = self._world(cplan, *picked)
        return [(offer, scores[table.positions[offer.id]]) for offer in offers]

    # -- one scope ---------------------------------------------------------------------------

    def scope(self, i: int, plan: ScopePlan, count: int) -> ScopeResult:
        self.scope_index = i
        self.capped = {}
        self.ranked_by = {}
        self.activity_id = plan.decision.id
        self.placement_id = pid = plan.placement.id
        ranked: dict[str, float | None] = {}
        order: list[Offer] = []
        for g, group in enumerate(plan.groups):
            need = count - len(order)
            if need <= 0:
                self.event(
                    "group_not_evaluated",
                    group=g,
                    criteria=[c.criterion.index for c in group],
                    reason="itemCount already filled",
                )
                continue
            for offer, score in self._group(group, need, ranked):
                if offer.id not in ranked:  # later groups never displace earlier ones
                    ranked[offer.id] = score
                    order.append(offer)
        chosen = order[:count]
        if self.trace is not None:
            for pos, offer in enumerate(order, 1):
                self.event(
                    "ranked",
                    offer=offer.id,
                    position=pos,
                    score=ranked[offer.id],
                    priority=offer.priority,
                    selected=pos <= count,
                )
        options: list[ChosenOption] = []
        for offer in chosen:
            options.append(
                ChosenOption(
                    offer.id, offer.etag, offer.body, ranked[offer.id], offer.representations[pid]
                )
            )
            self.used.setdefault(offer.id, []).append((self.activity_id, pid))
            for rule in self.caps.get(offer.id, ()):
                if rule.counts_decisions and applies(rule, pid, self.profile_key):
                    key = self._cap_key(rule)
                    self.pending[key] = self.pending.get(key, 0) + 1
                    self.consumption.append(CapConsumption(key, rule.limit))
        fallback = None
        if not options:
            fb = self.snapshot.fallbacks.get(plan.decision.fallback_id or "")
            if fb is not None:
                fallback = FallbackOption(fb.id, fb.etag, fb.body, fb.representations.get(pid))
            if self.trace is not None:
                why = (
                    "no option qualified"
                    if plan.groups
                    # A criterion covers the placements it lists (or every one, listing none).
                    else f"no criterion of the decision covers placement {pid}"
                )
                self.event(
                    "fallback",
                    fallback=fallback.id if fallback else None,
                    detail=why
                    + ("" if fallback else "; the decision has no (known) fallback offer"),
                )
        ranking = None
        if self.ranked_by:
            for offer in chosen:
                ranking = self.ranked_by.get(offer.id)
                if ranking is not None:
                    break
        return ScopeResult(
            plan.decision, plan.placement, options, fallback, tuple(self.capped), ranking
        )


def _describe(constraint: ProfileConstraint) -> str:
    if constraint.is_rule:
        return "rule " + ", ".join(constraint.rule_ids) + " false"
    segs = ", ".join(f"{ns}:{sid}" for ns, sid in constraint.segments)
    return f"{constraint.type} [{segs}] not satisfied"


def decide(
    snapshot: Snapshot,
    request: DecisionRequest,
    profile: Mapping[str, Any],
    counters: Mapping[CounterKey, int],
    *,
    now: datetime,
    rng: random.Random,
    known_rules: Mapping[str, bool] | None = None,
    ranking: RankingStats | None = None,
) -> DecisionResult:
    """Decide every scope of `request` (see docs/decisioning.md).

    `ranking`: the evidence of the sandbox's ranking strategies (engine/bandit.py), read like
    the capping counters; None or a missing strategy means no evidence yet (every offer has
    the uniform prior).

    `known_rules`: rule id -> value for offer-independent rules already evaluated for this
    profile (batch decisioning computes them vectorised); they must equal what the rule's
    compiled closure answers, and the others are evaluated here as usual."""
    if len(request.scopes) > MAX_SCOPES:
        raise DecisionError(
            422,
            "Too many decision scopes",
            f"at most {MAX_SCOPES} propositionRequests are allowed, got {len(request.scopes)}",
            "/xdm:propositionRequests",
        )
    now_utc = as_utc(now)
    now_ts = now_utc.timestamp()
    resolved = [_resolve(snapshot, i, s, now_ts) for i, s in enumerate(request.scopes)]
    wanted = sum(count for _plan, count in resolved)
    if wanted > MAX_OPTIONS_PER_RESPONSE:
        raise DecisionError(
            422,
            "Too many offers requested",
            f"at most {MAX_OPTIONS_PER_RESPONSE} offers per response; the scopes ask for "
            f"{wanted} (each its xdm:itemCount, else its placement's itemCount)",
            "/xdm:propositionRequests",
        )
    run = _Run(
        snapshot,
        request,
        profile,
        counters,
        now_utc,
        rng,
        _dedup_flags(request, [p for p, _ in resolved]),
        known_rules,
        ranking,
    )
    scopes = [run.scope(i, plan, count) for i, (plan, count) in enumerate(resolved)]
    return DecisionResult(scopes, run.consumption, run.trace)


def capping_keys(snapshot: Snapshot, request: DecisionRequest, now: datetime) -> list[CounterKey]:
    """Every counter key decide() may read for this request (sorted, unique), so the caller can
    fetch them in one round trip. Scopes that decide() would reject contribute nothing."""
    buckets = BucketCache(as_utc(now))
    profile = profile_part(request.profile_key) if request.profile_key is not None else None
    keys: set[CounterKey] = set()
    for scope in request.scopes[:MAX_SCOPES]:
        decision = snapshot.decisions.get(scope.activity_id)
        placement = snapshot.placements.get(scope.placement_id)
        if decision is None or placement is None:
            continue
        for rule, entity in snapshot.plan(decision, placement).cap_rules:
            if rule.per_profile and profile is None:
                continue  # per-profile caps need an identity (see capping.applies)
            keys.add(compose_key(rule, profile or "", entity, buckets.label(rule)))
    return sorted(keys)
