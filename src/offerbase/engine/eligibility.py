"""Profile constraints (offer-level selectionConstraint, criterion-level profileConstraint).

A constraint is parsed once into `Constraint`; at request time `Evaluator` answers it for the
profile, memoising every decision rule: once per request for a rule that does not read the
offer, once per (rule, offer) for a rule that does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# Audience membership statuses that count as "member" (XDM segmentMembership): realized and
# existing do, exited does not.
_MEMBER_STATUSES = frozenset({"realized", "existing"})
DEFAULT_NAMESPACE = "ups"


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
    uses_offer: bool
    # definedOn parameters other than profile/offer: (name, context type) -> bound from context
    params: tuple[tuple[str, str], ...]
    error: str | None = None


_OFFER_ROOT = re.compile(r"(?<![\w.@$])offer\b")


def depends_on_offer(expr: object, source: str) -> bool:
    """Whether an expression reads the candidate offer.

    Uses the compiled object's own answer when it has one; otherwise a conservative textual
    test (a false positive only costs extra per-offer evaluations, never a wrong answer).
    """
    for attr in ("uses_offer", "references_offer", "depends_on_offer"):
        value = getattr(expr, attr, None)
        if isinstance(value, bool):
            return value
        if callable(value):
            result = value()
            if isinstance(result, bool):
                return result
    for attr in ("roots", "variables", "free_variables"):
        value = getattr(expr, attr, None)
        if isinstance(value, set | frozenset | tuple | list):
            return "offer" in value
    return bool(_OFFER_ROOT.search(source))


@dataclass(frozen=True, slots=True)
class Constraint:
    kind: str  # none | rule | anySegments | allSegments | unsupported
    rule_ids: tuple[str, ...] = ()
    segments: tuple[tuple[str, str], ...] = ()  # (namespace code, segment id)
    raw_type: str = "none"


NO_CONSTRAINT = Constraint("none")


def _segment(item: Any) -> tuple[str, str] | None:
    if isinstance(item, str):
        return (DEFAULT_NAMESPACE, item)
    if not isinstance(item, Mapping):
        return None
    seg_id = item.get("_id", item.get("id", item.get("xdm:id")))
    if not isinstance(seg_id, str):
        return None
    ns = item.get("namespace")
    code = ns.get("code") if isinstance(ns, Mapping) else None
    return (code if isinstance(code, str) and code else DEFAULT_NAMESPACE, seg_id)


def _rule_id(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        for key in ("id", "eligibilityRule", "rule"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def parse_constraint(raw: Any) -> Constraint:
    """Parse a selectionConstraint / profileConstraint object; missing type means `none`."""
    if not isinstance(raw, Mapping):
        return NO_CONSTRAINT
    ctype = raw.get("profileConstraintType") or "none"
    if ctype == "none":
        return NO_CONSTRAINT
    if ctype == "eligibilityRule":
        rid = raw.get("eligibilityRule")
        return Constraint("rule", (rid,) if isinstance(rid, str) else ("",), raw_type=ctype)
    if ctype == "rules":
        # XDM names no field for the rule list ("several rules ... all must be true"). Accept
        # `rules`, `eligibilityRules` (ids or objects with an id) and a single `eligibilityRule`.
        ids: list[str] = []
        if isinstance(raw.get("eligibilityRule"), str):
            ids.append(raw["eligibilityRule"])
        for key in ("rules", "eligibilityRules"):
            items = raw.get(key)
            if isinstance(items, Sequence) and not isinstance(items, str):
                ids.extend(r for r in map(_rule_id, items) if r is not None)
        return Constraint("rule", tuple(ids), raw_type=ctype)
    if ctype in ("anySegments", "allSegments"):
        items = raw.get("segmentIdentities", raw.get("segments", ()))
        segs: list[tuple[str, str]] = []
        if isinstance(items, Sequence) and not isinstance(items, str):
            segs = [s for s in map(_segment, items) if s is not None]
        return Constraint(ctype, segments=tuple(segs), raw_type=ctype)
    return Constraint("unsupported", raw_type=str(ctype))


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
    ) -> None:
        self._rules = rules
        self._profile = profile
        self._context = context
        self._now = now
        self._memo: dict[Any, Any] = {}
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

    def offer_independent(self, constraint: Constraint) -> bool:
        """Whether the constraint's answer is the same for every offer."""
        if constraint.kind != "rule":
            return True
        for rid in constraint.rule_ids:
            compiled = self._rules.get(rid)
            if compiled is not None and compiled.uses_offer:
                return False
        return True

    def check(self, constraint: Constraint, offer_id: str | None, offer_view: Any) -> bool:
        kind = constraint.kind
        if kind == "none":
            return True
        if kind == "rule":
            if not constraint.rule_ids:
                return False
            for rid in constraint.rule_ids:
                if not self.rule(rid, offer_id, offer_view):
                    return False
            return True
        if kind == "anySegments":
            return any(is_member(self._profile, ns, sid) for ns, sid in constraint.segments)
        if kind == "allSegments":
            segs = constraint.segments
            return bool(segs) and all(is_member(self._profile, ns, sid) for ns, sid in segs)
        return False  # unsupported constraint types exclude rather than silently admit
