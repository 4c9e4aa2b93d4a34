"""Prometheus metrics, served at `GET /metrics`.

With several worker processes (`offerbase serve --workers N`) each process counts on its own;
`serve` then sets PROMETHEUS_MULTIPROC_DIR before the workers start, prometheus_client keeps
the values in files there, and `/metrics` answers the sum over all workers, whichever worker
the scrape reaches. No label carries an organization, a sandbox or a path with an id in it:
metrics are safe to scrape and their number of series is fixed by the route table.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Decisions are answered in milliseconds and catalog writes in tens of milliseconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "offerbase_http_requests",
    "HTTP requests answered, by route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "offerbase_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
DECISION_ITEMS = Counter(
    "offerbase_decision_items",
    "Offers proposed by the Decisioning API: kind is 'personalized' or 'fallback'.",
    ["kind"],
)
CAPPING_RETRIES = Counter(
    "offerbase_capping_retries",
    "Decisions taken again because a concurrent request consumed a capped offer first.",
)
SNAPSHOT_BUILDS = Histogram(
    "offerbase_snapshot_build_seconds",
    "Time to read a sandbox's catalog and compile its decisioning snapshot.",
    buckets=_LATENCY_BUCKETS,
)
EVENTS_WRITTEN = Counter("offerbase_decision_events_written", "Decision events stored.")
EVENTS_DROPPED = Counter(
    "offerbase_decision_events_dropped",
    "Decision events dropped because the write queue was full (the database is too slow or "
    "down), or still queued when a shutdown could not write them.",
)
EVENTS_REJECTED = Counter(
    "offerbase_decision_events_rejected",
    "Decision events that cannot be stored (not serialisable, or refused by the database), "
    "each rejected on its own: the events queued with them are stored.",
)
EVENTS_PRUNED = Counter(
    "offerbase_events_pruned",
    "Raw events deleted because they were older than OFFERBASE_EVENT_RETENTION_DAYS.",
    ["table"],
)
INTERACTIONS_WRITTEN = Counter(
    "offerbase_interaction_events_written",
    "Interaction events (Edge feedback) stored; a copy of a stored event is skipped, counted here.",
)
INTERACTIONS_DROPPED = Counter(
    "offerbase_interaction_events_dropped",
    "Interaction events dropped because the write queue was full, or still queued when a "
    "shutdown could not write them.",
)
INTERACTIONS_REJECTED = Counter(
    "offerbase_interaction_events_rejected",
    "Interaction events that cannot be stored, each rejected on its own.",
)
RANKING_EVENTS = Counter(
    "offerbase_ranking_events",
    "Interaction events the AI ranking learner finished with (store/ranking.py), by outcome: "
    "counted (a display or goal event of a ranked offer), ignored (its decision was not "
    "ranked by a strategy), expired (its decision event never came).",
    ["outcome"],
)


def prepare_multiprocess_dir(path: Path) -> None:
    """Start every `serve` with an empty directory: files of a previous run would be summed."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def exposition() -> tuple[bytes, str]:
    """The text exposition format of every metric, summed over workers when there are several."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        # prometheus_client leaves this constructor unannotated.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
