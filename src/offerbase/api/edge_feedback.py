"""Edge feedback: one Edge event (`{"xdm": {...}, "data": {...}}`) as the interaction records
to store (store/interactions.py), one per proposition it names. Pure: no I/O, no clock.

An event is feedback when `xdm._experience.decisioning.propositionEventType` is an object:
alloy's display and click notifications (`{"display": 1}`, `{"interact": 1}`), the Mobile
SDK's `offer.displayed()` / `tapped()`, ExD's token events and custom events (`{"display": 0,
...}`). What is stored, and why each rule: docs/edge.md, "Feedback events".
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from offerbase.catalog.schema import parse_datetime
from offerbase.store.clock import iso
from offerbase.store.interactions import INTERACTION_TYPES, InteractionEvent

MAX_PROPOSITIONS = 100  # per event
MAX_ITEMS = 100  # per proposition
MAX_STRING = 1024  # a scope, an item id, an event type
MAX_ID = 255  # an event id, a proposition id: their columns' size
MAX_EVENT_TYPES = 32  # keys of propositionEventType (Adobe defines five)
MAX_ACTION_BYTES = 8192  # propositionAction, stored as sent (ExD: id, label, tokens)
_SET_TYPES = tuple(name for name in INTERACTION_TYPES if name != "custom")
_BASE = "xdm._experience.decisioning"


def _object(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _member(value: Any, *keys: str) -> Mapping[str, Any] | None:
    """The object at `keys` under `value`; None when a step is absent or not an object."""
    found = _object(value)
    for key in keys:
        found = _object(found.get(key)) if found is not None else None
    return found


def _string(value: Any, path: str, limit: int = MAX_STRING) -> str | None:
    """An optional string member: None when absent (or null), a ValueError naming `path` when
    it is not a string or is longer than `limit`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{path} must be a string.")
    if len(value) > limit:
        raise ValueError(f"{path} is longer than {limit} characters.")
    return value


def _event_type(kinds: Mapping[str, Any]) -> str:
    """The key of propositionEventType whose value is 1; "custom" when none is (a custom event
    sends `{"display": 0, "interact": 0, ...}`, or keys of its own)."""
    if len(kinds) > MAX_EVENT_TYPES:
        raise ValueError(f"{_BASE}.propositionEventType has more than {MAX_EVENT_TYPES} keys.")
    for key, value in kinds.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{_BASE}.propositionEventType.{key} must be a number.")
    for name in _SET_TYPES:
        if kinds.get(name) == 1:
            return name
    return "custom"


def _dry_run(event: Mapping[str, Any]) -> bool:
    """`data.__adobe.ajo.dryRun: true`: a test event, kept out of reporting and capping."""
    ajo = _member(event, "data", "__adobe", "ajo")
    return ajo is not None and ajo.get("dryRun") is True


@functools.lru_cache(maxsize=4096)
def decode_scope(scope: str | None) -> tuple[str | None, str | None]:
    """(activity id, placement id) of a decision scope: base64 JSON with activityId/placementId
    (alloy's samples) or xdm:activityId/xdm:placementId (the Decisioning API's spelling). A
    scope that is not one (a surface, `__view__`, an mbox name) has neither. Memoised, like
    edge_request.decode_scope: a site's feedback names the same few scopes."""
    if not scope:
        return None, None
    text = scope.strip().replace("-", "+").replace("_", "/")
    try:
        decoded = orjson.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None, None
    if not isinstance(decoded, dict):
        return None, None

    def member(name: str) -> str | None:
        value = decoded.get(name, decoded.get(f"xdm:{name}"))
        return value if isinstance(value, str) and 0 < len(value) <= MAX_STRING else None

    return member("activityId"), member("placementId")


def _entity_id(proposition: Mapping[str, Any], name: str, path: str) -> str | None:
    """`activity.id` / `placement.id` as the Mobile SDK echoes them."""
    entity = proposition.get(name)
    if entity is None:
        return None
    if not isinstance(entity, Mapping):
        raise ValueError(f"{path}.{name} must be an object.")
    return _string(entity.get("id"), f"{path}.{name}.id") or None


def _item_ids(proposition: Mapping[str, Any], path: str) -> list[str]:
    items = proposition.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"{path}.items must be a list.")
    if len(items) > MAX_ITEMS:
        raise ValueError(f"{path}.items has more than {MAX_ITEMS} entries.")
    ids = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"{path}.items[{index}] must be an object.")
        item_id = _string(item.get("id"), f"{path}.items[{index}].id")
        if not item_id:
            raise ValueError(f"{path}.items[{index}].id is required.")
        ids.append(item_id)
    return ids


