"""Frequency capping: counters, keys, period buckets, consumption."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from engine_helpers import NOW, ids, offer, run, simple, stored

from offerbase.catalog import load
from offerbase.engine import DecisionRequest, ScopeRequest, capping_keys
from offerbase.engine.capping import CapRule, bucket, cap_rules, counter_key, period_start


def parse_caps(body: dict) -> tuple[CapRule, ...]:  # type: ignore[type-arg]
    """The counters of an offer body, through validation and the catalog loader."""
    return cap_rules(load("personalized-offer", stored("personalized-offer", body)))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("unit", "count", "now", "start"),
    [
        ("day", 1, "2026-11-24T00:00:00", "2026-11-24"),
        ("day", 1, "2026-11-23T23:59:59.999999", "2026-11-23"),
        # unitCount > 1: anchored at 1970-01-01 (day 20781 = 2026-11-24 is odd -> 2026-11-23)
        ("day", 2, "2026-11-24T12:00:00", "2026-11-23"),
        ("day", 2, "2026-11-25T00:00:00", "2026-11-25"),
        # weeks start on Sunday 00:00 UTC (2026-11-22 is a Sunday)
        ("week", 1, "2026-11-22T00:00:00", "2026-11-22"),
        ("week", 1, "2026-11-21T23:59:59", "2026-11-15"),
        ("week", 1, "2026-11-28T23:59:59", "2026-11-22"),
        # 2-week periods anchored at Sunday 1970-01-04
        ("week", 2, "2026-11-24T00:00:00", "2026-11-22"),  # an even week since the anchor
        ("week", 2, "2026-12-05T23:59:59", "2026-11-22"),
        ("week", 2, "2026-12-06T00:00:00", "2026-12-06"),
        ("month", 1, "2026-11-30T23:59:59", "2026-11-01"),
        ("month", 1, "2026-12-01T00:00:00", "2026-12-01"),
        # 3-month periods anchored at January 1970: Jan/Apr/Jul/Oct
        ("month", 3, "2026-11-24T00:00:00", "2026-10-01"),
        ("month", 3, "2027-01-01T00:00:00", "2027-01-01"),
        ("month", 12, "2026-11-24T00:00:00", "2026-01-01"),
    ],
)
def test_period_start(unit: str, count: int, now: str, start: str) -> None:
    assert period_start(unit, count, _at(now)) == date.fromisoformat(start)


def test_period_start_converts_to_utc() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 11, 22, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # Sat 20:00 UTC
    assert period_start("week", 1, local) == date(2026, 11, 15)


def test_parse_caps_enabled_defaults_and_legacy() -> None:
    body = offer(
        "O1",
        caps=[
            {"enabled": False, "limit": 1, "scope": "global", "entity": "offer"},
            {
                "limit": 2,
                "scope": "profile",
                "entity": "placement",
                "repeat": {"enabled": True, "unit": "week"},
            },
            {
                "enabled": True,
                "limit": 3,
                "scope": "global",
                "entity": "offer",
                "repeat": {"enabled": False, "unit": "month", "unitCount": 2},
            },
            {"limit": 4, "scope": "global", "entity": "offer", "events": ["impression"]},
        ],
        legacy_caps={"globalCap": 100, "profileCap": 5},
    )
    caps = parse_caps(body)
    assert [c.tag for c in caps] == ["fc1", "fc2", "fc3", "global", "profile"]
    fc1 = caps[0]
    assert (fc1.per_profile, fc1.per_placement, fc1.unit, fc1.unit_count) == (
        True,
        True,
        "week",
        1,
    )
    assert caps[1].unit is None  # repeat disabled -> one bucket
    assert caps[2].counts_decisions is False
    assert (caps[3].limit, caps[3].per_profile) == (100, False)
    assert (caps[4].limit, caps[4].per_profile) == (5, True)


def test_counter_key_format_and_escaping() -> None:
    (rule,) = parse_caps(
        offer(
            "dps:offer:1|x",
            caps=[
                {
                    "limit": 1,
                    "scope": "profile",
                    "entity": "placement",
                    "repeat": {"enabled": True, "unit": "day", "unitCount": 1},
                }
            ],
        )
    )
    key = counter_key(rule, "dps:offer-placement:9", "Email:a@b.c", bucket(rule, NOW))
    assert key == (
        "cap|dps:offer:1%7Cx|fc0|profile|Email:a@b.c|placement|dps:offer-placement:9|2026-11-24/P1D"
    )


def _capped_catalog(**cap: object):  # type: ignore[no-untyped-def]
    c = {"limit": 2, "scope": "global", "entity": "offer", **cap}
    return simple([offer("O1", 9, placements=("P1", "P2"), caps=[c]), offer("O2", 1)])


def test_capped_at_limit_and_consumption() -> None:
    snap = _capped_catalog()
    key = "cap|O1|fc0|global|-|offer|-|all"
    result = run(snap, counters={key: 1})
    assert ids(result) == ["O1"]
    assert [(c.key, c.limit) for c in result.consumption] == [(key, 2)]
    result = run(snap, counters={key: 2}, trace=True)
    assert ids(result) == ["O2"]
    assert result.consumption == []
    drops = [e for e in result.trace or [] if e["event"] == "dropped" and e["offer"] == "O1"]
    assert drops[0]["reason"] == "capped"
    assert "#0" in drops[0]["detail"]


def test_repeating_cap_bucket_rolls_over() -> None:
    snap = _capped_catalog(repeat={"enabled": True, "unit": "day", "unitCount": 1})
    old = {"cap|O1|fc0|global|-|offer|-|2026-11-23/P1D": 5}
    assert ids(run(snap, counters=old, now=NOW)) == ["O1"]  # yesterday's counter is irrelevant
    assert ids(run(snap, counters=old, now=_at("2026-11-23T23:59:59"))) == ["O2"]


def test_profile_and_placement_scoped_counters() -> None:
    snap = _capped_catalog(scope="profile", entity="placement")
    key_p1 = "cap|O1|fc0|profile|ECID:1|placement|P1|all"
    result = run(snap, profile_key="ECID:1", counters={key_p1: 2})
    assert ids(result) == ["O2"]
    result = run(snap, [("D1", "P2")], profile_key="ECID:1", counters={key_p1: 2})
    assert ids(result) == ["O1"]  # another placement has its own counter
    assert result.consumption[0].key == "cap|O1|fc0|profile|ECID:1|placement|P2|all"
    assert ids(run(snap, profile_key="ECID:2", counters={key_p1: 2})) == ["O1"]
    # no profile identity: per-profile caps are neither enforced nor consumed
    result = run(snap, counters={key_p1: 2})
    assert ids(result) == ["O1"]
    assert result.consumption == []


def test_non_decision_event_caps_checked_not_consumed() -> None:
    snap = _capped_catalog(events=["click"])
    key = "cap|O1|fc0|global|-|offer|-|all"
    assert ids(run(snap, counters={key: 2})) == ["O2"]
    result = run(snap, counters={key: 1})
    assert ids(result) == ["O1"]
    assert result.consumption == []


def test_disabled_cap_ignored() -> None:
    snap = _capped_catalog(enabled=False)
    assert ids(run(snap, counters={"cap|O1|fc0|global|-|offer|-|all": 99})) == ["O1"]


def test_legacy_caps() -> None:
    snap = simple([offer("O1", 9, legacy_caps={"globalCap": 3, "profileCap": 1}), offer("O2")])
    g, p = "cap|O1|global|global|-|offer|-|all", "cap|O1|profile|profile|u:1|offer|-|all"
    result = run(snap, profile_key="u:1")
    assert sorted((c.key, c.limit) for c in result.consumption) == [(g, 3), (p, 1)]
    assert ids(run(snap, profile_key="u:1", counters={p: 1})) == ["O2"]
    assert ids(run(snap, profile_key="u:1", counters={g: 3})) == ["O2"]


def test_in_request_consumption_counts_towards_limit() -> None:
    snap = _capped_catalog(limit=1)
    both = [("D1", "P1"), ("D1", "P2")]
    allow = {"allow_duplicates_across_activities": True, "allow_duplicates_across_placements": True}
    result = run(snap, both, **allow)
    # O1 has one proposal left: the first scope takes it, the second must not exceed the cap
    assert ids(result, 0) == ["O1"]
    assert ids(result, 1) == []  # O2 has no P2 representation
    assert result.scopes[1].fallback is not None
    assert len(result.consumption) == 1


def test_capping_keys_cover_what_decide_reads() -> None:
    snap = simple(
        [
            offer(
                "O1",
                9,
                caps=[
                    {
                        "limit": 1,
                        "scope": "profile",
                        "entity": "offer",
                        "repeat": {"enabled": True, "unit": "month"},
                    }
                ],
            ),
            offer("O2", 5, caps=[{"limit": 1, "scope": "global", "entity": "placement"}]),
            offer("O3", 1),
        ]
    )
    request = DecisionRequest(
        [ScopeRequest("D1", "P1"), ScopeRequest("nope", "P1")], profile_key="u:1"
    )
    keys = capping_keys(snap, request, NOW)
    assert keys == [
        "cap|O1|fc0|profile|u:1|offer|-|2026-11-01/P1M",
        "cap|O2|fc0|global|-|placement|P1|all",
    ]
    full = dict.fromkeys(keys, 1)
    assert ids(run(snap, profile_key="u:1", counters=full)) == ["O3"]


def test_consumed_keys_are_always_among_capping_keys() -> None:
    rng = random.Random(3)
    kinds = [
        {"scope": "global", "entity": "offer"},
        {
            "scope": "profile",
            "entity": "placement",
            "repeat": {"enabled": True, "unit": "week", "unitCount": 2},
        },
        {"scope": "profile", "entity": "offer", "placements": ["P2"]},
        {
            "scope": "global",
            "entity": "placement",
            "repeat": {"enabled": True, "unit": "month", "unitCount": 1},
        },
    ]
    offers = [
        offer(
            f"O{i}",
            rng.randint(0, 3),
            placements=("P1", "P2"),
            caps=[{"limit": 2, **rng.choice(kinds)}, {"limit": 5, **rng.choice(kinds)}],
        )
        for i in range(12)
    ]
    snap = simple(offers)
    scopes = [("D1", "P1", 3), ("D1", "P2", 3)]
    for profile_key in ("u|1", None):
        request = DecisionRequest([ScopeRequest(*s) for s in scopes], profile_key=profile_key)
        keys = set(capping_keys(snap, request, NOW))
        counters: dict[str, int] = {}
        for seed in range(30):
            result = run(snap, scopes, profile_key=profile_key, counters=counters, seed=seed)
            for c in result.consumption:
                assert c.key in keys
                counters[c.key] = counters.get(c.key, 0) + 1


def test_the_offers_a_cap_stopped_are_listed_per_scope() -> None:
    """ScopeResult.capped (reports' capHits): the offers the decision evaluated and a cap
    excluded, each once; traced and untraced decisions agree, and an offer the decision never
    reached (the item count was filled first) is not listed though a trace checks it."""
    cap = {"limit": 1, "scope": "global", "entity": "offer"}
    snap = simple(
        [
            offer("O1", 9, placements=("P1", "P2"), caps=[cap]),
            offer("O2", 5, placements=("P1", "P2")),
            offer("O3", 1, placements=("P1", "P2"), caps=[cap]),
        ]
    )
    full = {"cap|O1|fc0|global|-|offer|-|all": 1, "cap|O3|fc0|global|-|offer|-|all": 1}
    for trace in (False, True):
        result = run(
            snap,
            [("D1", "P1"), ("D1", "P2", 2)],
            counters=full,
            trace=trace,
            allow_duplicates_across_placements=True,
        )
        # P1 wants 1: O1 capped, O2 chosen, O3 (below) never reached; P2 wants 2: both capped.
        assert [s.capped for s in result.scopes] == [("O1",), ("O1", "O3")]
        assert [ids(result, i) for i in (0, 1)] == [["O2"], ["O2"]]
    assert run(snap, counters={}).scopes[0].capped == ()
