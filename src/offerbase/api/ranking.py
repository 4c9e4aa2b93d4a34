"""AI ranking's learning in the server: each worker's reader of the strategies' evidence
(`RankingStatsCache`, `Services.ranking_stats`), which decide_and_record hands to the engine,
and the learner task (`learning_loop`, started by the app's lifespan) that turns interaction
events into that evidence (store/ranking.py).

Freshness (docs/ai-ranking.md): a display or click posted to the Edge endpoints changes the
posterior used by every worker within
    the interaction writer's interval (0.2 s; 0 for events that feed caps, or durable mode)
  + the learner's interval (OFFERBASE_RANKING_LEARN_SECONDS, 0.5 s) and its run
  + the reader's interval (OFFERBASE_RANKING_REFRESH_SECONDS, 2 s) and its query,
about 3 s, and always under 10 s while the database keeps up (the settings are bounded so).
A display that arrives before its decision event is counted when that event is written (the
decision event writer's interval, 0.2 s, and a retry of the learner, 0.5 s first).

The reader never fails a decision: when the database does not answer, the evidence last read
is used (logged, rate-limited) and the read is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from offerbase.api.snapshots import SnapshotCache
from offerbase.catalog import RankingStrategy
from offerbase.engine.bandit import ArmStats, RankingStats, StrategyStats
from offerbase.logs import RateLimitedErrors
from offerbase.store import ranking as store
from offerbase.store.db import Database
from offerbase.store.tenants import Sandbox, list_sandboxes

log = structlog.get_logger("offerbase.ranking")
CLICKS = "interact"  # RankingStrategy.goal_event_type of a clicks-per-display goal


@dataclass
class _Entry:
    version: int = 0
    checked_at: float = float("-inf")
    # strategy id -> (arm, context key, offer id) -> (trials, successes): the stored totals
    totals: dict[str, dict[tuple[str, str, str], tuple[int, int]]] = field(default_factory=dict)
    stats: dict[str, StrategyStats] = field(default_factory=dict)


def strategy_stats(totals: Mapping[tuple[str, str, str], tuple[int, int]]) -> StrategyStats:
    """A strategy's evidence as the engine reads it: both arms together (the holdout's random
    traffic is evidence too), per context and over all contexts. Successes are capped at the
    trials (a click whose display was never sent would make a Beta parameter negative)."""
    offers: dict[str, list[int]] = {}
    contexts: dict[str, dict[str, list[int]]] = {}
    for (_arm, context, offer), (trials, successes) in totals.items():
        for where in (offers, contexts.setdefault(context, {})):
            sums = where.setdefault(offer, [0, 0])
            sums[0] += trials
            sums[1] += successes

    def arm(sums: list[int]) -> ArmStats:
        return ArmStats(sums[0], min(sums[1], sums[0]))

    return StrategyStats(
        {offer: arm(sums) for offer, sums in offers.items()},
        {
            context: {offer: arm(sums) for offer, sums in by_offer.items()}
            for context, by_offer in contexts.items()
        },
    )


class RankingStatsCache:
    """Per worker: each sandbox's RankingStats, re-read at most every `refresh_seconds` (only
    the rows changed since the last read: store.changed_since)."""

    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._entries: dict[int, _Entry] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._errors = RateLimitedErrors(log)
        self.reads = 0  # for tests and benchmarks

    def _fresh(self, pk: int) -> _Entry | None:
        entry = self._entries.get(pk)
        if entry is not None and time.monotonic() - entry.checked_at < self.refresh_seconds:
            return entry
        return None

    async def get(self, sandbox: Sandbox) -> RankingStats:
        entry = self._fresh(sandbox.pk)
        if entry is not None:
            return entry.stats
        lock = self._locks.setdefault(sandbox.pk, asyncio.Lock())
        async with lock:  # one read at a time per sandbox; the others share its answer
            entry = self._fresh(sandbox.pk)
            if entry is not None:
                return entry.stats
            entry = self._entries.setdefault(sandbox.pk, _Entry())
            checked_at = time.monotonic()
            try:
                self.reads += 1
                version, rows = await store.changed_since(self.db, sandbox.pk, entry.version)
            except Exception as exc:  # keep deciding with what was read last
                self._errors.error((type(exc).__name__, str(exc)[:200]), "ranking read", exc)
                entry.checked_at = checked_at
                return entry.stats
            changed = set()
            for row in rows:
                by_key = entry.totals.setdefault(row.strategy_id, {})
                by_key[(row.arm, row.context_key, row.offer_id)] = (row.trials, row.successes)
                changed.add(row.strategy_id)
            if changed:
                stats = dict(entry.stats)  # a new mapping: a decision in flight keeps its own
                for strategy_id in changed:
                    stats[strategy_id] = strategy_stats(entry.totals[strategy_id])
                entry.stats = stats
            entry.version = version
            entry.checked_at = checked_at
            return entry.stats


def goals(strategies: tuple[RankingStrategy, ...]) -> store.GoalOf:
    """What a success is for each strategy: None (clicks) or its custom event type."""
    custom = {s.id: s.goal_event_type for s in strategies if s.goal_event_type != CLICKS}
    return custom.get


class Learner:
    """This worker's learner: every `interval` seconds, for each sandbox with due queue rows,
    runs store.learn until its due rows are done (at most MAX_RUNS_PER_PASS runs a pass)."""

    MAX_RUNS_PER_PASS = 20

    def __init__(
        self,
        db: Database,
        snapshots: SnapshotCache,
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        self.db = db
        self.snapshots = snapshots  # each strategy's goal, from the catalog
        self.clock = clock
        self.interval = interval
        self._sandboxes: dict[int, Sandbox] = {}
        self._errors = RateLimitedErrors(log)

    async def _sandbox(self, pk: int) -> Sandbox | None:
        if pk not in self._sandboxes:  # sandboxes never change once created
            async with self.db.read() as conn:
                self._sandboxes = {s.pk: s for s in await list_sandboxes(conn)}
        return self._sandboxes.get(pk)

    async def run_once(self) -> store.Learned:
        """One pass over the sandboxes with due work; returns the totals (tests call this)."""
        counted = ignored = waiting = expired = 0
        now_ms = store.epoch_ms(self.clock())
        for pk in await store.sandboxes_with_work(self.db, now_ms):
            sandbox = await self._sandbox(pk)
            if sandbox is None:
                continue
            snapshot = await self.snapshots.get(sandbox)
            goal_of = goals(snapshot.catalog.strategies)
            for _run in range(self.MAX_RUNS_PER_PASS):
                learned = await store.learn(self.db, pk, now_ms, goal_of)
                counted += learned.counted
                ignored += learned.ignored
                expired += learned.expired
                if learned.done == 0:  # nothing left but rows that wait (or another learner)
                    waiting += learned.waiting
                    break
        return store.Learned(counted, ignored, waiting, expired)

    async def loop(self) -> None:
        """Until cancelled; a failed pass (an outage, a busy database) is retried next time."""
        jitter = random.Random()  # not services.rng: a seeded app's decisions stay reproducible
        await asyncio.sleep(self.interval * jitter.random())
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                self._errors.error((type(exc).__name__, str(exc)[:200]), "learning failed", exc)
            await asyncio.sleep(self.interval)