def _action(decisioning: Mapping[str, Any]) -> dict[str, Any] | None:
    """ExD's propositionAction ({id, label, tokens}), stored as given, bounded."""
    action = decisioning.get("propositionAction")
    if action is None:
        return None
    if not isinstance(action, Mapping):
        raise ValueError(f"{_BASE}.propositionAction must be an object.")
    try:
        size = len(orjson.dumps(action))
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"{_BASE}.propositionAction is not JSON.") from exc
    if size > MAX_ACTION_BYTES:
        raise ValueError(f"{_BASE}.propositionAction is larger than {MAX_ACTION_BYTES} bytes.")
    return dict(action)


def event_id(event: Mapping[str, Any], datastream_id: str, identity: tuple[str, str] | None) -> str:
    """`xdm._id` when the client gave one (the Mobile SDK always does), else a digest of the
    event as sent, its datastream and identity: a byte-identical resend is the same event."""
    xdm = _object(event.get("xdm")) or {}
    given = xdm.get("_id")
    if isinstance(given, str) and 0 < len(given) <= MAX_ID:
        return given
    try:
        canonical = orjson.dumps(
            [datastream_id, list(identity) if identity else None, event],
            option=orjson.OPT_SORT_KEYS,
        )
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"xdm is not JSON: {exc}") from exc
    return hashlib.sha256(canonical).hexdigest()


def interaction_events(
    event: Mapping[str, Any],
    *,
    sandbox_pk: int,
    datastream_id: str,
    identity: tuple[str, str] | None,
    identity_map: Mapping[str, Any],
    received_at: str,
    event_index: int,
    request_id: str,
) -> list[InteractionEvent]:
    """The interaction records of one Edge event, one per proposition; [] when the event is no
    feedback or a dry run. Raises ValueError naming the field path of a malformed part.
    (`identity_map` is the request's; the records keep the resolved `identity` only.)"""
    del identity_map  # the resolved identity is what links feedback to a profile
    xdm = event.get("xdm")
    if xdm is not None and not isinstance(xdm, Mapping):
        raise ValueError("xdm must be an object.")
    decisioning = _member(xdm, "_experience", "decisioning")
    kinds = _member(decisioning, "propositionEventType")
    if xdm is None or decisioning is None or kinds is None or _dry_run(event):
        return []
    kind = _event_type(kinds)
    propositions = decisioning.get("propositions")
    if propositions is None:
        return []
    if not isinstance(propositions, list):
        raise ValueError(f"{_BASE}.propositions must be a list.")
    if len(propositions) > MAX_PROPOSITIONS:
        raise ValueError(f"{_BASE}.propositions has more than {MAX_PROPOSITIONS} entries.")
    event_type = _string(xdm.get("eventType"), "xdm.eventType")
    sent_at = xdm.get("timestamp")
    moment = parse_datetime(sent_at) if isinstance(sent_at, str) and len(sent_at) <= 64 else None
    timestamp = iso(moment) if moment is not None else received_at
    action = _action(decisioning)
    the_id = event_id(event, datastream_id, identity)
    shown_identity = {"namespace": identity[0], "id": identity[1]} if identity else None
    records = []
    for seq, proposition in enumerate(propositions):
        path = f"{_BASE}.propositions[{seq}]"
        if not isinstance(proposition, Mapping):
            raise ValueError(f"{path} must be an object.")
        proposition_id = _string(proposition.get("id"), f"{path}.id", MAX_ID)
        if not proposition_id:
            raise ValueError(f"{path}.id is required.")
        scope = _string(proposition.get("scope"), f"{path}.scope")
        decoded_activity, decoded_placement = decode_scope(scope)
        activity = _entity_id(proposition, "activity", path) or decoded_activity
        placement = _entity_id(proposition, "placement", path) or decoded_placement
        body = {
            "eventId": the_id,
            "seq": seq,
            "timestamp": timestamp,
            "receivedAt": received_at,
            "type": kind,
            "eventType": event_type,
            "propositionId": proposition_id,
            "scope": scope,
            "activityId": activity,
            "placementId": placement,
            "itemIds": _item_ids(proposition, path),
            "identity": shown_identity,
            "datastreamId": datastream_id,
            "requestId": request_id,
            "eventIndex": event_index,
            "action": action,
        }
        records.append(
            InteractionEvent(sandbox_pk, the_id, seq, proposition_id, timestamp, kind, body)
        )
    return records
