"""Caps by event kind, the pure part (engine/feedback.py): which counter keys a display, click
or custom feedback record increments; the keys are the ones decisions read (capping_keys)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from engine_helpers import NOW, ids, offer, run, simple

from offerbase.engine import (
    DecisionRequest,
    FeedbackRecord,
    ScopeRequest,
    Snapshot,
    capping_keys,
    feedback_keys,
    may_count,
)

PURCHASE = 'xEvent.eventType = "commerce.purchases"'
GLOBAL = "cap|O1|fc0|global|-|offer|-|all"


def _cap(**kw: Any) -> dict[str, Any]:
    return {"limit": 1, "scope": "global", "entity": "offer", **kw}


def _snap(*caps: dict[str, Any], **kw: Any) -> Snapshot:
    return simple(
        [
            offer("O1", 9, placements=("P1", "P2"), caps=list(caps), **kw),
            offer("O2", 1, placements=("P1", "P2")),
        ]
    )


def _keys(
    snap: Snapshot,
    kind: str = "display",
    placement: str | None = "P1",
    items: tuple[str, ...] = ("O1",),
    *,
    event: dict[str, Any] | None = None,
    profile_key: str | None = "u:1",
    now: datetime = NOW,
) -> list[str]:
    return feedback_keys(
        snap,
        FeedbackRecord(kind, placement, items),
        event=event or {"eventType": "decisioning.propositionDisplay"},
        profile_key=profile_key,
        profile={},
        now=now,
    )


@pytest.mark.parametrize(
    ("events", "counted"),
    [
        (["impression"], {"display"}),
        (["click"], {"interact"}),
        (["impression", "click"], {"display", "interact"}),
        (["decisioning"], set()),
    ],
)
def test_each_kind_counts_its_records(events: list[str], counted: set[str]) -> None:
    snap = _snap(_cap(events=events))
    for kind in ("display", "interact", "dismiss", "trigger", "suppressDisplay", "custom"):
        assert _keys(snap, kind) == ([GLOBAL] if kind in counted else []), kind


def test_the_key_is_the_one_decisions_read() -> None:
    snap = _snap(_cap(events=["impression"], scope="profile", entity="placement", limit=2))
    (key,) = _keys(snap, placement="P2")
    request = DecisionRequest([ScopeRequest("D1", "P2")], profile_key="u:1")
    assert capping_keys(snap, request, NOW) == [key]
    assert key == "cap|O1|fc0|profile|u:1|placement|P2|all"
    assert ids(run(snap, [("D1", "P2")], counters={key: 2}, profile_key="u:1")) == ["O2"]
    assert ids(run(snap, [("D1", "P2")], counters={key: 1}, profile_key="u:1")) == ["O1"]


def test_a_custom_cap_counts_the_events_its_query_selects_of_any_type() -> None:
    snap = _snap(_cap(events=["custom"], customQuery=PURCHASE))
    purchase = {"eventType": "commerce.purchases"}
    for kind in ("display", "interact", "custom"):
        assert _keys(snap, kind, event=purchase) == [GLOBAL]
        assert _keys(snap, kind, event={"eventType": "commerce.productViews"}) == []


def test_a_rule_counts_a_record_once_whatever_of_its_kinds_match() -> None:
    snap = _snap(_cap(events=["impression", "custom"], customQuery=PURCHASE))
    assert _keys(snap, "display", event={"eventType": "commerce.purchases"}) == [GLOBAL]


def test_every_rule_of_the_offer_counts_on_its_own_key() -> None:
    snap = _snap(_cap(events=["impression"]), _cap(events=["click"]), _cap(events=["impression"]))
    assert _keys(snap) == [GLOBAL, "cap|O1|fc2|global|-|offer|-|all"]


def test_without_a_placement_only_caps_of_every_placement_count() -> None:
    snap = _snap(
        _cap(events=["impression"]),
        _cap(events=["impression"], entity="placement"),
        _cap(events=["impression"], placements=["P1"]),
    )
    assert _keys(snap, placement=None) == [GLOBAL]
    assert len(_keys(snap, placement="P1")) == 3
    assert _keys(snap, placement="P2") == [GLOBAL, "cap|O1|fc1|global|-|placement|P2|all"]


def test_a_per_profile_cap_needs_a_profile_key() -> None:
    snap = _snap(_cap(events=["impression"], scope="profile"), _cap(events=["impression"]))
    assert _keys(snap, profile_key=None) == ["cap|O1|fc1|global|-|offer|-|all"]
    assert _keys(snap, profile_key="u:2")[0] == "cap|O1|fc0|profile|u:2|offer|-|all"


def test_unknown_items_and_offers_without_caps_count_nothing() -> None:
    snap = _snap(_cap(events=["impression"]))
    assert not may_count(snap, ["O2", "fallback", "gone"])
    assert _keys(snap, items=("O2", "gone")) == []
    assert may_count(snap, ["O2", "O1"])
    assert _keys(snap, items=("O1", "O1", "O2")) == [GLOBAL]  # listed twice: one impression
    assert not may_count(_snap(_cap(events=["decisioning"])), ["O1"])


def test_the_bucket_is_the_period_of_now() -> None:
    snap = _snap(_cap(events=["click"], repeat={"enabled": True, "unit": "week", "unitCount": 1}))
    assert _keys(snap, "interact", now=datetime(2026, 11, 24, tzinfo=UTC)) == [
        "cap|O1|fc0|global|-|offer|-|2026-11-22/P1W"
    ]
    assert _keys(snap, "interact", now=datetime(2026, 11, 29, tzinfo=UTC)) == [
        "cap|O1|fc0|global|-|offer|-|2026-11-29/P1W"
    ]


def test_a_query_that_fails_or_is_not_true_counts_nothing() -> None:
    snap = _snap(_cap(events=["custom"], customQuery="xEvent.value / 0 > 1"))
    assert _keys(snap, event={"value": 3}) == []
    snap = _snap(_cap(events=["custom"], customQuery="xEvent.missing = 1"))
    assert _keys(snap, event={}) == []
