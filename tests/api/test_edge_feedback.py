"""Edge events as interaction records (api/edge_feedback.py), with the shapes real clients send:
alloy's display and click notifications, the Mobile SDK's offer tracking, ExD's token events."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

import pytest

from offerbase.api.edge_feedback import decode_scope, interaction_events

SCOPE = base64.b64encode(
    json.dumps(
        {"activityId": "xcore:offer-activity:1", "placementId": "xcore:offer-placement:1"}
    ).encode()
).decode()
XDM_SCOPE = base64.urlsafe_b64encode(
    b'{"xdm:activityId":"dps:offer-activity:2","xdm:placementId":"dps:offer-placement:2"}'
).decode()
ECID = ("ECID", "30730591484066234123437208866519735071")
RECEIVED = "2026-12-01T06:30:09.000Z"


def records(event: dict[str, Any], identity: tuple[str, str] | None = ECID) -> list[Any]:
    return interaction_events(
        event,
        sandbox_pk=7,
        datastream_id="ds-1",
        identity=identity,
        identity_map={},
        received_at=RECEIVED,
        event_index=0,
        request_id="req-1",
    )


def alloy_click() -> dict[str, Any]:
    """Alloy 2.33.1's manual click notification for an offer, as captured from it."""
    return {
        "xdm": {
            "eventType": "decisioning.propositionInteract",
            "_experience": {
                "decisioning": {
                    "propositions": [
                        {
                            "id": "d5d9102d-dbd0-4000-a3c6-057012c7ff7e",
                            "scope": SCOPE,
                            "scopeDetails": {},
                            "items": [{"id": "offer1"}],
                        }
                    ],
                    "propositionEventType": {"interact": 1},
                }
            },
            "web": {"webPageDetails": {"URL": "https://www.shop.example/"}},
            "timestamp": "2026-12-01T06:30:08.976Z",
            "implementationDetails": {"name": "https://ns.adobe.com/experience/alloy"},
        }
    }


def mobile_display() -> dict[str, Any]:
    """AEPOptimize's offer.displayed(): activity and placement echoed, an xdm._id."""
    return {
        "xdm": {
            "_id": "9c0e3f5a-8a1b-4b5e-9d1e-7c2a1f0b9e11",
            "timestamp": "2026-12-01T07:00:00.123+01:00",
            "eventType": "decisioning.propositionDisplay",
            "_experience": {
                "decisioning": {
                    "propositionEventType": {"display": 1},
                    "propositions": [
                        {
                            "id": "prop-1",
                            "scope": XDM_SCOPE,
                            "scopeDetails": {},
                            "activity": {"id": "dps:offer-activity:9", "etag": "1"},
                            "placement": {"id": "dps:offer-placement:9", "etag": "1"},
                            "items": [{"id": "dps:personalized-offer:1"}],
                        }
                    ],
                }
            },
        }
    }


def exd_click() -> dict[str, Any]:
    """ExD's interact with a propositionAction and a token."""
    return {
        "xdm": {
            "eventType": "decisioning.propositionInteract",
            "identityMap": {"ECID": [{"id": ECID[1], "primary": True}]},
            "_experience": {
                "decisioning": {
                    "propositionEventType": {"interact": 1},
                    "propositionAction": {
                        "id": "cta-main",
                        "label": "cta-main",
                        "tokens": ["CLaefQnVLcLbCtzEXV3Jeg"],
                    },
                    "propositions": [
                        {
                            "id": "103ae599-e6d8-4631-baf3-51dd8c6ed4c1",
                            "scope": "web://shop.example/home#hero",
                            "scopeDetails": {"decisionProvider": "AJO"},
                        }
                    ],
                }
            },
        }
    }


