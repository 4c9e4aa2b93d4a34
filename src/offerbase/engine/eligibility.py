"""Profile constraints (offer-level selectionConstraint, criterion-level profileConstraint).

At request time `Evaluator` answers a constraint (``catalog.ProfileConstraint``) for the
profile, memoising every decision rule: once per request for a rule that does not read the
offer, once per (rule, offer) for a rule that does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from offerbase.catalog import ProfileConstraint, enums

# Audience membership statuses that count as "member" (XDM segmentMembership): realized and
# existing do, exited does not.
_MEMBER_STATUSES = frozenset({"realized", "existing"})
_NONE = enums.CONSTRAINT_NONE
_ANY_SEGMENTS = enums.SEGMENT_CONSTRAINT_ANY


class Compiled(Protocol):
    def evaluate(
        self,
        profile: Any,
        *,
        offer: Any = None,
        context: Any = None,
        params: Any = None,
        now: Any = None,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A decision rule or ranking formula compiled once at snapshot build."""

    id: str
    expr: Compiled | None  # None when the source failed to compile (error says why)
    uses_offer: bool  # the expression reads the candidate offer (pql Expression.reads_offer)
    # definedOn inputs besides profile/offer: (name, context type or None), bound from context
    params: tuple[tuple[str, str | None], ...]
    error: str | None = None


def is_member(profile: Mapping[str, Any], namespace: str, segment_id: str) -> bool:
    membership = profile.get("segmentMembership")
    if not isinstance(membership, Mapping):
        return False
    by_ns = membership.get(namespace)
    if not isinstance(by_ns, Mapping):
        return False
    entry = by_ns.get(segment_id)
    if isinstance(entry, Mapping):
        return entry.get("status") in _MEMBER_STATUSES
    return False


def bind_params(rule: CompiledRule, context: Mapping[str, Any]) -> dict[str, Any] | None:
    """Values for a formula's extra definedOn parameters, looked up by context type."""
    if not rule.params:
        return None
    bound: dict[str, Any] = {}
    for name, ctx_type in rule.params:
        if ctx_type is None:  # definedOn gives no schema to look the input up by
            bound[name] = None
            continue
        value = context.get(ctx_type)
        if value is None:
            base = ctx_type.split(";", 1)[0]
            for key, data in context.items():
                if key.split(";", 1)[0] == base:
                    value = data
                    break
        bound[name] = value
    return bound


class Evaluator:
    """Per-request answers to constraints, with the rule memo and the evaluation log."""

    __slots__ = ("_context", "_memo", "_now", "_profile", "_rules", "on_error")

    def __init__(
        self,
        rules: Mapping[str, CompiledRule],
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        now: datetime,
        known: Mapping[str, bool] | None = None,
    ) -> None:
        self._rules = rules
        self._profile = profile
        self._context = context
        self._now = now
        # `known`: values of offer-independent rules computed elsewhere for this profile (the
        # batch path evaluates them vectorised over many profiles); the memo starts with them.
        self._memo: dict[Any, Any] = dict(known) if known else {}
        self.on_error: Callable[[str, str | None, str], None] | None = None

    def rule(self, rule_id: str, offer_id: str | None, offer_view: Any) -> bool:
        """The value of one rule; False when unknown, broken, non-boolean or raising."""
        memo = self._memo
        # Offer-independent results are stored under the bare rule id (str keys); per-offer
        # results under (rule id, offer id) tuples, so the common case is one dict lookup.
        got = memo.get(rule_id)
        if got is not None:
            return got is True
        compiled = self._rules.get(rule_id)
        if compiled is None or compiled.expr is None:
            return False
        key: Any = rule_id
        if compiled.uses_offer:
            key = (rule_id, offer_id)
            got = memo.get(key)
            if got is not None:
                return got is True
        try:
            value = compiled.expr.evaluate(
                self._profile,
                offer=offer_view if compiled.uses_offer else None,
                context=self._context,
                params=bind_params(compiled, self._context) if compiled.params else None,
                now=self._now,
            )
            result = value is True
        except Exception as exc:  # a rule that fails at run time excludes, never aborts
            result = False
            if self.on_error is not None:
                self.on_error(rule_id, offer_id, repr(exc))
        memo[key] = result
        return result

    def score(self, formula: CompiledRule, offer_id: str, offer_view: Any) -> float | None:
        """A ranking formula's score for one offer; None (ranks last) when null or failing."""
        key = ("formula", formula.id, offer_id)
        if key in self._memo:
            cached: float | None = self._memo[key]
            return cached
        result: float | None = None
        if formula.expr is not None:
            try:
                value = formula.expr.evaluate(
                    self._profile,
                    offer=offer_view,
                    context=self._context,
                    params=bind_params(formula, self._context),
                    now=self._now,
                )
                if isinstance(value, int | float) and not isinstance(value, bool):
                    number = float(value)
                    result = number if number == number else None  # NaN ranks like null
            except Exception as exc:  # a failing formula ranks the offer last, never aborts
                if self.on_error is not None:
                    self.on_error(formula.id, offer_id, repr(exc))
        self._memo[key] = result
        return result

    def offer_independent(self, constraint: ProfileConstraint) -> bool:
        """Whether the constraint's answer is the same for every offer."""
        if not constraint.is_rule:
            return True
        for rid in constraint.rule_ids:
            compiled = self._rules.get(rid)
            if compiled is not None and compiled.uses_offer:
                return False
        return True

    def check(self, constraint: ProfileConstraint, offer_id: str | None, offer_view: Any) -> bool:
        if constraint.is_rule:  # the common case first: this runs for every candidate
            for rid in constraint.rule_ids:
                if not self.rule(rid, offer_id, offer_view):
                    return False
            return True
        ctype = constraint.type
        if ctype == _NONE:
            return True
        segments = constraint.segments
        if ctype == _ANY_SEGMENTS:
            return any(is_member(self._profile, ns, sid) for ns, sid in segments)
        return all(is_member(self._profile, ns, sid) for ns, sid in segments)
