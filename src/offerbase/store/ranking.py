"""AI ranking's learning: interaction events -> the ranking strategies' evidence (ranking_stats),
and the reads of that evidence (each worker's reader, the ranking-strategy report).

What counts (docs/ai-ranking.md): a display of an offer that a ranking strategy ranked is a
trial of (strategy, arm, context key, offer); a click (`propositionEventType.interact`), or for
a strategy whose goal is a custom event type an event of that `xdm.eventType`, is a success.
The strategy, arm and context key are read from the decision event that has the interaction's
proposition id (its `offerbase:ranking`, per proposition); the offers are the interaction's
items that this proposition selected (all its selections when the interaction names none).

Why a queue (an outbox) rather than a watermark or a flag on interaction_events:

* Each interaction event that may count gets a `ranking_queue` row IN THE SAME TRANSACTION as
  the event row itself (`enqueue`, run by Database.insert_rows' `then` with the rows that were
  new: an event sent twice is queued once). The learner adds its ranking_stats and deletes the
  queue rows IN ONE TRANSACTION. So an event is learned from exactly once, across restarts and
  workers, with nothing to reconcile: no state outside those two transactions.
* A watermark over interaction_events.row_id would skip rows on PostgreSQL, where ids are
  taken before commit and transactions commit out of order; and a display whose decision event
  is not stored yet (decision events are written asynchronously) would hold the watermark back
  for every event behind it. A processed flag would be an UPDATE on the large, append-only
  event table and a scan of it for the unflagged rows; the queue holds only pending work.
* A display whose decision event is not found yet stays queued and is looked at again later
  (`due_ms`, backing off from RETRY_SECONDS to MAX_RETRY_SECONDS), so waiting rows never hold
  up newer ones; after GIVE_UP_SECONDS from its arrival it is dropped and counted
  (offerbase_ranking_events_total{outcome="expired"}): its decision was a dry run, was lost in
  a crash before being written, or was never Offerbase's. A decision event without
  `offerbase:ranking` (priority or formula ranking) ends its interactions' queue rows at once.
* One learner at a time per sandbox: a run locks the sandbox's ranking_state row (PostgreSQL:
  `FOR UPDATE SKIP LOCKED`, so a second worker skips the sandbox instead of waiting; SQLite:
  the write transaction is the lock). The run bumps the row's version and stamps the rows it
  changed with it, so versions commit in order and a reader that asks for "rows changed since
  version v" misses none (`changed_since`).

Bounds: a run reads at most `batch_size` (LEARN_BATCH) queue rows in one transaction, so SQLite's
write lock is held for milliseconds; the sandboxes with due work are found by one indexed
query (at most MAX_SANDBOXES_PER_PASS). None of this is on the decision path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offerbase.metrics import RANKING_EVENTS
from offerbase.store.db import Batch, Database, Row
from offerbase.store.scope import Scope, across_tenants, template
from offerbase.store.tables import (
    decision_events,
    interaction_events,
    ranking_queue,
    ranking_state,
    ranking_stats,
)

ARMS = ("model", "holdout")
MAX_KEY = 255  # the key columns' size
LEARN_BATCH = 500  # queue rows per learner transaction
MAX_SANDBOXES_PER_PASS = 100
RETRY_SECONDS = 0.5  # first wait for a missing decision event, doubled on each miss
MAX_RETRY_SECONDS = 30.0
# A display or click whose decision event is still not stored this long after it arrived is
# dropped: queued decision events are written within a fraction of a second (store/events.py),
# so after ten minutes the decision is not coming (a dry run, a crash, another system's id).
GIVE_UP_SECONDS = 600.0
# Interaction types that may count: trials (display) and successes (interact, custom goals).
QUEUED_TYPES = frozenset({"display", "interact", "custom"})
_QUEUE_COLUMNS = ("sandbox_pk", "event_id", "seq", "received_ms", "due_ms", "attempts")

StatsKey = tuple[str, str, str, str]  # strategy id, arm, context key, offer id
# A strategy id -> its custom goal event type (None: clicks). Strategies it does not know (a
# deleted one) count clicks.
GoalOf = Callable[[str], str | None]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _received_ms(body: Any) -> int:
    """When the Edge received the event (the record's receivedAt), in Unix ms; 0 if unknown
    (the row is then due at once and expires at the first miss)."""
    data = orjson.loads(body) if isinstance(body, str | bytes) else body
    received = data.get("receivedAt") if isinstance(data, Mapping) else None
    try:
        return epoch_ms(datetime.fromisoformat(received)) if isinstance(received, str) else 0
    except ValueError:
        return 0


async def enqueue(batch: Batch, rows: list[Row]) -> None:
    """interaction_events rows just inserted (sandbox_pk, event_id, seq, proposition_id,
    timestamp, type, body): queue those the learner may count, in their transaction."""
    queued = []
    for sandbox_pk, event_id, seq, _proposition, _timestamp, kind, body in rows:
        if kind in QUEUED_TYPES:
            received = _received_ms(body)
            queued.append((sandbox_pk, event_id, seq, received, received, 0))
    if queued:  # new events only (insert_rows' `then`): their queue rows are new too
        await batch.insert_all(ranking_queue, _QUEUE_COLUMNS, sorted(queued))


@dataclass(frozen=True)
class Learned:
    """What one learner run did: queue rows counted (added to ranking_stats), ended without
    counting (no ranking strategy ranked them), waiting (decision event not found yet) and
    expired (given up); `version` the sandbox's ranking version after the run (None: not
    changed, or another learner has the sandbox)."""

    counted: int = 0
    ignored: int = 0
    waiting: int = 0
    expired: int = 0
    version: int | None = None

    @property
    def done(self) -> int:
        return self.counted + self.ignored + self.expired


def _key_text(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_KEY else None


def _id_of(value: Any) -> str | None:
    return _key_text(value.get("xdm:id")) if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class _Ranked:
    strategy_id: str
    arm: str
    context_key: str
    activity_id: str | None
    placement_id: str | None
    offers: tuple[str, ...]


def ranked_propositions(decision: Any) -> list[_Ranked]:
    """The propositions of a decision event body that a ranking strategy ranked."""
    found = []
    propositions = decision.get("xdm:propositions") if isinstance(decision, Mapping) else None
    for proposition in propositions if isinstance(propositions, list) else ():
        if not isinstance(proposition, Mapping):
            continue
        ranking = proposition.get("offerbase:ranking")
        if not isinstance(ranking, Mapping):
            continue
        strategy = _key_text(ranking.get("strategyId"))
        arm = ranking.get("arm")
        context = _key_text(ranking.get("contextKey") or "")
        if not strategy or arm not in ARMS or context is None:
            continue
        selections = proposition.get("xdm:selections")
        offers = tuple(
            offer
            for offer in (_id_of(s) for s in (selections if isinstance(selections, list) else ()))
            if offer
        )
        found.append(
            _Ranked(
                strategy,
                str(arm),
                context,
                _id_of(proposition.get("xdm:activity")),
                _id_of(proposition.get("xdm:placement")),
                offers,
            )
        )
    return found


def attribute(
    interaction: Mapping[str, Any], kind: str, decision: Any, goal_of: GoalOf
) -> tuple[set[StatsKey], set[StatsKey]]:
    """(trial keys, success keys) of one interaction event given its decision event body."""
    activity = interaction.get("activityId")
    placement = interaction.get("placementId")
    items = interaction.get("itemIds")
    named = {item for item in items if isinstance(item, str)} if isinstance(items, list) else set()
    event_type = interaction.get("eventType")
    trials: set[StatsKey] = set()
    successes: set[StatsKey] = set()
    for ranked in ranked_propositions(decision):
        if activity and ranked.activity_id != activity:
            continue
        if placement and ranked.placement_id != placement:
            continue
        goal = goal_of(ranked.strategy_id)
        if kind == "display":
            target = trials
        elif (goal is None and kind == "interact") or (goal is not None and event_type == goal):
            target = successes
        else:
            continue
        for offer in ranked.offers:
            if not named or offer in named:
                target.add((ranked.strategy_id, ranked.arm, ranked.context_key, offer))
    return trials, successes


def _stats_upsert(db: Database) -> sa.Insert:
    t = ranking_stats
    insert = sqlite.insert(t) if db.is_sqlite else postgresql.insert(t)
    stmt = insert.values(
        strategy_id=sa.bindparam("strategy_id"),
        arm=sa.bindparam("arm"),
        context_key=sa.bindparam("context_key"),
        offer_id=sa.bindparam("offer_id"),
        trials=sa.bindparam("trials"),
        successes=sa.bindparam("successes"),
        version=sa.bindparam("version"),
    )
    return template(
        stmt.on_conflict_do_update(
            index_elements=[
                t.c.sandbox_pk,
                t.c.strategy_id,
                t.c.arm,
                t.c.context_key,
                t.c.offer_id,
            ],
            set_={
                "trials": t.c.trials + stmt.excluded.trials,
                "successes": t.c.successes + stmt.excluded.successes,
                "version": stmt.excluded.version,
            },
        )
    )


async def sandboxes_with_work(db: Database, now_ms: int) -> list[int]:
    """The sandboxes with due queue rows (housekeeping across tenants, one indexed query)."""
    query = (
        sa.select(ranking_queue.c.sandbox_pk)
        .where(ranking_queue.c.due_ms <= now_ms)
        .distinct()
        .limit(MAX_SANDBOXES_PER_PASS)
    )
    async with db.read() as conn:
        return list((await conn.scalars(across_tenants(query))).all())


def _retry_ms(attempts: int) -> int:
    return int(min(RETRY_SECONDS * 2**attempts, MAX_RETRY_SECONDS) * 1000)


async def learn(
    db: Database,
    sandbox_pk: int,
    now_ms: int,
    goal_of: GoalOf,
    *,
    batch_size: int = LEARN_BATCH,
    give_up_seconds: float = GIVE_UP_SECONDS,
) -> Learned:
    """One learner run over at most `batch_size` due queue rows of one sandbox, in one
    transaction (see the module docstring)."""
    scope = Scope(sandbox_pk)
    state = ranking_state
    async with db.write() as conn:
        locked = scope.apply(sa.select(state.c.version).with_for_update(skip_locked=True))
        version = await conn.scalar(locked)
        if version is None and await conn.scalar(scope.apply(sa.select(state.c.version))) is None:
            # The sandbox's first run creates its state row (its lock serialises the sandbox's
            # learners); a concurrent first run waits on the insert, then skips the sandbox.
            insert = sqlite.insert(state) if db.is_sqlite else postgresql.insert(state)
            await conn.execute(scope.apply(insert.values(version=0).on_conflict_do_nothing()))
            version = await conn.scalar(locked)
        if version is None:  # another worker's learner has this sandbox now
            return Learned()
        q = ranking_queue
        due = (
            sa.select(q.c.event_id, q.c.seq, q.c.received_ms, q.c.attempts)
            .where(q.c.due_ms <= now_ms)
            .order_by(q.c.due_ms)  # the index order: oldest due first
            .limit(batch_size)
        )
        queued = (await conn.execute(scope.apply(due))).all()
        if not queued:
            return Learned()
        i = interaction_events
        events = await conn.execute(
            scope.apply(
                sa.select(i.c.event_id, i.c.seq, i.c.proposition_id, i.c.type, i.c.body).where(
                    i.c.event_id.in_(sorted({row.event_id for row in queued}))
                )
            )
        )
        interactions = {(row.event_id, row.seq): row for row in events}
        propositions = sorted({row.proposition_id for row in interactions.values()})
        decisions: dict[str, Any] = {}
        if propositions:
            d = decision_events
            found = await conn.execute(
                scope.apply(
                    sa.select(d.c.proposition_id, d.c.body).where(
                        d.c.proposition_id.in_(propositions)
                    )
                )
            )
            for row in found:  # a proposition id names one decision; the first if ever more
                decisions.setdefault(row.proposition_id, row.body)
        trials: Counter[StatsKey] = Counter()
        successes: Counter[StatsKey] = Counter()
        finished: list[tuple[str, int]] = []
        postponed: list[tuple[str, int, int]] = []
        counted = ignored = expired = 0
        for row in queued:
            interaction = interactions.get((row.event_id, row.seq))
            decision = decisions.get(interaction.proposition_id) if interaction else None
            if interaction is not None and decision is not None:
                body = interaction.body if isinstance(interaction.body, Mapping) else {}
                tried, succeeded = attribute(body, interaction.type, decision, goal_of)
                trials.update(tried)
                successes.update(succeeded)
                if tried or succeeded:
                    counted += 1
                else:
                    ignored += 1
                finished.append((row.event_id, row.seq))
            elif interaction is None or now_ms - row.received_ms >= give_up_seconds * 1000:
                expired += 1  # its event row was pruned, or its decision never came
                finished.append((row.event_id, row.seq))
            else:
                postponed.append((row.event_id, row.seq, row.attempts))
        if finished:
            # The plain IN on event_id walks the primary key (PostgreSQL plans a row-value IN
            # alone as a scan); the pairs then keep a (event, seq) not finished in this run.
            done = sa.and_(
                q.c.event_id.in_(sorted({event_id for event_id, _ in finished})),
                sa.tuple_(q.c.event_id, q.c.seq).in_(finished),
            )
            await conn.execute(scope.apply(sa.delete(q).where(done)))
        if postponed:
            later = sa.update(q).where(
                q.c.event_id == sa.bindparam("e"), q.c.seq == sa.bindparam("s")
            )
            await conn.execute(
                scope.apply(later.values(attempts=sa.bindparam("a"), due_ms=sa.bindparam("d"))),
                [{"e": e, "s": s, "a": a + 1, "d": now_ms + _retry_ms(a)} for e, s, a in postponed],
            )
        new_version: int | None = None
        keys = sorted(set(trials) | set(successes))  # one lock order for every learner
        if keys:
            new_version = int(version) + 1
            await conn.execute(
                scope.apply(sa.update(state).values(version=new_version)),
            )
            await conn.execute(
                _stats_upsert(db),
                [
                    scope.params(
                        strategy_id=key[0],
                        arm=key[1],
                        context_key=key[2],
                        offer_id=key[3],
                        trials=trials[key],
                        successes=successes[key],
                        version=new_version,
                    )
                    for key in keys
                ],
            )
    RANKING_EVENTS.labels("counted").inc(counted)
    RANKING_EVENTS.labels("ignored").inc(ignored)
    RANKING_EVENTS.labels("expired").inc(expired)
    return Learned(counted, ignored, len(postponed), expired, new_version)


@dataclass(frozen=True, slots=True)
class StatsRow:
    strategy_id: str
    arm: str
    context_key: str
    offer_id: str
    trials: int
    successes: int


async def changed_since(db: Database, sandbox_pk: int, version: int) -> tuple[int, list[StatsRow]]:
    """The ranking_stats rows of a sandbox changed after `version` (their current totals) and
    the version they bring the reader to (`version` when none changed). One statement, one
    snapshot: a version is only visible once every smaller one is (see the module docstring)."""
    t = ranking_stats
    query = sa.select(
        t.c.strategy_id,
        t.c.arm,
        t.c.context_key,
        t.c.offer_id,
        t.c.trials,
        t.c.successes,
        t.c.version,
    ).where(t.c.version > version)
    async with db.read() as conn:
        rows = (await conn.execute(Scope(sandbox_pk).apply(query))).all()
    latest = max((int(row.version) for row in rows), default=version)
    return latest, [
        StatsRow(
            row.strategy_id,
            row.arm,
            row.context_key,
            row.offer_id,
            int(row.trials),
            int(row.successes),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class OfferArm:
    """One offer's evidence in one arm of a strategy, over every context."""

    offer_id: str
    arm: str
    trials: int
    successes: int


