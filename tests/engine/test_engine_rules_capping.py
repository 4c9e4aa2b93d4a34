"""Frequency capping rules through decide(): placement restrictions, entity offer/placement,
within-request pending counts, legacy caps, repeat periods, events, profile identity.

Counter keys (docs/development.md "Capping counter keys") are observed through
`result.consumption` and `capping_keys`, the engine's public capping protocol.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from engine_helpers import (
    NOW,
    catalog,
    collection,
    criterion,
    decision,
    drops,
    ids,
    offer,
    run,
    simple,
)

from offerbase.engine import DecisionRequest, ScopeRequest, capping_keys

ALLOW = {"allow_duplicates_across_activities": True, "allow_duplicates_across_placements": True}


def _cap(**kw: Any) -> dict[str, Any]:
    return {"limit": 1, "scope": "global", "entity": "offer", **kw}


def _capped(*caps: dict[str, Any], oid: str = "O1", **kw: Any):  # type: ignore[no-untyped-def]
    return simple(
        [
            offer(oid, 9, placements=("P1", "P2"), caps=list(caps), **kw),
            offer("O2", 1, placements=("P1", "P2")),
        ]
    )


def _consumed(result) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return [(c.key, c.limit) for c in result.consumption]


def _keys(snap, scopes, profile_key: str | None = None, now: datetime = NOW) -> list[str]:  # type: ignore[no-untyped-def]
    request = DecisionRequest([ScopeRequest(*s) for s in scopes], profile_key=profile_key)
    return capping_keys(snap, request, now)


# -- placement restrictions and entity ---------------------------------------------------------


@pytest.mark.parametrize("restrict", [{"placements": ["P2"]}, {"placement": "P2"}])
def test_cap_restricted_to_a_placement(restrict: dict[str, Any]) -> None:
    snap = _capped(_cap(**restrict))
    key = "cap|O1|fc0|global|-|offer|-|all"
    full = {key: 1}
    # P1 is outside the cap: neither enforced nor consumed there
    result = run(snap, [("D1", "P1")], counters=full)
    assert ids(result) == ["O1"]
    assert result.consumption == []
    assert ids(run(snap, [("D1", "P2")], counters=full)) == ["O2"]
    assert _consumed(run(snap, [("D1", "P2")])) == [(key, 1)]
    assert _keys(snap, [("D1", "P1")]) == []
    assert _keys(snap, [("D1", "P2")]) == [key]


@pytest.mark.parametrize(
    ("restrict", "in_p1"),
    [({"placements": []}, True), ({"placements": [], "placement": "P2"}, False)],
)
def test_empty_placements_list_does_not_restrict(restrict: dict[str, Any], in_p1: bool) -> None:
    snap = _capped(_cap(**restrict))
    full = {"cap|O1|fc0|global|-|offer|-|all": 1}
    assert ids(run(snap, [("D1", "P1")], counters=full)) == (["O2"] if in_p1 else ["O1"])
    assert ids(run(snap, [("D1", "P2")], counters=full)) == ["O2"]


def test_cap_restricted_to_several_placements_with_placement_counters() -> None:
    snap = _capped(_cap(entity="placement", placements=["P2", "P1"], limit=2))
    result = run(snap, [("D1", "P1"), ("D1", "P2")], **ALLOW)
    assert _consumed(result) == [
        ("cap|O1|fc0|global|-|placement|P1|all", 2),
        ("cap|O1|fc0|global|-|placement|P2|all", 2),
    ]
    full_p1 = {"cap|O1|fc0|global|-|placement|P1|all": 2}
    result = run(snap, [("D1", "P1"), ("D1", "P2")], counters=full_p1, **ALLOW)
    assert [ids(result, 0), ids(result, 1)] == [["O2"], ["O1"]]


def test_cap_outside_its_placement_does_not_hide_the_next_cap() -> None:
    snap = _capped(_cap(placements=["P2"], limit=5), _cap(limit=1))
    result = run(snap, counters={"cap|O1|fc1|global|-|offer|-|all": 1}, trace=True)
    assert ids(result) == ["O2"]
    assert drops(result)["O1"] == [(0, "capped", "constraint #1 (cap|O1|fc1|global|-|offer|-|all)")]


def test_capped_trace_names_the_constraint_and_its_key() -> None:
    snap = _capped(_cap(limit=2))
    key = "cap|O1|fc0|global|-|offer|-|all"
    result = run(snap, counters={key: 2}, trace=True)
    assert drops(result)["O1"] == [(0, "capped", f"constraint #0 ({key})")]


def test_caps_with_different_periods_on_one_offer() -> None:
    snap = _capped(
        _cap(limit=5, repeat={"enabled": True, "unit": "day"}),
        _cap(limit=9, repeat={"enabled": True, "unit": "week", "unitCount": 2}),
        _cap(limit=7, repeat={"enabled": True, "unit": "day"}),
    )
    assert _consumed(run(snap)) == [
        ("cap|O1|fc0|global|-|offer|-|2026-11-24/P1D", 5),
        ("cap|O1|fc1|global|-|offer|-|2026-11-22/P2W", 9),
        ("cap|O1|fc2|global|-|offer|-|2026-11-24/P1D", 7),
    ]


def test_disabled_cap_does_not_hide_the_next_cap() -> None:
    snap = _capped(_cap(enabled=False, limit=1), _cap(limit=1))
    assert ids(run(snap, counters={"cap|O1|fc0|global|-|offer|-|all": 1})) == ["O1"]
    assert ids(run(snap, counters={"cap|O1|fc1|global|-|offer|-|all": 1})) == ["O2"]
    assert _consumed(run(snap)) == [("cap|O1|fc1|global|-|offer|-|all", 1)]
    assert _keys(snap, [("D1", "P1")]) == ["cap|O1|fc1|global|-|offer|-|all"]


def test_entity_offer_counts_across_placements_entity_placement_per_placement() -> None:
    both = [("D1", "P1"), ("D1", "P2")]
    shared = run(_capped(_cap(entity="offer")), both, **ALLOW)
    assert [ids(shared, 0), ids(shared, 1)] == [["O1"], ["O2"]]
    assert _consumed(shared) == [("cap|O1|fc0|global|-|offer|-|all", 1)]
    separate = run(_capped(_cap(entity="placement")), both, **ALLOW)
    assert [ids(separate, 0), ids(separate, 1)] == [["O1"], ["O1"]]
    assert _consumed(separate) == [
        ("cap|O1|fc0|global|-|placement|P1|all", 1),
        ("cap|O1|fc0|global|-|placement|P2|all", 1),
    ]


# -- within-request pending counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "stored", "scopes", "got_it"),
    [
        (1, 0, 2, 1),  # exactly one unit left: the second scope must not get the offer
        (3, 2, 2, 1),
        (3, 1, 3, 2),
        (3, 0, 4, 3),
    ],
)
def test_pending_proposals_count_within_the_request(
    limit: int, stored: int, scopes: int, got_it: int
) -> None:
    snap = _capped(_cap(limit=limit))
    key = "cap|O1|fc0|global|-|offer|-|all"
    result = run(snap, [("D1", "P1")] * scopes, counters={key: stored}, **ALLOW)
    assert [ids(result, i) for i in range(scopes)] == [["O1"]] * got_it + [["O2"]] * (
        scopes - got_it
    )
    assert _consumed(result) == [(key, limit)] * got_it


def test_pending_count_of_one_unit_left_across_placements() -> None:
    snap = _capped(_cap(limit=2))
    key = "cap|O1|fc0|global|-|offer|-|all"
    result = run(snap, [("D1", "P1"), ("D1", "P2")], counters={key: 1}, **ALLOW)
    assert [ids(result, 0), ids(result, 1)] == [["O1"], ["O2"]]


@pytest.mark.parametrize("events", [["impression"], ["click"], ["custom"]])
def test_event_caps_are_checked_but_not_consumed(events: list[str]) -> None:
    extra = {"customQuery": 'xEvent.type = "x"'} if events == ["custom"] else {}
    snap = _capped(_cap(events=events, **extra))
    key = "cap|O1|fc0|global|-|offer|-|all"
    assert ids(run(snap, counters={key: 1})) == ["O2"]
    result = run(snap, [("D1", "P1")] * 3, **ALLOW)
    assert [ids(result, i) for i in range(3)] == [["O1"]] * 3  # nothing pending either
    assert result.consumption == []
    assert _keys(snap, [("D1", "P1")]) == [key]


@pytest.mark.parametrize("events", [["decisioning"], ["impression", "decisioning"]])
def test_decisioning_caps_are_consumed(events: list[str]) -> None:
    snap = _capped(_cap(events=events))
    assert _consumed(run(snap)) == [("cap|O1|fc0|global|-|offer|-|all", 1)]


# -- legacy caps, profile scope ---------------------------------------------------------------


def test_legacy_caps_keys_trace_and_consumption() -> None:
    snap = _capped(legacy_caps={"globalCap": 3, "profileCap": 2})
    g = "cap|O1|global|global|-|offer|-|all"
    p = "cap|O1|profile|profile|u:1|offer|-|all"
    result = run(snap, profile_key="u:1")
    assert sorted(_consumed(result)) == [(g, 3), (p, 2)]
    assert _keys(snap, [("D1", "P1")], "u:1") == [g, p]
    capped = run(snap, profile_key="u:1", counters={g: 3}, trace=True)
    assert drops(capped)["O1"] == [(0, "capped", f"constraint globalCap ({g})")]
    capped = run(snap, profile_key="u:1", counters={p: 2}, trace=True)
    assert drops(capped)["O1"] == [(0, "capped", f"constraint profileCap ({p})")]
    # no profile identity: profileCap is neither enforced nor consumed, globalCap is
    result = run(snap, counters={p: 2, "cap|O1|profile|profile||offer|-|all": 2})
    assert ids(result) == ["O1"]
    assert _consumed(result) == [(g, 3)]
    assert _keys(snap, [("D1", "P1")]) == [g]


def test_legacy_caps_with_frequency_caps() -> None:
    snap = _capped(_cap(limit=5), legacy_caps={"globalCap": 1})
    result = run(snap, [("D1", "P1"), ("D1", "P1")], **ALLOW)
    assert [ids(result, 0), ids(result, 1)] == [["O1"], ["O2"]]  # the legacy cap is pending
    assert _consumed(result) == [
        ("cap|O1|fc0|global|-|offer|-|all", 5),
        ("cap|O1|global|global|-|offer|-|all", 1),
    ]


def test_per_profile_cap_without_profile_key() -> None:
    snap = _capped(_cap(scope="profile"))
    stored = {"cap|O1|fc0|profile||offer|-|all": 5, "cap|O1|fc0|profile|u:1|offer|-|all": 1}
    result = run(snap, counters=stored)
    assert ids(result) == ["O1"]
    assert result.consumption == []
    assert _keys(snap, [("D1", "P1")]) == []
    assert ids(run(snap, counters=stored, profile_key="u:1")) == ["O2"]
    assert ids(run(snap, counters=stored, profile_key="u:2")) == ["O1"]
    assert _keys(snap, [("D1", "P1")], "u:2") == ["cap|O1|fc0|profile|u:2|offer|-|all"]


def test_capping_keys_without_profile_key_keep_the_global_caps() -> None:
    snap = _capped(_cap(scope="profile"), _cap(limit=3))
    assert _keys(snap, [("D1", "P1")]) == ["cap|O1|fc1|global|-|offer|-|all"]
    assert _keys(snap, [("D1", "P1")], "u:1") == [
        "cap|O1|fc0|profile|u:1|offer|-|all",
        "cap|O1|fc1|global|-|offer|-|all",
    ]


def test_ids_are_escaped_in_counter_keys() -> None:
    snap = _capped(_cap(scope="profile"), oid="dps:offer:5%|x")
    result = run(snap, profile_key="Email:a|b%c")
    assert _consumed(result) == [
        ("cap|dps:offer:5%25%7Cx|fc0|profile|Email:a%7Cb%25c|offer|-|all", 1)
    ]


def test_capping_keys_skip_unknown_scopes_and_keep_the_rest() -> None:
    snap = _capped(_cap())
    keys = _keys(snap, [("nope", "P1"), ("D1", "nope"), ("D1", "P1")])
    assert keys == ["cap|O1|fc0|global|-|offer|-|all"]


# -- repeat periods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repeat", "now", "bucket"),
    [
        ({"enabled": True}, NOW, "2026-11-24/P1D"),  # unit defaults to day
        ({"enabled": True, "unit": "day", "unitCount": 1}, NOW, "2026-11-24/P1D"),
        # unitCount > 1 is anchored at 1970-01-01 (day 20781 = 2026-11-24 is odd)
        ({"enabled": True, "unit": "day", "unitCount": 2}, NOW, "2026-11-23/P2D"),
        ({"enabled": True, "unit": "day", "unitCount": 3}, NOW, "2026-11-24/P3D"),  # 20781 = 3k
        (
            {"enabled": True, "unit": "day", "unitCount": 3},
            datetime(2026, 11, 23, 23, 59, tzinfo=UTC),
            "2026-11-21/P3D",
        ),
        # weeks start on Sunday 00:00 UTC (2026-11-22 is a Sunday)
        ({"enabled": True, "unit": "week"}, NOW, "2026-11-22/P1W"),
        ({"enabled": True, "unit": "week"}, datetime(2026, 11, 22, tzinfo=UTC), "2026-11-22/P1W"),
        (
            {"enabled": True, "unit": "week"},
            datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC),
            "2026-11-15/P1W",
        ),
        # 2-week periods are anchored at Sunday 1970-01-04
        ({"enabled": True, "unit": "week", "unitCount": 2}, NOW, "2026-11-22/P2W"),
        (
            {"enabled": True, "unit": "week", "unitCount": 2},
            datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC),
            "2026-11-22/P2W",
        ),
        ({"enabled": True, "unit": "week", "unitCount": 3}, NOW, "2026-11-15/P3W"),
        ({"enabled": True, "unit": "month"}, NOW, "2026-11-01/P1M"),
        # 3-month periods anchored at January 1970: Jan/Apr/Jul/Oct
        ({"enabled": True, "unit": "month", "unitCount": 3}, NOW, "2026-10-01/P3M"),
        ({"enabled": True, "unit": "month", "unitCount": 12}, NOW, "2026-01-01/P12M"),
        ({"enabled": False, "unit": "month", "unitCount": 2}, NOW, "all"),
    ],
)
def test_repeat_period_buckets(repeat: dict[str, Any], now: datetime, bucket: str) -> None:
    snap = _capped(_cap(repeat=repeat, limit=2))
    key = f"cap|O1|fc0|global|-|offer|-|{bucket}"
    assert _consumed(run(snap, now=now)) == [(key, 2)]
    assert _keys(snap, [("D1", "P1")], now=now) == [key]
    assert ids(run(snap, now=now, counters={key: 2})) == ["O2"]


def test_repeat_period_rolls_over_at_midnight_utc() -> None:
    snap = _capped(_cap(repeat={"enabled": True, "unit": "day"}))
    yesterday = {"cap|O1|fc0|global|-|offer|-|2026-11-23/P1D": 1}
    assert ids(run(snap, counters=yesterday, now=datetime(2026, 11, 24, tzinfo=UTC))) == ["O1"]
    before = datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC)
    assert ids(run(snap, counters=yesterday, now=before)) == ["O2"]


def test_periods_are_utc_whatever_the_offset_of_now() -> None:
    snap = _capped(_cap(repeat={"enabled": True, "unit": "day"}))
    local = datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30Z
    assert _consumed(run(snap, now=local)) == [("cap|O1|fc0|global|-|offer|-|2026-11-25/P1D", 1)]


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is UTC+9 (the engine must not depend on it)."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo_local_time")
def test_engine_time_is_utc_on_a_machine_in_another_zone() -> None:
    snap = simple(
        [
            offer(
                "O1",
                9,
                end="2026-11-24T15:00:00Z",
                caps=[_cap(repeat={"enabled": True, "unit": "day"})],
            ),
            offer("O2", 5, caps=[_cap(repeat={"enabled": True, "unit": "day"})]),
        ]
    )
    evening = datetime(2026, 11, 24, 20, 0)  # naive = UTC: after O1's end; 05:00 next day in Tokyo
    assert ids(run(snap, now=evening)) == ["O2"]
    assert ids(run(snap, now=evening.replace(tzinfo=UTC))) == ["O2"]
    key = "cap|O2|fc0|global|-|offer|-|2026-11-24/P1D"
    assert _consumed(run(snap, now=evening)) == [(key, 1)]
    assert _consumed(run(snap, now=evening.replace(tzinfo=UTC))) == [(key, 1)]
    assert ids(run(snap, now=datetime(2026, 11, 24, 14, 0))) == ["O1"]


def test_unknown_decision_in_capping_keys_request_is_skipped() -> None:
    snap = catalog(
        [offer("O1", caps=[_cap()])],
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", ["O1"])],
    )
    assert _keys(snap, [("D9", "P1"), ("D1", "P1")]) == ["cap|O1|fc0|global|-|offer|-|all"]
