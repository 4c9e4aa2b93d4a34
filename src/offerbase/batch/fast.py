"""The per-row fast path of a batch job: `decide()`'s answer without its per-offer checks.

A batch job decides one request shape for many profiles. When that shape is simple enough,
most of what `decide()` does per row is the same for every row: resolving the scope, the
offers' dates, the global caps (their counters are fixed while a partition is decided), and,
once the rules are known per row (vectorised: batch/vector.py), each offer's eligibility. Rows
with the same vector of rule values (a "pattern") share all of that, so it is computed once
per pattern and partition; what stays per row is what truly differs:

* the random tie-breaks: the priority walk is replayed with the row's RNG, drawing exactly
  what `_static_walk` draws (engine/ranking.py `random_order`), so the same offers come out;
* per-profile caps: checked against the row's own counters when the walk reaches the offer.

`fast_plan(job, snapshot)` says whether a job qualifies, else None and every row takes the
general path (`decide()` itself, with the rule values as `known_rules`). It qualifies with one
scope that `decide()` accepts, every ranking group a single criterion ranked by priority (no
formula, no AI), and every constraint either none or decision rules that do not read the offer,
the context or parameters and have a vectorised form (vector.compile_rule). The engine stays
the reference: tests/batch/test_batch_fast.py checks both paths give equal DecisionResults on
generated catalogs and profiles (nulls, caps and ties included).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from offerbase.catalog import NO_CONSTRAINT, Offer, ProfileConstraint, enums
from offerbase.engine import (
    ChosenOption,
    DecisionResult,
    FallbackOption,
    ScopeRequest,
    Snapshot,
)
from offerbase.engine.capping import (
    CapRule,
    applies,
    as_utc,
    bucket,
    compose_key,
    entity_part,
    profile_part,
)
from offerbase.engine.model import MAX_ITEM_COUNT, CapConsumption, ScopeResult
from offerbase.engine.ranking import random_order
from offerbase.engine.snapshot import ScopePlan

# Per offer and pattern (see `_Decider._statuses`):
_SKIP = 0  # outside its dates or a rule false (after the caps): never proposed
_CAPPED = 1  # a global cap reached: excluded, and counted in ScopeResult.capped
_OK = 2  # eligible
_PROFILE_OK = 3  # eligible unless a per-profile cap is reached for this row
_PROFILE_SKIP = 4  # not eligible, but a per-profile cap reached first makes it "capped"
# Patterns remembered per partition; beyond, statuses are computed per row (still exact).
MAX_PATTERNS = 4096


# (offer id -> status, per group its walk: a tier, or RNG draws to make; None: skipped)
_Pattern = tuple[dict[str, int], list[list[tuple[Offer, ...] | int] | None]]


@dataclass(frozen=True)
class _Group:
    gate: tuple[int, ...] | None  # the criterion constraint's rules (indices), None: no gate
    tiers: tuple[tuple[Offer, ...], ...]  # highest priority first, as the engine walks them


@dataclass(frozen=True)
class FastPlan:
    """What every row of one job shares (see the module docstring)."""

    plan: ScopePlan
    count: int
    rule_ids: tuple[str, ...]  # the rules of the pattern, in a fixed order
    groups: tuple[_Group, ...]
    offer_rules: Mapping[str, tuple[int, ...] | None]  # None: the offer has no constraint
    dated: frozenset[str]  # offers outside their dates at the job's decision time
    # per capped offer: its rules that apply in the placement, with each key's constant parts
    cap_parts: Mapping[str, tuple[tuple[CapRule, str, str], ...]]

    def decider(self, snapshot: Snapshot, counters: Mapping[str, int]) -> _Decider:
        """The per-partition state: `counters` are those every row of the partition sees."""
        return _Decider(self, snapshot, counters)


class _NotFast(Exception):
    """The job needs `decide()` itself for every row."""


def _rule_indices(
    constraint: ProfileConstraint, index: dict[str, int], snapshot: Snapshot
) -> tuple[int, ...] | None:
    """The constraint's rules as pattern indices; None for no constraint; raises _NotFast when
    the fast path cannot answer it (segments, a rule reading the offer or without vector
    form)."""
    from offerbase.batch.vector import compile_rule  # polars: imported where it is used

    if constraint is NO_CONSTRAINT or (
        not constraint.is_rule and constraint.type == enums.CONSTRAINT_NONE
    ):
        return None
    if not constraint.is_rule:
        raise _NotFast
    out = []
    for rid in constraint.rule_ids:
        compiled = snapshot.rules.get(rid)
        if compiled is not None and compiled.expr is not None:
            if compiled.uses_offer or compiled.params or compile_rule(compiled.expr) is None:
                raise _NotFast
        out.append(index.setdefault(rid, len(index)))
    return tuple(out)


def fast_plan(scopes: Sequence[ScopeRequest], snapshot: Snapshot, now: datetime) -> FastPlan | None:
    """The job's fast plan, or None when a row needs `decide()` itself."""
    if len(scopes) != 1:
        return None  # de-duplication and pending counts across scopes: the engine's job
    scope = scopes[0]
    decision = snapshot.decisions.get(scope.activity_id)
    placement = snapshot.placements.get(scope.placement_id)
    now_ts = as_utc(now).timestamp()
    if (
        decision is None
        or placement is None
        or decision.status != enums.DECISION_LIVE
        or (decision.start is not None and now_ts < decision.start)
        or (decision.end is not None and now_ts > decision.end)
    ):
        return None  # decide() raises the error
    count = scope.item_count if scope.item_count is not None else placement.item_count
    plan = snapshot.plan(decision, placement)
    if count < 1 or count > MAX_ITEM_COUNT:
        return None
    index: dict[str, int] = {}
    groups = []
    offer_rules: dict[str, tuple[int, ...] | None] = {}
    dated: set[str] = set()
    cap_parts: dict[str, tuple[tuple[CapRule, str, str], ...]] = {}
    pid = placement.id
    for group in plan.groups:
        # Priority ranking only: a formula or an AI ranking strategy goes through decide().
        if len(group) != 1 or group[0].criterion.order != enums.ORDER_STATIC:
            return None
        try:
            gate = _rule_indices(group[0].criterion.constraint, index, snapshot)
        except _NotFast:
            return None
        for _priority, tier in group[0].tiers:
            for offer in tier:
                try:
                    offer_rules[offer.id] = _rule_indices(offer.constraint, index, snapshot)
                except _NotFast:
                    return None
                if (offer.start is not None and now_ts < offer.start) or (
                    offer.end is not None and now_ts > offer.end
                ):
                    dated.add(offer.id)
                caps = snapshot.caps.get(offer.id, ())
                if caps:
                    cap_parts[offer.id] = tuple(
                        (rule, entity_part(rule, pid), bucket(rule, as_utc(now))) for rule in caps
                    )
        groups.append(_Group(gate, tuple(tier for _p, tier in group[0].tiers)))
    return FastPlan(
        plan,
        count,
        tuple(index),
        tuple(groups),
        offer_rules,
        frozenset(dated),
        cap_parts,
    )


