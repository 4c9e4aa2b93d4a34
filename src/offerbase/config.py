"""Settings: one class, one prefix (OFFERBASE_), safe defaults for a laptop."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OFFERBASE_", extra="ignore")

    data_dir: Path = Field(default=Path("./.offerbase"))
    database_url: str | None = None
    redis_url: str | None = None
    # Prepended to every Redis key (docs/operations.md, "Redis"); the deployment id that
    # follows it already keeps deployments apart, a prefix can name them or separate more.
    redis_prefix: str = "offerbase:"
    # Decision events committed before the decision is answered (slower; nothing queued can be
    # lost in a crash). Off: queued and written in batches (docs/operations.md, "Events").
    events_durable: bool = False
    secret_key: str | None = None
    # Adobe IMS hands out 24 h tokens; clients written against it refresh on that rhythm.
    token_ttl_seconds: int = 86_400
    max_body_bytes: int = 1_048_576
    # How often each worker checks whether its sandboxes' catalogs changed (decisioning freshness).
    snapshot_poll_seconds: float = 0.5
    # How often each worker checks whether credentials were revoked or rotated: a revoked
    # credential's tokens stop working on every worker within this (plus one query).
    credential_poll_seconds: float = 0.5
    # Failed client-secret checks at POST /ims/token/v3 per minute, per client id and per
    # client address; past them 429 (api/client_auth.py). Shared through Redis when set.
    token_failures_per_client: int = Field(default=10, ge=1)
    token_failures_per_address: int = Field(default=30, ge=1)
    # A failed or throttled token request is answered after this pause (a tarpit): a client
    # retrying at once makes one attempt per second per connection; a sleeping request costs
    # the server nothing.
    token_failure_delay_seconds: float = Field(default=1.0, ge=0)
    # Admin UI (/admin): how long a sign-in lasts (then the user signs in again), and failed
    # sign-ins per minute per email and per client address before 429 (api/admin_ui/auth.py).
    admin_session_seconds: int = Field(default=8 * 3600, ge=60)
    admin_sign_in_failures_per_email: int = Field(default=5, ge=1)
    admin_sign_in_failures_per_address: int = Field(default=30, ge=1)
    # RFC 6749 §2.3.1 keeps client_secret out of URLs (they end up in logs and proxies), so
    # it is refused in the query string. Adobe's own Postman collections and samples put it
    # there for /ims/token/v2: `true` accepts that, for a migration.
    token_secret_in_query: bool = False
    # `GET /metrics` (Prometheus, unauthenticated): turn it off where the port is public and
    # traffic volumes should not be.
    metrics: bool = True
    # One JSON line per request on stderr (structlog). Off by default: at thousands of
    # decisions per second it is a stream to ship and store; errors are always logged.
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # What an acknowledged SQLite write survives (docs/operations.md): `full` also a power
    # loss or an OS crash (one fsync per commit), `normal` a crash of Offerbase (kill -9) but
    # maybe not the last commits before a power loss. PostgreSQL follows its own settings.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Raw decision and interaction events older than this many days are deleted by a
    # background task of the server (store/retention.py; rollups are kept); 0 keeps them
    # forever. At most 100 years: a larger value is a typo, refused at startup.
    event_retention_days: int = Field(default=90, ge=0, le=36_500)
    # How often each worker runs that task (with jitter): several workers prune harmlessly.
    event_prune_interval_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # Batch decisioning workloads this process runs at once, each in a worker process of its
    # own (api/workload_runs.py); 0: this process runs none (another one of the deployment
    # does). Adobe's limit of 5 running per dataset holds whatever the total.
    batch_runners: int = Field(default=2, ge=0, le=64)
    # A running workload's runner renews its lease every third of this; a workload whose lease
    # ran out lost its runner (a restart, a crash) and is failed by the next runner that looks.
    batch_lease_seconds: int = Field(default=30, ge=2, le=3600)
    # How often an idle runner looks for QUEUED workloads submitted through another process
    # (its own process's submissions wake it at once).
    batch_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # AI ranking (docs/ai-ranking.md): how often each worker's learner turns new displays and
    # clicks into the strategies' evidence, and how often each worker re-reads that evidence.
    # Together they bound how soon feedback moves every worker's posteriors (about 3 s by
    # default; at most 10 s within these bounds, while the database keeps up).
    ranking_learn_seconds: float = Field(default=0.5, gt=0, le=4)
    # Up to 30 days: a benchmark emulates a model retrained every few hours with a reader that
    # reads once per server start (bench/ai_ranking.py); past 5 s the 10 s bound no longer holds.
    ranking_refresh_seconds: float = Field(default=2.0, ge=0, le=30 * 86_400)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'offerbase.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The token-signing key: from the environment, else generated once into the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.ensure_data_dir()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def ensure_data_dir(self) -> None:
        """Create the data dir for its owner only (0700): it holds the signing key, the first
        credential and, with SQLite, every tenant's data. An existing directory is left as the
        operator made it."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
