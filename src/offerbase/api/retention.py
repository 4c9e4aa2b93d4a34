"""The server's pruning task: every worker deletes the raw events older than
OFFERBASE_EVENT_RETENTION_DAYS (store/retention.py) every OFFERBASE_EVENT_PRUNE_INTERVAL_SECONDS,
off the request path.

One pruner per deployment would do; one per worker is simpler and harmless (concurrent
batches delete each row once, store/retention.py). Each run starts after a random part of the
interval and then waits the interval ± half, so the workers of a deployment (started together)
spread their runs instead of pruning in step. Time is the app's clock (Services.clock), so tests
can move it.
"""

from __future__ import annotations

import asyncio
import random

import structlog

from offerbase.api.deps import Services
from offerbase.logs import RateLimitedErrors
from offerbase.store.retention import cutoff, prune_events

log = structlog.get_logger("offerbase.retention")


async def pruning_loop(services: Services) -> None:
    """Run until cancelled; does nothing when the retention is 0 (keep events forever)."""
    days = services.settings.event_retention_days
    if days == 0:
        return
    interval = services.settings.event_prune_interval_seconds
    errors = RateLimitedErrors(log)
    jitter = random.Random()  # not services.rng: a seeded app's decisions stay reproducible
    await asyncio.sleep(interval * jitter.random())
    while True:
        try:
            pruned = await prune_events(services.db, cutoff(services.clock(), days))
            if pruned.total:
                log.info(
                    "old events pruned",
                    decision_events=pruned.decision_events,
                    interaction_events=pruned.interaction_events,
                )
        except Exception as exc:  # an outage or a busy database: the next run catches up
            errors.error((type(exc).__name__, str(exc)[:200]), "pruning events failed", exc)
        await asyncio.sleep(interval * (0.5 + jitter.random()))
