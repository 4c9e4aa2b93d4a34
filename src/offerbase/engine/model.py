"""Request, result and error types of the decisioning engine.

Plain frozen dataclasses: they cross the boundary to the HTTP layer (and, later, to batch
workers), so they hold only builtins and catalog domain objects, and are picklable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from offerbase.catalog import Decision, Placement

# Offers per scope: one limit for a placement's itemCount and a request's.
from offerbase.catalog.specs import MAX_ITEM_COUNT as MAX_ITEM_COUNT

# A capping counter key is a plain string (see capping.py for the format): it is hashable,
# orderable, and can be used verbatim as a database primary key or a Redis key.
CounterKey = str

MAX_SCOPES = 30  # propositionRequests per decision request
# Adobe's guardrail: offers per response, all scopes together (each scope's xdm:itemCount, else
# its placement's itemCount, else 1).
MAX_OPTIONS_PER_RESPONSE = 100


# The context entry that holds a request's experience events (a list of XDM objects), which
# rules read as `xEvent` (Adobe's Edge rules do); the Edge endpoints put the event's `xdm` there.
EXPERIENCE_EVENTS = "xEvent"


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    activity_id: str
    placement_id: str
    item_count: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    scopes: Sequence[ScopeRequest]
    # None = not given in the request: the requested placements' allowDuplicatePlacements decide.
    allow_duplicates_across_activities: bool | None = None
    allow_duplicates_across_placements: bool | None = None
    # context type (e.g. "_xdm.context.additionalParameters;version=1") -> its data object
    context: Mapping[str, Any] = field(default_factory=dict)
    # stable identity used in per-profile capping counters, e.g. "Email:123@abc.com"
    profile_key: str | None = None
    trace: bool = False


@dataclass(frozen=True, slots=True)
class ChosenOption:
    id: str
    etag: Any
    body: Mapping[str, Any]
    # xdm:score: the ranking formula's score, or the ranking strategy's sampled score; None when
    # ranked by priority, by a strategy's holdout, or when there is no score
    score: float | None
    # the offer's representation for the requested placement (channel, placement, components)
    representation: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FallbackOption:
    id: str
    etag: Any
    body: Mapping[str, Any]
    # the fallback's representation for the placement, or None if it has none (still returned:
    # the fallback is presented unconditionally, the HTTP layer decides how to render it)
    representation: Mapping[str, Any] | None


class RankingChoice(NamedTuple):
    """How a ranking strategy served a scope (recorded as the decision event's
    `offerbase:ranking`, which the learner attributes feedback with). A NamedTuple: one is
    made per ranked criterion on the hot path, and a frozen dataclass is slower to build."""

    strategy_id: str
    arm: str  # "model" (Thompson sampling) | "holdout" (uniformly random control)
    context_key: str  # bandit.context_key: "" for auto-optimization


@dataclass(frozen=True, slots=True)
class ScopeResult:
    activity: Decision
    placement: Placement
    options: list[ChosenOption]
    fallback: FallbackOption | None
    # Offers this scope evaluated and excluded because a cap was reached, in the order they
    # were met, each once (reports' capHits). Only candidates the decision itself evaluated:
    # those a trace checks past the cut-off are not, so traced and untraced results agree.
    capped: tuple[str, ...] = ()
    # The strategy that ranked the scope's first option ranked by one, with its arm; None when
    # no option came from a ranking strategy.
    ranking: RankingChoice | None = None


@dataclass(frozen=True, slots=True)
class CapConsumption:
    """One counter that proposing the chosen options increments (by 1), with its limit.

    The caller increments it atomically only while the stored value is below `limit`.
    """

    key: CounterKey
    limit: int


@dataclass(frozen=True, slots=True)
class DecisionResult:
    scopes: list[ScopeResult]
    consumption: list[CapConsumption]
    trace: list[dict[str, Any]] | None = None


class DecisionError(Exception):
    """A request the engine cannot answer; maps onto an RFC 7807 problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        pointer: str | None = None,
        scope: int | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.pointer = pointer
        # The index of the request scope at fault, when one is (Edge answers the other scopes).
        self.scope = scope

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions with keyword-less custom __init__ need this to survive pickling.
        return (DecisionError, (self.status, self.title, self.detail, self.pointer, self.scope))