async def strategy_totals(db: Database, sandbox_pk: int, strategy_id: str) -> list[OfferArm]:
    """Per (offer, arm) the summed evidence of one strategy (the report)."""
    t = ranking_stats
    query = (
        sa.select(
            t.c.offer_id,
            t.c.arm,
            sa.func.sum(t.c.trials).label("trials"),
            sa.func.sum(t.c.successes).label("successes"),
        )
        .where(t.c.strategy_id == strategy_id)
        .group_by(t.c.offer_id, t.c.arm)
        .order_by(t.c.offer_id, t.c.arm)
    )
    async with db.read() as conn:
        rows = (await conn.execute(Scope(sandbox_pk).apply(query))).all()
    return [OfferArm(r.offer_id, r.arm, int(r.trials), int(r.successes)) for r in rows]


async def pending(db: Database, sandbox_pk: int) -> int:
    """Queue rows of a sandbox not learned from yet (tests, benchmarks)."""
    query = sa.select(sa.func.count()).select_from(ranking_queue)
    async with db.read() as conn:
        return int(await conn.scalar(Scope(sandbox_pk).apply(query)) or 0)


__all__: Sequence[str] = (
    "GIVE_UP_SECONDS",
    "Learned",
    "OfferArm",
    "StatsRow",
    "attribute",
    "changed_since",
    "enqueue",
    "learn",
    "pending",
    "sandboxes_with_work",
    "strategy_totals",
)