def test_an_alloy_click_is_one_interact_record() -> None:
    [record] = records(alloy_click())
    assert (record.sandbox_pk, record.seq, record.type) == (7, 0, "interact")
    assert record.proposition_id == "d5d9102d-dbd0-4000-a3c6-057012c7ff7e"
    assert record.timestamp == "2026-12-01T06:30:08.976Z"
    assert record.body == {
        "eventId": record.event_id,
        "seq": 0,
        "timestamp": "2026-12-01T06:30:08.976Z",
        "receivedAt": RECEIVED,
        "type": "interact",
        "eventType": "decisioning.propositionInteract",
        "propositionId": "d5d9102d-dbd0-4000-a3c6-057012c7ff7e",
        "scope": SCOPE,
        "activityId": "xcore:offer-activity:1",
        "placementId": "xcore:offer-placement:1",
        "itemIds": ["offer1"],
        "identity": {"namespace": "ECID", "id": ECID[1]},
        "datastreamId": "ds-1",
        "requestId": "req-1",
        "eventIndex": 0,
        "action": None,
    }
    # No xdm._id: the digest of the event, its datastream and identity.
    assert len(record.event_id) == 64
    assert records(alloy_click())[0].event_id == record.event_id
    assert records(alloy_click(), identity=None)[0].event_id != record.event_id
    other = alloy_click()
    other["xdm"]["timestamp"] = "2026-12-01T06:30:09.976Z"
    assert records(other)[0].event_id != record.event_id


def test_alloys_display_variant_is_a_display() -> None:
    event = alloy_click()
    event["xdm"]["eventType"] = "decisioning.propositionDisplay"
    event["xdm"]["_experience"]["decisioning"]["propositionEventType"] = {"display": 1}
    assert [r.type for r in records(event)] == ["display"]


def test_a_mobile_display_uses_its_id_and_echoed_activity() -> None:
    [record] = records(mobile_display())
    assert record.event_id == "9c0e3f5a-8a1b-4b5e-9d1e-7c2a1f0b9e11"
    assert record.type == "display"
    assert record.timestamp == "2026-12-01T06:00:00.123Z"  # in UTC
    assert record.body["activityId"] == "dps:offer-activity:9"  # sent, not decoded
    assert record.body["placementId"] == "dps:offer-placement:9"
    assert record.body["itemIds"] == ["dps:personalized-offer:1"]


def test_a_scope_in_the_decisioning_apis_spelling_is_decoded() -> None:
    event = mobile_display()
    proposition = event["xdm"]["_experience"]["decisioning"]["propositions"][0]
    del proposition["activity"], proposition["placement"]
    [record] = records(event)
    assert (record.body["activityId"], record.body["placementId"]) == (
        "dps:offer-activity:2",
        "dps:offer-placement:2",
    )
    assert decode_scope("web://shop.example/home#hero") == (None, None)
    assert decode_scope("__view__") == (None, None)
    assert decode_scope(base64.b64encode(b"[1]").decode()) == (None, None)


def test_an_exd_token_event_keeps_its_action() -> None:
    [record] = records(exd_click())
    assert record.body["action"] == {
        "id": "cta-main",
        "label": "cta-main",
        "tokens": ["CLaefQnVLcLbCtzEXV3Jeg"],
    }
    assert record.body["scope"] == "web://shop.example/home#hero"
    assert (record.body["activityId"], record.body["placementId"]) == (None, None)
    assert record.body["itemIds"] == []
    assert record.timestamp == RECEIVED  # no xdm.timestamp


def test_two_propositions_are_two_records_of_one_event() -> None:
    event = alloy_click()
    propositions = event["xdm"]["_experience"]["decisioning"]["propositions"]
    propositions.append({**propositions[0], "scope": XDM_SCOPE})
    first, second = records(event)
    assert first.event_id == second.event_id
    assert (first.seq, second.seq) == (0, 1)
    assert first.proposition_id == second.proposition_id  # one decision, two scopes
    assert second.body["placementId"] == "dps:offer-placement:2"


