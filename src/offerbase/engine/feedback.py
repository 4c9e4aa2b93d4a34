"""Caps by event kind: which capping counters one feedback record increments. Pure.

A feedback record is one proposition of one Edge event (api/edge_feedback.py): its type
(display, interact, dismiss, trigger, suppressDisplay, custom), the placement it names (if any)
and the item ids it shows. For every item id that is an offer of the snapshot, each of the
offer's cap rules (engine/capping.py) that counts the record gets +1 on the very key the
decision path reads (`capping.counter_key`), in the bucket of `now`:

* a cap whose `events` include `impression` counts display records;
* `click` counts interact records;
* `custom` counts records of any type whose event satisfies its `customQuery` (PQL with
  `xEvent` = [the event's xdm], as the Edge decisions bind it).

A rule counts a record at most once, whatever of its kinds match. A cap that applies to some
placements only, or that counts per placement, counts nothing for a record that names no
placement; a per-profile cap counts nothing without a profile key (as the decision path does
not enforce it then: capping.applies). Item ids that are no offer of the snapshot (fallbacks,
offers deleted since) count nothing. docs/decisioning.md, "Caps by event kind", says it for
users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offerbase.engine.capping import BucketCache, CapRule, counter_key
from offerbase.engine.model import EXPERIENCE_EVENTS, CounterKey
from offerbase.engine.snapshot import Snapshot

DISPLAY = "display"
INTERACT = "interact"


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    type: str  # api/edge_feedback.py's record type
    placement_id: str | None
    item_ids: Sequence[str]


def may_count(snapshot: Snapshot, item_ids: Sequence[str]) -> bool:
    """Whether a record showing these items can increment anything (cheap: no PQL)."""
    fed = snapshot.feedback_caps
    return bool(fed) and any(item in fed for item in item_ids)


def _counts(
    snapshot: Snapshot,
    rule: CapRule,
    record: FeedbackRecord,
    event: Mapping[str, Any],
    profile: Mapping[str, Any],
    now: datetime,
) -> bool:
    if rule.counts_impressions and record.type == DISPLAY:
        return True
    if rule.counts_clicks and record.type == INTERACT:
        return True
    if rule.custom_query is None:
        return False
    query = snapshot.cap_queries.get(rule.prefix)
    if query is None:  # does not compile (saved under an older PQL): counts nothing
        return False
    offer = snapshot.offers.get(rule.offer_id)
    events = [event]
    try:
        value = query.evaluate(
            profile,
            offer=offer.view if offer is not None else None,
            context={EXPERIENCE_EVENTS: events},
            params={"xEvent": events},
            now=now,
        )
    except Exception:  # a query that fails at run time counts nothing, never fails the request
        return False
    return value is True


def feedback_keys(
    snapshot: Snapshot,
    record: FeedbackRecord,
    *,
    event: Mapping[str, Any],
    profile_key: str | None,
    profile: Mapping[str, Any],
    now: datetime,
) -> list[CounterKey]:
    """The counter keys the record increments, each once (`event` is the event's xdm)."""
    fed = snapshot.feedback_caps
    if not fed:
        return []
    placement = record.placement_id
    buckets = BucketCache(now)
    keys: list[CounterKey] = []
    for offer_id in dict.fromkeys(record.item_ids):  # an item listed twice is one impression
        for rule in fed.get(offer_id, ()):
            if rule.placements is not None and (
                placement is None or placement not in rule.placements
            ):
                continue
            if rule.per_placement and placement is None:
                continue
            if rule.per_profile and profile_key is None:
                continue
            if not _counts(snapshot, rule, record, event, profile, now):
                continue
            keys.append(counter_key(rule, placement or "", profile_key, buckets.label(rule)))
    return keys
