"""Table definitions (SQLAlchemy Core). The Alembic migrations create exactly these.

Tenancy is declared here, once per table: a table that holds a tenant's rows names the column
that says which sandbox a row belongs to (`info={"tenant": ...}`), and store/scope.py filters
every statement on it. The tables of the tenant directory (organizations and credentials),
which tenants.py reads to find the tenant of a request, say `info={"directory": True}`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# JSON on SQLite, JSONB on PostgreSQL so that property filters can use indexes and operators.
Json = sa.JSON().with_variant(JSONB(), "postgresql")

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("created", sa.String(32), nullable=False),
    info={"directory": True},
)

sandboxes = sa.Table(
    "sandboxes",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(255), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("sandbox_id", sa.String(64), nullable=False, unique=True),
    sa.Column("container_id", sa.String(64), nullable=False, unique=True),
    # Incremented by every catalog write of the sandbox: it orders writes, versions list
    # snapshots, and tells decisioning workers when to rebuild their in-memory catalog.
    sa.Column("catalog_version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created", sa.String(32), nullable=False),
    sa.UniqueConstraint("org_id", "name", name="uq_sandboxes_org_name"),
    info={"tenant": "pk"},  # the tenant itself: its catalog version is read and bumped
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("org_id", sa.String(255), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),
    sa.Column("created", sa.String(32), nullable=False),
    # The one sandbox (by name) the credential may use; NULL: every sandbox of its org.
    sa.Column("sandbox", sa.String(255), nullable=True),
    # May manage the org's credentials over HTTP (api/admin.py); always org-wide.
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    # Bumped by a rotation: tokens carry the generation they were issued under, and a token
    # of an older generation is refused.
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("revoked", sa.String(32), nullable=True),  # when; NULL while valid
    info={"directory": True},
)

# One row (id 1). `credentials_version` is bumped by every change to the credentials table, in
# the same transaction, so that each worker learns of a revocation or a rotation by reading one
# number (api/credential_cache.py) instead of the whole table.
directory_state = sa.Table(
    "directory_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("credentials_version", sa.BigInteger, nullable=False, server_default="0"),
    info={"directory": True},
)

# People who sign in to the admin UI (/admin). The email is the sign-in name, so it is unique
# across organizations (stored lowercased); `sandboxes` is the list of sandbox names the user
# may use, NULL for every sandbox of the org. Roles: store/users.py.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("org_id", sa.String(255), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("sandboxes", Json, nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    info={"directory": True},
)

# Signed-in admin UI sessions, server-side so that sign-out, deleting a user and expiry end them
# at once. The cookie carries a random token; only its SHA-256 is stored, so a read of this
# table gives no usable cookie. `csrf_token` is the session's synchronizer token.
admin_sessions = sa.Table(
    "admin_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("expires", sa.String(32), nullable=False),
    sa.Index("ix_admin_sessions_user", "user_id"),
    sa.Index("ix_admin_sessions_expires", "expires"),
    info={"directory": True},
)

# One row per version of an entity. The current version has valid_to NULL; older versions are
# kept (valid_to = the catalog version that replaced them) so that a paged list can read a
# consistent snapshot of the catalog, visiting every match exactly once while others write.
NAME_CHARS = 1024
entities = sa.Table(
    "entities",
    metadata,
    sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(255), nullable=False),
    # The body's name, cut at NAME_CHARS characters (Library._insert): what lists search first.
    sa.Column("name", sa.String(NAME_CHARS), nullable=True),
    sa.Column("body", Json, nullable=False),
    sa.Column("etag", sa.Integer, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("modified", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("modified_by", sa.String(255), nullable=False),
    sa.Column("created_client", sa.String(64), nullable=False),
    sa.Column("modified_client", sa.String(64), nullable=False),
    sa.Column("valid_from", sa.BigInteger, nullable=False),
    sa.Column("valid_to", sa.BigInteger, nullable=True),
    sa.Column("closed_at", sa.String(32), nullable=True),
    sa.Index(
        "uq_entities_current_id",
        "sandbox_pk",
        "entity_id",
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
    ),
    sa.Index("ix_entities_list", "sandbox_pk", "kind", "modified", "entity_id"),
    sa.Index("ix_entities_versions", "sandbox_pk", "kind", "valid_from", "valid_to"),
    # History pruning (migration 0005): closed rows only.
    sa.Index(
        "ix_entities_history",
        "sandbox_pk",
        "closed_at",
        sqlite_where=sa.text("valid_to IS NOT NULL"),
        postgresql_where=sa.text("valid_to IS NOT NULL"),
    ),
    info={"tenant": "sandbox_pk"},
)


def alive_entities(as_of: int | None = None) -> sa.ColumnElement[bool]:
    """Entity versions that are current, or that were alive at catalog version `as_of`."""
    if as_of is None:
        return entities.c.valid_to.is_(None)
    return sa.and_(
        entities.c.valid_from <= as_of,
        sa.or_(entities.c.valid_to.is_(None), entities.c.valid_to > as_of),
    )


# Every version an entity ever had, and its deletion: who, when, what (migration 0016). The
# `entities` table keeps superseded versions only CURSOR_TTL (for paging), so this is where the
# admin UI's history, diffs and restores read from. `body` is None for a deletion.
entity_history = sa.Table(
    "entity_history",
    metadata,
    sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(255), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # created | updated | deleted
    sa.Column("etag", sa.Integer, nullable=False),
    sa.Column("body", Json, nullable=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("by_user", sa.String(255), nullable=False),
    sa.Column("by_client", sa.String(64), nullable=False),
    sa.Index("ix_entity_history_entity", "sandbox_pk", "entity_id", "row_id"),
    info={"tenant": "sandbox_pk"},
)


# Current references between entities, for referential integrity on delete.
references = sa.Table(
    "entity_references",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("from_id", sa.String(255), nullable=False),
    sa.Column("from_kind", sa.String(32), nullable=False),
    sa.Column("pointer", sa.String(1024), nullable=False),
    sa.Column("to_id", sa.String(255), nullable=False),
    sa.Index("ix_refs_to", "sandbox_pk", "to_id"),
    sa.Index("ix_refs_from", "sandbox_pk", "from_id"),
    info={"tenant": "sandbox_pk"},
)

# Decision events: one row per decision that was not a dry run (written off the hot path).
decision_events = sa.Table(
    "decision_events",
    metadata,
    sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("proposition_id", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.String(32), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Index("ix_decision_events_time", "sandbox_pk", "timestamp", "row_id"),
    # The AI ranking learner finds the decision of a display or click by its proposition id.
    sa.Index("ix_decision_events_proposition", "sandbox_pk", "proposition_id"),
    info={"tenant": "sandbox_pk"},
)

# Capping counters (store/counters.py): one row per (sandbox, counter key); the key format is
# the engine's (engine/capping.py). `expires_at` (Unix seconds) is set when the counter is
# created; an expired row reads as absent and restarts at 0 on its next increment.
capping_counters = sa.Table(
    "capping_counters",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_capping_counters_expires", "expires_at"),
    info={"tenant": "sandbox_pk"},
)

# Stored profiles (store/profiles.py): one row per profile of a sandbox, reachable through any of
# its identities. Namespace codes are stored lower-case (compared case-insensitively, like
# Adobe's); identity values are case-sensitive. `profile_key` is the "namespace:id" that
# decisioning uses for per-profile capping, stable whichever identity a request sends.
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("pk", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("profile_key", sa.String(1300), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("modified", sa.String(32), nullable=False),
    sa.Index("ix_profiles_sandbox", "sandbox_pk"),
    info={"tenant": "sandbox_pk"},
)

profile_identities = sa.Table(
    "profile_identities",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("namespace", sa.String(255), primary_key=True),
    sa.Column("identity", sa.String(1024), primary_key=True),
    sa.Column(
        "profile_pk",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("profiles.pk"),
        nullable=False,
    ),
    sa.Index("ix_profile_identities_profile", "profile_pk"),
    info={"tenant": "sandbox_pk"},
)

# One row: this database's deployment id, generated when the database is created (migration
# 0007). Redis keys carry it, so deployments sharing a Redis never share counters
# (store/deployment.py). It belongs to no tenant.
deployment = sa.Table(
    "deployment",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.String(32), nullable=False),
    info={"directory": True},
)

# Datastreams (store/datastreams.py): what an Edge request names with `configId` / `dataStreamId`.
# The id is public (it sits in web pages) and unique across the deployment, so an unauthenticated
# Edge request finds its sandbox by it, as the legacy decisioning path does by container id.
datastreams = sa.Table(
    "datastreams",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),
    # Allowed web origins ("https://www.shop.example"), as a JSON array; empty: no browser origin.
    sa.Column("origins", Json, nullable=False),
    # Default itemCount per placement id, as a JSON object; a scope's own itemCount wins.
    sa.Column("item_counts", Json, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Index("ix_datastreams_sandbox", "sandbox_pk"),
    info={"tenant": "sandbox_pk"},
)

# Interaction events (store/interactions.py): display, interact, dismiss and custom feedback on
# propositions, from the Edge endpoints. One row per (event, proposition): an event that names
# two propositions is two rows. Idempotent on (sandbox, event id, seq).
interaction_events = sa.Table(
    "interaction_events",
    metadata,
    sa.Column("row_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    # The position of the proposition in the event: (event id, seq) names a row, so an event
    # sent twice is stored once, and one that names a proposition twice (two scopes of one
    # decision share its proposition id) keeps both.
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("proposition_id", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.String(32), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.UniqueConstraint("sandbox_pk", "event_id", "seq", name="uq_interaction_events_event"),
    sa.Index("ix_interaction_events_time", "sandbox_pk", "timestamp", "row_id"),
    sa.Index("ix_interaction_events_proposition", "sandbox_pk", "proposition_id"),
    info={"tenant": "sandbox_pk"},
)

# Datasets (store/datasets.py): where batch decisioning jobs write their results, Parquet files
# under `path` (a directory on the server's filesystem), one directory per workload. The id is
# what a request's `xdm:dataSetId` names; unique across the deployment, like a datastream's.
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False, server_default=""),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Index("ix_datasets_sandbox", "sandbox_pk"),
    info={"tenant": "sandbox_pk"},
)

# Batch decisioning workloads (store/workloads.py): one row per job of
# `POST /data/core/dwm/workloads/decisions`. `status` is Adobe's (QUEUED, PROCESSING,
# INGESTING, COMPLETED, ERROR); a runner claims a QUEUED row with one conditional UPDATE, and
# while it runs the job it renews `heartbeat` (Unix seconds): a job whose heartbeat is older
# than the lease lost its runner (a restart, a crash) and is failed by the next runner.
workloads = sa.Table(
    "workloads",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), nullable=False),
    sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # The accepted request, normalised (segment id, propositionRequests, includeContent).
    sa.Column("request", Json, nullable=False),
    sa.Column("status_detail", Json, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.String(32), nullable=False),
    sa.Column("runner", sa.String(64), nullable=True),
    sa.Column("heartbeat", sa.BigInteger, nullable=True),
    sa.Index("ix_workloads_status", "status", "dataset_id", "created_ms"),
    sa.Index("ix_workloads_sandbox", "sandbox_pk"),
    info={"tenant": "sandbox_pk"},
)

# Reports (store/rollups.py writes them with the event batches, store/reports.py reads them;
# docs/reports.md defines every number). Keys: the UTC day of the event's timestamp
# (YYYY-MM-DD) and the activity, placement and offer ids, "" where the event names none
# (unattributed). One row per (sandbox, day, activity, placement, offer):
_KEY = 255  # an id longer than a catalog id is no offer of ours: counted as unattributed
report_offer_days = sa.Table(
    "report_offer_days",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("activity_id", sa.String(_KEY), primary_key=True),
    sa.Column("placement_id", sa.String(_KEY), primary_key=True),
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("decisions", sa.BigInteger, nullable=False),
    sa.Column("fallbacks", sa.BigInteger, nullable=False),
    sa.Column("cap_hits", sa.BigInteger, nullable=False),
    sa.Column("displays", sa.BigInteger, nullable=False),
    sa.Column("unique_displays", sa.BigInteger, nullable=False),
    sa.Column("clicks", sa.BigInteger, nullable=False),
    sa.Column("unique_clicks", sa.BigInteger, nullable=False),
    info={"tenant": "sandbox_pk"},
)

# Custom events (conversions) per event type (the event's xdm.eventType), same keys.
report_conversions = sa.Table(
    "report_conversions",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("activity_id", sa.String(_KEY), primary_key=True),
    sa.Column("placement_id", sa.String(_KEY), primary_key=True),
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("event_type", sa.String(_KEY), primary_key=True),
    sa.Column("conversions", sa.BigInteger, nullable=False),
    info={"tenant": "sandbox_pk"},
)

# Decision-level: how many propositions (scopes decided) were answered with options, the
# fallback or nothing, per (sandbox, day, activity, placement): the fallback rate.
report_propositions = sa.Table(
    "report_propositions",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("activity_id", sa.String(_KEY), primary_key=True),
    sa.Column("placement_id", sa.String(_KEY), primary_key=True),
    sa.Column("propositions", sa.BigInteger, nullable=False),
    sa.Column("fallback_propositions", sa.BigInteger, nullable=False),
    sa.Column("empty_propositions", sa.BigInteger, nullable=False),
    info={"tenant": "sandbox_pk"},
)

# Exact unique counts: one row per identity that displayed (kind "display") or clicked
# ("click") an offer in a (day, activity, placement). Inserted or ignored: a new row is what
# raises report_offer_days' unique_* column; a range's uniques are COUNT(DISTINCT identity).
report_uniques = sa.Table(
    "report_uniques",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("activity_id", sa.String(_KEY), primary_key=True),
    sa.Column("placement_id", sa.String(_KEY), primary_key=True),
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("identity", sa.String(_KEY), primary_key=True),
    info={"tenant": "sandbox_pk"},
)

# The same per (day, offer) whatever the activity and placement: the uniques of the usual
# "by offer and day" report, stored (report_offer_day_uniques) rather than counted per request.
report_offer_uniques = sa.Table(
    "report_offer_uniques",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("identity", sa.String(_KEY), primary_key=True),
    info={"tenant": "sandbox_pk"},
)

report_offer_day_uniques = sa.Table(
    "report_offer_day_uniques",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("unique_displays", sa.BigInteger, nullable=False),
    sa.Column("unique_clicks", sa.BigInteger, nullable=False),
    info={"tenant": "sandbox_pk"},
)

# AI ranking (store/ranking.py; docs/ai-ranking.md). The evidence of each ranking strategy: per
# (strategy, arm, context key, offer) the displays (trials) and goal events (successes) that
# the learner attributed to it. `version` is the ranking_state version of the learner run that
# last changed the row: each worker's reader loads only the rows changed since its last load.
ranking_stats = sa.Table(
    "ranking_stats",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("strategy_id", sa.String(_KEY), primary_key=True),
    sa.Column("arm", sa.String(16), primary_key=True),  # "model" | "holdout"
    sa.Column("context_key", sa.String(_KEY), primary_key=True),  # "" for auto-optimization
    sa.Column("offer_id", sa.String(_KEY), primary_key=True),
    sa.Column("trials", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Index("ix_ranking_stats_version", "sandbox_pk", "version"),
    info={"tenant": "sandbox_pk"},
)

# One row per sandbox that has learned anything: `version` is bumped by every learner run
# that changed ranking_stats, under this row's lock, so runs of one sandbox are serialised
# (one learner at a time, whichever worker) and versions commit in order.
ranking_state = sa.Table(
    "ranking_state",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    info={"tenant": "sandbox_pk"},
)

# The learner's work: one row per interaction event (display, interact, custom) not learned
# from yet, inserted in the same transaction as the event itself (store/interactions.py), and
# deleted in the same transaction as the ranking_stats it adds (or when the learner gives up on
# it: its decision event never came). `due_ms`: when to look at it next (Unix ms).
ranking_queue = sa.Table(
    "ranking_queue",
    metadata,
    sa.Column("sandbox_pk", sa.Integer, sa.ForeignKey("sandboxes.pk"), primary_key=True),
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("due_ms", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Index("ix_ranking_queue_due", "sandbox_pk", "due_ms"),
    sa.Index("ix_ranking_queue_due_all", "due_ms"),
    info={"tenant": "sandbox_pk"},
)