@pytest.mark.parametrize(
    "kinds",
    [{"display": 0, "interact": 0, "dismiss": 0}, {"send": 1}, {}],
    ids=["zeros", "unknown", "empty"],
)
def test_no_type_set_to_one_is_custom(kinds: dict[str, Any]) -> None:
    event = exd_click()
    event["xdm"]["eventType"] = "commerce.productViews"
    event["xdm"]["_experience"]["decisioning"]["propositionEventType"] = kinds
    assert [r.type for r in records(event)] == ["custom"]


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e["xdm"]["_experience"]["decisioning"].pop("propositionEventType"),
        lambda e: e["xdm"]["_experience"]["decisioning"].update(propositionEventType="display"),
        lambda e: e["xdm"].pop("_experience"),
        lambda e: e.pop("xdm"),
        lambda e: e.update(data={"__adobe": {"ajo": {"dryRun": True}}}),
        lambda e: e["xdm"]["_experience"]["decisioning"].pop("propositions"),
    ],
    ids=["no-event-type", "event-type-not-object", "no-experience", "no-xdm", "dry-run", "none"],
)
def test_what_is_no_feedback_gives_no_record(change: Any) -> None:
    event = alloy_click()
    change(event)
    assert records(event) == []


def test_a_dry_run_false_is_recorded() -> None:
    event = alloy_click()
    event["data"] = {"__adobe": {"ajo": {"dryRun": False}}}
    assert len(records(event)) == 1


DECISIONING = "xdm._experience.decisioning"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.update(propositions={"id": "x"}), f"{DECISIONING}.propositions"),
        (lambda d: d.update(propositions=[{"id": "p"}] * 101), f"{DECISIONING}.propositions"),
        (lambda d: d["propositions"].__setitem__(0, "p"), f"{DECISIONING}.propositions[0]"),
        (lambda d: d["propositions"][0].pop("id"), f"{DECISIONING}.propositions[0].id"),
        (lambda d: d["propositions"][0].update(id=5), f"{DECISIONING}.propositions[0].id"),
        (lambda d: d["propositions"][0].update(id="p" * 256), f"{DECISIONING}.propositions[0].id"),
        (lambda d: d["propositions"][0].update(scope=1), f"{DECISIONING}.propositions[0].scope"),
        (
            lambda d: d["propositions"][0].update(scope="s" * 1025),
            f"{DECISIONING}.propositions[0].scope",
        ),
        (
            lambda d: d["propositions"][0].update(items={"id": "a"}),
            f"{DECISIONING}.propositions[0].items",
        ),
        (
            lambda d: d["propositions"][0].update(items=[{"id": "a"}] * 101),
            f"{DECISIONING}.propositions[0].items",
        ),
        (
            lambda d: d["propositions"][0].update(items=[{"id": "a"}, {"name": "b"}]),
            f"{DECISIONING}.propositions[0].items[1].id",
        ),
        (
            lambda d: d["propositions"][0].update(items=["a"]),
            f"{DECISIONING}.propositions[0].items[0]",
        ),
        (
            lambda d: d["propositions"][0].update(activity="a"),
            f"{DECISIONING}.propositions[0].activity",
        ),
        (
            lambda d: d.update(propositionEventType={"interact": "1"}),
            f"{DECISIONING}.propositionEventType.interact",
        ),
        (
            lambda d: d.update(propositionEventType={"display": True}),
            f"{DECISIONING}.propositionEventType.display",
        ),
        (lambda d: d.update(propositionAction="cta"), f"{DECISIONING}.propositionAction"),
        (
            lambda d: d.update(propositionAction={"tokens": ["t" * 9000]}),
            f"{DECISIONING}.propositionAction",
        ),
    ],
)
def test_a_malformed_part_is_an_error_naming_its_path(change: Any, path: str) -> None:
    event = copy.deepcopy(alloy_click())
    change(event["xdm"]["_experience"]["decisioning"])
    with pytest.raises(ValueError, match=f"^{re.escape(path)} "):
        records(event)


def test_a_malformed_event_type_or_xdm_is_an_error() -> None:
    event = alloy_click()
    event["xdm"]["eventType"] = ["decisioning.propositionInteract"]
    with pytest.raises(ValueError, match=r"^xdm\.eventType "):
        records(event)
    with pytest.raises(ValueError, match=r"^xdm "):
        records({"xdm": "text"})


def test_an_unusable_timestamp_or_id_falls_back() -> None:
    event = mobile_display()
    event["xdm"]["timestamp"] = "yesterday"
    event["xdm"]["_id"] = ""
    [record] = records(event)
    assert record.timestamp == RECEIVED
    assert len(record.event_id) == 64  # the digest, not the empty id
