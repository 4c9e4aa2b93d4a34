"""The fast path of a batch partition (batch/fast.py) against the engine's own decide(), the
reference: generated catalogs (priority tiers with ties, several criteria, criterion rules,
offers outside their dates, unknown rules, global and per-profile caps at and under their
limits, caps limited to another placement) and generated profiles (nulls, absent fields, mixed
types in NDJSON, profiles without an identity), every row with the same counters and seed."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest

from builders import criterion, decision, fallback, offer, placement, rule
from offerbase.batch.partition import (
    BODY_COLUMN,
    ROW_COLUMN,
    BatchInputError,
    BatchJob,
    Counts,
    decide_partition,
    decide_rows,
    job_fast_plan,
    job_snapshot,
    read_profiles,
)
from offerbase.engine import DecisionRequest, ScopeRequest, capping_keys

NOW = datetime(2026, 12, 1, tzinfo=UTC)
RULES = [
    "profile.points >= {k}",
    'profile.country = "US"',
    "profile.vip = true",
    'profile.loyalty.tier = "gold" or profile.points < {k}',
    'not (profile.country = "FR")',
    'profile.country.startsWith("U")',
    "profile.points > {k} and profile.vip = false",
    "profile.points != {k}",
]


def _catalog(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    rules = [rule(f"R{i}", rng.choice(RULES).format(k=rng.randrange(100))) for i in range(6)]
    offers = []
    for i in range(rng.randrange(4, 30)):
        constraint = None
        if rng.random() < 0.8:
            # "nope" is a rule the catalog does not have: always false, as online
            rid = rng.choice([*(r["id"] for r in rules), "nope"])
            constraint = {"profileConstraintType": "eligibilityRule", "eligibilityRule": rid}
        caps = None
        if rng.random() < 0.3:
            caps = [
                {
                    "limit": rng.randrange(1, 3),
                    "scope": rng.choice(["global", "profile"]),
                    "entity": rng.choice(["offer", "placement"]),
                    **({"placements": ["P2"]} if rng.random() < 0.2 else {}),
                }
            ]
        dated = rng.random() < 0.1
        offers.append(
            offer(
                f"O{i}",
                priority=rng.randrange(4),
                placements=("P1", "P2"),
                constraint=constraint,
                caps=caps,
                end="2020-01-01T00:00:00Z" if dated else None,
            )
        )
    ids = [o["id"] for o in offers]
    criteria = []
    for c in range(rng.randrange(1, 4)):
        gate = None
        if rng.random() < 0.3:
            gate = {"profileConstraintType": "eligibilityRule", "eligibilityRule": f"R{c}"}
        criteria.append(
            criterion(
                options=rng.sample(ids, rng.randrange(1, len(ids) + 1)),
                priority=rng.randrange(3),
                constraint=gate,
            )
        )
    # equal criterion priorities make a scored group (general path): keep them distinct
    for c, crit in enumerate(criteria):
        crit["rank"] = {"priority": c}
    return {
        "personalized-offer": offers,
        "fallback-offer": [fallback()],
        "placement": [placement("P1"), placement("P2")],
        "decision-rule": rules,
        "decision": [decision("D1", criteria)],
        "collection": [],
        "ranking-formula": [],
        "tag": [],
    }


def _profile(rng: random.Random, i: int, mixed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    person = f"p{rng.randrange(40)}@x"
    shape = rng.randrange(6)
    if shape < 3:
        body["identityMap"] = {"Email": [{"id": person, "primary": True}]}
    elif shape == 3:  # the primary identity in the second namespace
        body["identityMap"] = {
            "Email": [{"id": person, "primary": False}],
            "ECID": [{"id": f"e{rng.randrange(9)}", "primary": True}],
        }
    elif shape == 4:  # no primary: the first identity; an empty namespace before it
        body["identityMap"] = {
            "ECID": [],
            # (no primary: null in a Parquet column, absent in NDJSON)
            "Email": [{"id": person}, {"id": "other@x", "primary": False}],
        }
    points: Any = rng.choice([None, rng.randrange(100), rng.randrange(100)])
    if mixed:
        points = rng.choice([points, str(rng.randrange(100)), True, 12.5, "x"])
    if points is not None or rng.random() < 0.5:
        body["points"] = points
    body["country"] = rng.choice(["US", "FR", "UK", None, "us"])
    body["vip"] = rng.choice([True, False, None])
    if rng.random() < 0.7:
        body["loyalty"] = {"tier": rng.choice(["gold", "silver", None])}
    return body


def _table(profiles: list[dict[str, Any]], ndjson: bool) -> pa.Table:
    rows = list(range(1, len(profiles) + 1))
    if ndjson:
        texts = pa.array([orjson.dumps(p) for p in profiles], pa.binary())
        return pa.table({ROW_COLUMN: rows, BODY_COLUMN: texts})
    return pa.Table.from_pylist(profiles).append_column(ROW_COLUMN, pa.array(rows, pa.int64()))


def _counters(rng: random.Random, job: BatchJob, profiles: list[dict[str, Any]]) -> dict[str, int]:
    """Counters at, under and over their limits, global and per profile."""
    snapshot = job_snapshot(job)
    keys: set[str] = set()
    for body in profiles:
        entries = body.get("identityMap", {}).get("Email", [])
        key = f"email:{entries[0]['id']}" if entries else None
        request = DecisionRequest(scopes=job.scopes, profile_key=key)
        keys.update(capping_keys(snapshot, request, NOW))
    return {key: rng.randrange(3) for key in sorted(keys) if rng.random() < 0.6}


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_equals_decide(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import offerbase.batch.columnar as columnar

    if seed % 4 == 0:  # a pattern's rows decided a few at a time (large tiers, many draws)
        monkeypatch.setattr(columnar, "MAX_CELLS", 5)
    rng = random.Random(seed)
    catalog = _catalog(rng)
    mixed = seed % 2 == 1  # NDJSON can mix types in a field; Parquet columns cannot
    profiles = [_profile(rng, i, mixed) for i in range(300)]
    scopes = (ScopeRequest("D1", "P1", rng.randrange(1, 4)),)
    job = BatchJob(catalog, 1, scopes, bool(seed % 3), NOW, seed, {}, f"w{seed}")
    assert job_fast_plan(job) is not None  # the catalogs are made for the fast path
    counters = _counters(rng, job, profiles)
    job = BatchJob(catalog, 1, scopes, bool(seed % 3), NOW, seed, counters, f"w{seed}")
    running = dict.fromkeys(list(counters)[::5], 1)
    table = _table(profiles, mixed)

    fast_out, fast_stats = decide_partition(job, table, running)
    # the reference: decide() per row, every rule evaluated by its compiled closure
    ref_out, ref_stats = decide_rows(job, read_profiles(table), Counts(counters, running))

    assert fast_out.to_pylist() == ref_out.to_pylist()
    assert fast_stats.consuming == ref_stats.consuming
    assert fast_stats.fallbacks == ref_stats.fallbacks
    assert fast_stats.bounds == ref_stats.bounds


@pytest.mark.parametrize("bad", ["", "x" * 1025, None])
def test_a_malformed_identity_is_named_on_both_paths(bad: str | None) -> None:
    rng = random.Random(3)
    job = BatchJob(_catalog(rng), 1, (ScopeRequest("D1", "P1", 1),), False, NOW, 3, {}, "w")
    profiles = [_profile(rng, i, False) for i in range(5)]
    profiles[3]["identityMap"] = {"Email": [{"id": "a@x", "primary": False}, {"id": bad}]}
    table = _table(profiles, False)
    with pytest.raises(BatchInputError) as fast:
        decide_partition(job, table)
    with pytest.raises(BatchInputError) as reference:
        read_profiles(table)
    assert str(fast.value) == str(reference.value)
    assert "row 4, /identityMap/Email/1" in str(fast.value)


def test_jobs_the_fast_path_does_not_answer_go_to_the_engine() -> None:
    rng = random.Random(1)
    catalog = _catalog(rng)
    two_scopes = (ScopeRequest("D1", "P1", 1), ScopeRequest("D1", "P2", 1))
    assert job_fast_plan(BatchJob(catalog, 1, two_scopes, False, NOW, 1, {}, "w")) is None
    catalog = copy.deepcopy(catalog)  # a new catalog (the snapshot is cached per catalog)
    catalog["decision-rule"].append(rule("RO", "offer.rank.priority > 1"))  # reads the offer
    for body in catalog["personalized-offer"]:
        body["selectionConstraint"] = {
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": "RO",
        }
    one = (ScopeRequest("D1", "P1", 1),)
    assert job_fast_plan(BatchJob(catalog, 1, one, False, NOW, 1, {}, "w")) is None


def test_the_columnar_draws_are_the_row_rngs_draws() -> None:
    from offerbase.batch.columnar import draws
    from offerbase.batch.partition import RowRandom, row_seed, row_seeds

    job = BatchJob({}, 1, (), False, NOW, 11, {}, "w")
    keys = [f"email:p{i}@x" for i in range(200)] + ["row:7", ""]
    for start, stop in ((0, 1), (3, 9)):
        expected = []
        for key in keys:
            rng = RowRandom(row_seed(11, key))
            seen = [rng.random() for _ in range(stop)]
            expected.append(seen[start:])
        assert draws(job, keys, start, stop).tolist() == expected
    # the seeds of a partition at once are row_seed's, whatever the lengths and characters
    odd = [*keys, "é€😀", "x" * 1500, "row:1"]
    for seed in (0, 11, -3, 2**70 + 5):
        assert row_seeds(seed, odd).tolist() == [row_seed(seed, key) for key in odd]
    values = draws(job, keys, 0, 50).ravel()
    assert values.min() >= 0.0
    assert values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.02
