"""The reports' rollups, updated with every batch of events the EventWriter stores, in the same
transaction (Database.insert_rows' `then`): a report reads these small tables and never scans
raw events, a batch and its counts commit together, and an interaction event that was stored
already (the writer's ON CONFLICT DO NOTHING skipped it) is not passed here, so it never counts
twice. What each number means: docs/reports.md.

Rows come from many sandboxes (a batch is every tenant's): each rollup row carries the sandbox
pk of the event it counts, like the event rows themselves (store/db.py's Batch checks it).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from offerbase.store.db import Batch, Database, Row
from offerbase.store.tables import (
    report_conversions,
    report_offer_day_uniques,
    report_offer_days,
    report_offer_uniques,
    report_propositions,
    report_uniques,
)

UNATTRIBUTED = ""  # the stored key of an activity, placement or offer the event does not name
MAX_KEY = 255  # the key columns' size: a longer id is no catalog id (counted as unattributed)
# The sums of report_offer_days, in column order.
OFFER_SUMS = (
    "decisions",
    "fallbacks",
    "cap_hits",
    "displays",
    "unique_displays",
    "clicks",
    "unique_clicks",
)
_OFFER_KEYS = ("sandbox_pk", "day", "activity_id", "placement_id", "offer_id")
_PROPOSITION_KEYS = ("sandbox_pk", "day", "activity_id", "placement_id")
_PROPOSITION_SUMS = ("propositions", "fallback_propositions", "empty_propositions")
_CONVERSION_KEYS = (*_OFFER_KEYS, "event_type")
_UNIQUE_COLUMNS = (*_OFFER_KEYS, "kind", "identity")
_OFFER_UNIQUE_COLUMNS = ("sandbox_pk", "day", "offer_id", "kind", "identity")
_DAY_UNIQUE_SUMS = ("unique_displays", "unique_clicks")
# Interaction types that count, and the unique kind they feed.
_COUNTED = {"display": ("displays", "display"), "interact": ("clicks", "click")}
_UNIQUE_SUM = {"display": "unique_displays", "click": "unique_clicks"}

OfferKey = tuple[int, str, str, str, str]


def key_id(value: Any) -> str:
    """An id as a rollup key: UNATTRIBUTED when absent, not a string or too long."""
    if isinstance(value, str) and 0 < len(value) <= MAX_KEY:
        return value
    return UNATTRIBUTED


def identity_key(identity: Any) -> str | None:
    """The profile identity of an interaction ("namespace:id"), None when it has none; a
    long one by its SHA-256 (the column's size), still one key per identity."""
    if not isinstance(identity, Mapping):
        return None
    namespace, value = identity.get("namespace"), identity.get("id")
    if not isinstance(namespace, str) or not isinstance(value, str) or not value:
        return None
    text = f"{namespace}:{value}"
    if len(text) <= MAX_KEY:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class _Deltas:
    def __init__(self) -> None:
        self.offers: dict[OfferKey, Counter[str]] = {}
        self.propositions: dict[tuple[int, str, str, str], Counter[str]] = {}
        self.conversions: Counter[tuple[int, str, str, str, str, str]] = Counter()
        self.offer_day_uniques: dict[tuple[int, str, str], Counter[str]] = {}

    def offer(self, key: OfferKey, name: str, n: int = 1) -> None:
        self.offers.setdefault(key, Counter())[name] += n

    async def apply(self, batch: Batch) -> None:
        """In a fixed table order, each table's rows sorted (Batch.add): concurrent writers
        (several server processes) lock rows in the same order and cannot deadlock."""
        if self.offers:
            rows = [(*key, *(c[name] for name in OFFER_SUMS)) for key, c in self.offers.items()]
            await batch.add(report_offer_days, _OFFER_KEYS, OFFER_SUMS, rows)
        if self.offer_day_uniques:
            rows = [
                (*key, *(c[name] for name in _DAY_UNIQUE_SUMS))
                for key, c in self.offer_day_uniques.items()
            ]
            await batch.add(
                report_offer_day_uniques, ("sandbox_pk", "day", "offer_id"), _DAY_UNIQUE_SUMS, rows
            )
        if self.conversions:
            rows = [(*key, n) for key, n in self.conversions.items()]
            await batch.add(report_conversions, _CONVERSION_KEYS, ("conversions",), rows)
        if self.propositions:
            rows = [
                (*key, *(c[name] for name in _PROPOSITION_SUMS))
                for key, c in self.propositions.items()
            ]
            await batch.add(report_propositions, _PROPOSITION_KEYS, _PROPOSITION_SUMS, rows)


def _body(text: Any) -> Mapping[str, Any]:
    body = orjson.loads(text) if isinstance(text, str | bytes) else text
    return body if isinstance(body, Mapping) else {}


def _member_id(value: Any) -> str:
    return key_id(value.get("xdm:id")) if isinstance(value, Mapping) else UNATTRIBUTED


async def add_batch_decisions(
    db: Database,
    sandbox_pk: int,
    day: str,
    offers: Mapping[tuple[str, str, str], list[int]],
    propositions: Mapping[tuple[str, str], list[int]],
) -> None:
    """A batch job's decisions, counted by the job (batch/run.py `Tally`: what
    `decision_rollup` counts of the events its rows are), added in one transaction: per
    (activity, placement, offer) [decisions, fallbacks], per (activity, placement)
    [propositions, answered by the fallback, by nothing]; all on the job's `day`."""
    deltas = _Deltas()
    for (activity, placement, offer), (decisions, fallbacks) in offers.items():
        key: OfferKey = (sandbox_pk, day, key_id(activity), key_id(placement), key_id(offer))
        if decisions:
            deltas.offer(key, "decisions", decisions)
        if fallbacks:
            deltas.offer(key, "fallbacks", fallbacks)
    for (activity, placement), (total, fallback, empty) in propositions.items():
        counts = deltas.propositions.setdefault(
            (sandbox_pk, day, key_id(activity), key_id(placement)), Counter()
        )
        counts["propositions"] += total
        counts["fallback_propositions"] += fallback
        counts["empty_propositions"] += empty
    if not deltas.offers and not deltas.propositions:
        return
    while not await db.in_batch(deltas.apply):
        await asyncio.sleep(0.05)  # SQLite's write lock is taken: the server is writing


async def decision_rollup(batch: Batch, rows: list[Row]) -> None:
    """decision_events rows (sandbox_pk, proposition_id, timestamp, body): per proposition, the
    offers proposed (decisions), the fallback (fallbacks), the offers a cap stopped (cap_hits),
    and the proposition itself (answered with options, the fallback or nothing)."""
    deltas = _Deltas()
    for sandbox_pk, _proposition_id, timestamp, text in rows:
        day = timestamp[:10]
        propositions = _body(text).get("xdm:propositions")
        for proposition in propositions if isinstance(propositions, list) else ():
            if not isinstance(proposition, Mapping):
                continue
            activity = _member_id(proposition.get("xdm:activity"))
            placement = _member_id(proposition.get("xdm:placement"))
            counts = deltas.propositions.setdefault(
                (sandbox_pk, day, activity, placement), Counter()
            )
            counts["propositions"] += 1
            selections = proposition.get("xdm:selections")
            fallback = proposition.get("xdm:fallback")
            if isinstance(selections, list) and selections:
                for selection in selections:
                    offer = _member_id(selection)
                    deltas.offer((sandbox_pk, day, activity, placement, offer), "decisions")
            elif isinstance(fallback, Mapping):
                counts["fallback_propositions"] += 1
                offer = _member_id(fallback)
                deltas.offer((sandbox_pk, day, activity, placement, offer), "fallbacks")
            else:
                counts["empty_propositions"] += 1
            capped = proposition.get("offerbase:cappedOptions")
            for offer_id in capped if isinstance(capped, list) else ():
                offer = key_id(offer_id)
                deltas.offer((sandbox_pk, day, activity, placement, offer), "cap_hits")
    await deltas.apply(batch)


async def interaction_rollup(batch: Batch, rows: list[Row]) -> None:
    """interaction_events rows just inserted (sandbox_pk, event_id, seq, proposition_id,
    timestamp, type, body): displays and clicks per offer of the proposition (its items; none
    named: the offer is unattributed), their unique identities, custom events by event type.
    The caps' synchronous insert of interaction events (api/edge.py) calls this too."""
    deltas = _Deltas()
    uniques: dict[tuple[Any, ...], None] = {}
    offer_uniques: dict[tuple[Any, ...], None] = {}
    for sandbox_pk, _event_id, _seq, _proposition_id, timestamp, kind, text in rows:
        if kind not in _COUNTED and kind != "custom":
            continue  # dismiss, trigger, suppressDisplay: stored, not reported
        body = _body(text)
        day = timestamp[:10]
        activity = key_id(body.get("activityId"))
        placement = key_id(body.get("placementId"))
        items = body.get("itemIds")
        offers = {key_id(item): None for item in items} if isinstance(items, list) else {}
        identity = identity_key(body.get("identity"))
        event_type = key_id(body.get("eventType")) or "custom"
        for offer in offers or {UNATTRIBUTED: None}:
            key: OfferKey = (sandbox_pk, day, activity, placement, offer)
            if kind == "custom":
                deltas.conversions[(*key, event_type)] += 1
                continue
            name, unique_kind = _COUNTED[kind]
            deltas.offer(key, name)
            if identity is not None:
                uniques[(*key, unique_kind, identity)] = None
                offer_uniques[(sandbox_pk, day, offer, unique_kind, identity)] = None
    if uniques:
        new = await batch.insert_new(
            report_uniques, _UNIQUE_COLUMNS, sorted(uniques), _UNIQUE_COLUMNS
        )
        for row in new:
            deltas.offer(row[:5], _UNIQUE_SUM[row[5]])
        new = await batch.insert_new(
            report_offer_uniques,
            _OFFER_UNIQUE_COLUMNS,
            sorted(offer_uniques),
            _OFFER_UNIQUE_COLUMNS,
        )
        for row in new:
            deltas.offer_day_uniques.setdefault(row[:3], Counter())[_UNIQUE_SUM[row[3]]] += 1
    await deltas.apply(batch)
