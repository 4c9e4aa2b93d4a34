"""What a request handler needs from the app: one typed `Services`, built once per app.

`create_app` stores it as `app.state.services`; handlers read it with `services(request)` (the
plain Starlette hot path) or take a `ServicesDep` parameter (FastAPI routes). Nothing else reads
`app.state`, so every dependency of the API has one name and one type.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends
from starlette.applications import Starlette
from starlette.requests import Request

from offerbase.api.admin_ui.sign_in import SignInChecker
from offerbase.api.client_auth import FailureThrottle, SecretChecker
from offerbase.api.credential_cache import CredentialCache
from offerbase.api.datastream_cache import DatastreamCache
from offerbase.api.ranking import Learner, RankingStatsCache
from offerbase.api.ranking_stats import RankingStatsSource
from offerbase.api.sandboxes import SandboxCache
from offerbase.api.snapshots import SnapshotCache
from offerbase.api.workload_runs import WorkloadRunner
from offerbase.config import Settings
from offerbase.store.counters import CounterStore, counter_store
from offerbase.store.db import Database
from offerbase.store.events import EventWriter, PendingEvent
from offerbase.store.interactions import InteractionEvent, interaction_writer


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request handler uses, built once per app (create_app)."""

    settings: Settings
    db: Database
    sandboxes: SandboxCache
    credentials: CredentialCache
    secrets: SecretChecker
    sign_ins: SignInChecker  # admin UI passwords (api/admin_ui)
    snapshots: SnapshotCache
    datastreams: DatastreamCache  # the Edge endpoints' tenant, by public datastream id
    counters: CounterStore
    events: EventWriter[PendingEvent]
    # Edge feedback (store/interactions.py): the same writer, idempotent, the same durable flag.
    interactions: EventWriter[InteractionEvent]
    # Batch decisioning workloads (api/workload_runs.py): this process's job runner.
    workloads: WorkloadRunner
    # AI ranking: the strategies' evidence read per decision (api/ranking_stats.py's seam;
    # api/ranking.py's RankingStatsCache, this worker's view of the ranking_stats table), and
    # this worker's learner (interaction events -> ranking_stats, off the hot path).
    ranking_stats: RankingStatsSource
    learner: Learner
    # Injected time and randomness, so decisions are reproducible (tests pass their own).
    clock: Callable[[], datetime]
    rng: random.Random

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> Services:
        counters = counter_store(db, settings.redis_url, settings.redis_prefix)
        clock = clock or _now
        snapshots = SnapshotCache(db, settings.snapshot_poll_seconds)
        return cls(
            settings=settings,
            db=db,
            sandboxes=SandboxCache(db),
            credentials=CredentialCache(db, settings.credential_poll_seconds),
            secrets=SecretChecker(
                FailureThrottle(
                    settings.redis_url,
                    per_client=settings.token_failures_per_client,
                    per_address=settings.token_failures_per_address,
                    key_prefix=f"{settings.redis_prefix}throttle",  # OFFERBASE_REDIS_PREFIX
                )
            ),
            sign_ins=SignInChecker(
                FailureThrottle(
                    settings.redis_url,
                    per_client=settings.admin_sign_in_failures_per_email,
                    per_address=settings.admin_sign_in_failures_per_address,
                    key_prefix=f"{settings.redis_prefix}admin-sign-in",
                )
            ),
            snapshots=snapshots,
            datastreams=DatastreamCache(db, settings.snapshot_poll_seconds),
            counters=counters,
            events=EventWriter(db, durable=settings.events_durable),
            interactions=interaction_writer(db, durable=settings.events_durable),
            workloads=WorkloadRunner(db, counters, settings, clock),
            ranking_stats=RankingStatsCache(db, settings.ranking_refresh_seconds),
            learner=Learner(db, snapshots, clock, settings.ranking_learn_seconds),
            clock=clock,
            rng=rng or random.Random(),
        )


def services_of(app: Starlette) -> Services:
    # app.state is untyped (a Starlette State); this annotation is the one place that says
    # what it holds.
    found: Services = app.state.services
    return found


def services(request: Request) -> Services:
    """The app's services, for code that has the request."""
    found: Services = request.app.state.services
    return found


async def _services_dependency(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain-def dependency in its thread pool, a round trip
    # that cut GET /health's throughput by a third (bench/load_decide.py).
    return services(request)


ServicesDep = Annotated[Services, Depends(_services_dependency)]