class _Decider:
    """One partition's decisions on the fast path."""

    def __init__(self, fast: FastPlan, snapshot: Snapshot, counters: Mapping[str, int]) -> None:
        self.fast = fast
        self.counters = counters
        self.pid = fast.plan.placement.id
        self.decision = fast.plan.decision
        fb = snapshot.fallbacks.get(self.decision.fallback_id or "")
        self.fallback = (
            None
            if fb is None
            else FallbackOption(fb.id, fb.etag, fb.body, fb.representations.get(self.pid))
        )
        # global caps: the same answer for every row of the partition
        self.global_capped: set[str] = set()
        self.profile_rules: dict[str, tuple[tuple[CapRule, str, str], ...]] = {}
        for offer_id, parts in fast.cap_parts.items():
            per_profile = []
            for rule, entity, label in parts:
                if not applies(rule, self.pid, "-"):  # placements only (see _profile_capped)
                    continue
                if rule.per_profile:
                    per_profile.append((rule, entity, label))
                elif self.counters.get(compose_key(rule, "", entity, label), 0) >= rule.limit:
                    self.global_capped.add(offer_id)
            if per_profile:
                self.profile_rules[offer_id] = tuple(per_profile)
        self.statuses: dict[tuple[bool, ...], _Pattern] = {}

    def _statuses(self, pattern: tuple[bool, ...]) -> _Pattern:
        """What rows of this pattern share: offer id -> status (module constants, in the order
        of `_Run.check`: dates, caps, then the offer's rules), and per group its walk, each
        tier or, for a run of tiers where nothing can be found, the number of RNG draws
        `random_order` makes over them (one per offer but the last of each tier)."""
        got = self.statuses.get(pattern)
        if got is not None:
            return got
        fast = self.fast
        status: dict[str, int] = {}
        for offer_id, rules in fast.offer_rules.items():
            if offer_id in fast.dated:
                status[offer_id] = _SKIP
            elif offer_id in self.global_capped:
                status[offer_id] = _CAPPED
            else:
                ok = rules is None or all(pattern[i] for i in rules)
                if offer_id in self.profile_rules:
                    status[offer_id] = _PROFILE_OK if ok else _PROFILE_SKIP
                else:
                    status[offer_id] = _OK if ok else _SKIP
        walks: list[list[tuple[Offer, ...] | int] | None] = []
        for group in fast.groups:
            if group.gate is not None and not all(pattern[i] for i in group.gate):
                walks.append(None)  # the criterion's rule is false: the group is skipped
                continue
            walk: list[tuple[Offer, ...] | int] = []
            for tier in group.tiers:
                if any(status[o.id] != _SKIP for o in tier):
                    walk.append(tier)
                elif walk and isinstance(walk[-1], int):
                    walk[-1] += len(tier) - 1
                else:
                    walk.append(len(tier) - 1)
            walks.append(walk)
        got = (status, walks)
        if len(self.statuses) < MAX_PATTERNS:
            self.statuses[pattern] = got
        return got

    def _profile_capped(self, offer_id: str, profile: str | None) -> bool:
        if profile is None:  # a per-profile cap needs an identity (capping.applies)
            return False
        counters = self.counters
        for rule, entity, label in self.profile_rules[offer_id]:
            if counters.get(compose_key(rule, profile, entity, label), 0) >= rule.limit:
                return True
        return False

    def decide(
        self, pattern: tuple[bool, ...], profile_key: str | None, rng: random.Random
    ) -> DecisionResult:
        """What `decide()` answers for a row of this pattern (no trace)."""
        fast = self.fast
        status, walks = self._statuses(pattern)
        profile = None if profile_key is None else profile_part(profile_key)
        rand = rng.random
        ranked: dict[str, None] = {}
        order: list[Offer] = []
        capped: dict[str, None] = {}
        count = fast.count
        for walk in walks:
            need = count - len(order)
            if need <= 0 or walk is None:
                continue
            out: list[Offer] = []
            for tier in walk:  # engine/decide.py _static_walk, without the trace
                if len(out) >= need:
                    break
                if isinstance(tier, int):
                    for _ in range(tier):
                        rand()
                    continue
                for offer in random_order(tier, rng):
                    if len(out) >= need:
                        break
                    oid = offer.id
                    if oid in ranked:
                        continue
                    s = status[oid]
                    if s == _SKIP:
                        continue
                    if s == _CAPPED:
                        capped[oid] = None
                        continue
                    if s >= _PROFILE_OK and self._profile_capped(oid, profile):
                        capped[oid] = None
                        continue
                    if s != _PROFILE_SKIP:
                        out.append(offer)
            for offer in out:
                if offer.id not in ranked:
                    ranked[offer.id] = None
                    order.append(offer)
        pid = self.pid
        options = []
        consumption: list[CapConsumption] = []
        for offer in order[:count]:
            options.append(
                ChosenOption(offer.id, offer.etag, offer.body, None, offer.representations[pid])
            )
            for rule, entity, label in fast.cap_parts.get(offer.id, ()):
                if rule.counts_decisions and applies(rule, pid, profile_key):
                    key = compose_key(rule, profile or "", entity, label)
                    consumption.append(CapConsumption(key, rule.limit))
        scope = ScopeResult(
            self.decision,
            fast.plan.placement,
            options,
            None if options else self.fallback,
            tuple(capped),
        )
        return DecisionResult([scope], consumption, None)
