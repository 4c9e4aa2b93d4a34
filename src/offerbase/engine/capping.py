"""Frequency capping: which counters an offer has, their keys, and period buckets.

Counter key format (a plain string, usable verbatim as a SQL primary key or a Redis key):

    cap|<offer id>|<constraint>|<scope>|<profile key or ->|<entity>|<placement id or ->|<bucket>

* constraint: ``fc<i>`` for ``frequencyCappingConstraints[i]`` (position in the list),
  ``global`` / ``profile`` for the legacy ``cappingConstraint.globalCap`` / ``profileCap``.
* scope: ``global`` (all profiles) or ``profile`` (then the profile key follows).
* entity: ``offer`` (one counter across placements) or ``placement`` (one per placement).
* bucket: ``all`` for a non-repeating cap, else ``<period start date>/P<n><D|W|M>``, e.g.
  ``2026-11-22/P1W``. Periods start at 00:00 UTC; weeks start on Sunday; for ``unitCount`` > 1
  periods are anchored at fixed epochs: 1970-01-01 for days, Sunday 1970-01-04 for weeks,
  January 1970 for months (so "every 2 weeks" periods are the same for every offer and do not
  move when the constraint is edited).

``|`` separates fields because ids themselves contain ``:`` (``dps:offer-placement:...``); a
``|`` or ``%`` inside an id is percent-escaped so distinct inputs never produce the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from offerbase.catalog import Offer
from offerbase.catalog.enums import EVENT_CLICK, EVENT_CUSTOM, EVENT_DECISIONING, EVENT_IMPRESSION
from offerbase.engine.model import CounterKey

_EPOCH_DAY = date(1970, 1, 1)
_EPOCH_SUNDAY = date(1970, 1, 4)  # the first Sunday of the Unix epoch: weeks start on Sunday
_UNIT_LETTER = {"day": "D", "week": "W", "month": "M"}


@dataclass(frozen=True, slots=True)
class CapRule:
    """One capping counter of one offer, derived from the offer's caps (``cap_rules``)."""

    offer_id: str
    tag: str  # "fc<i>" | "global" | "profile" (legacy)
    index: int  # position used in traces ("capped by constraint #i"); legacy caps: -1 / -2
    limit: int
    per_profile: bool
    per_placement: bool
    # The cap only applies in these placements (XDM deprecated `placement` / new `placements`);
    # None = every placement.
    placements: frozenset[str] | None
    unit: str | None  # None = non-repeating (one bucket)
    unit_count: int
    # Caps on impression/click/custom events are checked but proposing does not increment them:
    # their counters are fed by feedback events (engine/feedback.py).
    counts_decisions: bool
    counts_impressions: bool = False  # display events
    counts_clicks: bool = False  # interact events
    # PQL over the event (`xEvent`) selecting the feedback events counted (events "custom")
    custom_query: str | None = None
    # "cap|<offer>|<constraint>|": the constant head of every key of this rule, built once
    prefix: str = ""

    def __post_init__(self) -> None:
        if not self.prefix:
            object.__setattr__(self, "prefix", f"cap|{_esc(self.offer_id)}|{self.tag}|")


def _esc(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C")


def cap_rules(offer: Offer) -> tuple[CapRule, ...]:
    """Every capping counter of an offer: its enabled frequencyCappingConstraints, then the
    legacy cappingConstraint's globalCap and profileCap."""
    rules = [
        CapRule(
            offer_id=offer.id,
            tag=f"fc{cap.index}",
            index=cap.index,
            limit=cap.limit,
            per_profile=cap.per_profile,
            per_placement=cap.per_placement,
            placements=cap.placements,
            unit=cap.repeat_unit,
            unit_count=cap.repeat_count,
            counts_decisions=EVENT_DECISIONING in cap.events,
            counts_impressions=EVENT_IMPRESSION in cap.events,
            counts_clicks=EVENT_CLICK in cap.events,
            custom_query=cap.custom_query if EVENT_CUSTOM in cap.events else None,
        )
        for cap in offer.caps
        if cap.enabled
    ]
    for limit, tag, index, per_profile in (
        (offer.global_cap, "global", -1, False),
        (offer.profile_cap, "profile", -2, True),
    ):
        if limit is not None:
            rules.append(
                CapRule(
                    offer_id=offer.id,
                    tag=tag,
                    index=index,
                    limit=limit,
                    per_profile=per_profile,
                    per_placement=False,
                    placements=None,
                    unit=None,
                    unit_count=1,
                    counts_decisions=True,
                )
            )
    return tuple(rules)


def as_utc(now: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the engine runs on UTC throughout)."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def period_start(unit: str, unit_count: int, now: datetime) -> date:
    """First day (00:00 UTC) of the repeat period containing `now`."""
    today = as_utc(now).date()
    if unit == "week":
        weeks = (today - _EPOCH_SUNDAY).days // 7
        return _EPOCH_SUNDAY + timedelta(weeks=weeks - weeks % unit_count)
    if unit == "month":
        months = (today.year - 1970) * 12 + today.month - 1
        start = months - months % unit_count
        return date(1970 + start // 12, start % 12 + 1, 1)
    days = (today - _EPOCH_DAY).days
    return _EPOCH_DAY + timedelta(days=days - days % unit_count)


def bucket(rule: CapRule, now: datetime) -> str:
    if rule.unit is None:
        return "all"
    return _label(rule.unit, rule.unit_count, as_utc(now).date())


@lru_cache(maxsize=1024)
def _label(unit: str, unit_count: int, today: date) -> str:
    # Memoised across requests (a few µs each, and every request of a day asks the same): a
    # strategy's walk meets repeating caps that a priority walk often never reaches.
    start = period_start(unit, unit_count, datetime(today.year, today.month, today.day, tzinfo=UTC))
    return f"{start.isoformat()}/P{unit_count}{_UNIT_LETTER[unit]}"


def applies(rule: CapRule, placement_id: str, profile_key: str | None) -> bool:
    """Whether the rule constrains a proposal in this placement for this profile.

    A per-profile cap cannot be counted without a profile identity: it is then neither
    enforced nor consumed (documented in docs/decisioning.md).
    """
    if rule.placements is not None and placement_id not in rule.placements:
        return False
    return not (rule.per_profile and profile_key is None)


def profile_part(profile_key: str | None) -> str:
    return f"profile|{_esc(profile_key or '')}"


def entity_part(rule: CapRule, placement_id: str) -> str:
    return f"placement|{_esc(placement_id)}" if rule.per_placement else "offer|-"


def compose_key(rule: CapRule, profile: str, entity: str, bucket_label: str) -> CounterKey:
    """The key from precomputed parts (the one place that fixes the field order)."""
    scope = profile if rule.per_profile else "global|-"
    return f"{rule.prefix}{scope}|{entity}|{bucket_label}"


def counter_key(
    rule: CapRule, placement_id: str, profile_key: str | None, bucket_label: str
) -> CounterKey:
    return compose_key(
        rule, profile_part(profile_key), entity_part(rule, placement_id), bucket_label
    )


class BucketCache:
    """Per-request memo of bucket labels: every (unit, unitCount) is computed once."""

    __slots__ = ("_labels", "_now")

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._labels: dict[tuple[str | None, int], str] = {}

    def label(self, rule: CapRule) -> str:
        k = (rule.unit, rule.unit_count)
        got = self._labels.get(k)
        if got is None:
            got = bucket(rule, self._now)
            self._labels[k] = got
        return got
