"""Offerbase decisioning engine: pure, picklable, no I/O (docs/decisioning.md says what it decides,
docs/development.md "The engine's interface" how to call it).

The HTTP layer calls exactly this API::

    snapshot = build_snapshot(catalog, version=n)        # once per catalog version
                                                         # (catalog = catalog.load_catalog(bodies))
    keys = capping_keys(snapshot, request, now)          # counters to fetch in one round trip
    result = decide(snapshot, request, profile, counters, now=now, rng=rng,
                    ranking=stats)                     # stats: engine/bandit.py RankingStats
    keys = feedback_keys(snapshot, record, event=xdm, ...)  # what a display/click feeds
"""

from offerbase.engine.decide import capping_keys, decide
from offerbase.engine.feedback import FeedbackRecord, feedback_keys, may_count
from offerbase.engine.model import (
    EXPERIENCE_EVENTS,
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
from offerbase.engine.snapshot import Snapshot, build_snapshot

__all__ = [
    "MAX_ITEM_COUNT",
    "EXPERIENCE_EVENTS",
    "MAX_OPTIONS_PER_RESPONSE",
    "MAX_SCOPES",
    "CapConsumption",
    "ChosenOption",
    "CounterKey",
    "DecisionError",
    "DecisionRequest",
    "DecisionResult",
    "FeedbackRecord",
    "FallbackOption",
    "RankingChoice",
    "ScopeRequest",
    "ScopeResult",
    "Snapshot",
    "build_snapshot",
    "capping_keys",
    "decide",
    "feedback_keys",
    "may_count",
]
