"""run_batch against the engine called one profile after another, as the online path does
(counters consumed per decision, RNG seeded per request with `row_seed`): same choices, with
rules, priority ties, a global cap and a per-profile cap, in one process and in two."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import builders
from builders import criterion, decision, fallback, offer, placement, rule
from offerbase.batch.partition import BatchJob, RowRandom, row_seed
from offerbase.batch.run import run_batch
from offerbase.catalog import load_catalog
from offerbase.engine import DecisionRequest, ScopeRequest, build_snapshot, decide

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _catalog(formula: bool) -> dict[str, list[dict]]:
    offers = []
    for i in range(20):
        caps = None
        if i in (3, 7):
            caps = [{"limit": 40, "scope": "global", "entity": "offer"}]
        elif i in (11, 15):
            caps = [{"limit": 1, "scope": "profile", "entity": "offer"}]
        offers.append(
            offer(
                f"O{i}",
                priority=i % 4,
                constraint={
                    "profileConstraintType": "eligibilityRule",
                    "eligibilityRule": f"R{i % 5}",
                },
                caps=caps,
            )
        )
    rules = [rule(f"R{r}", f"profile.points >= {r * 20}") for r in range(5)]
    return {
        "personalized-offer": offers,
        "fallback-offer": [fallback()],
        "placement": [placement("P1"), placement("P2")],
        "decision-rule": rules,
        "decision": [
            decision(
                "D1",
                [criterion(options=[o["id"] for o in offers], formula="F1" if formula else None)],
            )
        ],
        "collection": [],
        # scores with ties (random tie-breaks among the scored offers)
        "ranking-formula": [
            builders.formula(
                "F1", "offer.rank.priority * 2 + profile.points % 3", returnType={"type": "integer"}
            )
        ],
        "tag": [],
    }


def _profiles(count: int) -> list[dict]:
    rng = random.Random(7)
    # duplicates on purpose: a per-profile cap must hold across rows of one person
    return [
        {
            "identityMap": {"Email": [{"id": f"p{rng.randrange(count // 2)}@x", "primary": True}]},
            "points": rng.randrange(100),
        }
        for _ in range(count)
    ]


def _online(catalog: dict, profiles: list[dict], seed: int) -> list[list[str]]:
    snapshot = build_snapshot(load_catalog(catalog), version=1)
    counters: dict[str, int] = {}
    answers = []
    for body in profiles:
        key = "email:" + body["identityMap"]["Email"][0]["id"]
        request = DecisionRequest(scopes=[ScopeRequest("D1", "P1", 2)], profile_key=key)
        result = decide(
            snapshot, request, body, counters, now=NOW, rng=RowRandom(row_seed(seed, key))
        )
        for c in result.consumption:
            counters[c.key] = counters.get(c.key, 0) + 1
        scope = result.scopes[0]
        answers.append([o.id for o in scope.options] or [scope.fallback.id])
    return answers


def _write(path: Path, profiles: list[dict]) -> None:
    if path.suffix == ".parquet":  # nested objects as struct columns, in two row groups
        table = pa.Table.from_pylist(profiles)
        pq.write_table(table, path, row_group_size=len(profiles) // 2 + 1)
    else:
        path.write_bytes(b"\n".join(orjson.dumps(p) for p in profiles))


@pytest.mark.parametrize(
    ("workers", "formula", "suffix"),
    [(1, False, ".ndjson"), (2, False, ".parquet"), (1, True, ".parquet"), (2, True, ".ndjson")],
)
def test_batch_equals_sequential_online_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, formula: bool, suffix: str
) -> None:
    import offerbase.batch.run as run

    monkeypatch.setattr(run, "ROWS_PER_PARTITION", 300)  # several partitions in flight
    catalog, profiles = _catalog(formula), _profiles(3000)
    source = tmp_path / f"in{suffix}"
    _write(source, profiles)
    job = BatchJob(catalog, 1, (ScopeRequest("D1", "P1", 2),), False, NOW, 42, {}, "w1")
    summary = run_batch(job, source, tmp_path / "out", workers=workers)
    table = pq.read_table(tmp_path / "out").to_pylist()
    by_event: dict[str, list[str]] = {}
    for row in table:
        by_event.setdefault(row["decision_event_id"], []).append(row["option_id"])
    assert summary.rows == 3000
    assert list(by_event.values()) == _online(catalog, profiles, 42)
    global_counts = [n for k, n in summary.consumption.items() if "|global|" in k]
    assert max(global_counts, default=0) == 40  # a global cap ran out during the job
    assert max(n for k, n in summary.consumption.items() if "|profile|" in k) == 1
