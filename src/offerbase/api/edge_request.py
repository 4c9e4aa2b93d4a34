"""Reading an Edge Network request body (Web SDK, Mobile SDK, Server API) into what Offerbase
needs: the events, their decision scopes, the identities and the state entries.

The shapes accepted (docs/edge.md, "What Offerbase reads"):
* v1 (alloy, Mobile SDK): `{"events": [{"xdm", "data", "query"}], "query", "meta", "xdm"}`;
  the Mobile SDK puts its identityMap in the top-level `xdm`.
* v2 (Server API): `{"event": {"xdm", "data"}, "query": {"personalization": ...}, "meta"}`.
Either shape is accepted on either version, as Adobe's own samples mix them. Decision scopes
that are not Offerbase's (`__view__`, Target mbox names, anything that does not decode to an
activity and a placement) are skipped, and surfaces are ignored: a page that also uses other
Adobe solutions keeps working.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from offerbase.api.bodies import nul_pointer
from offerbase.api.decision_request_model import MAX_IDENTITIES
from offerbase.engine import MAX_SCOPES
from offerbase.store.profiles import MAX_IDENTITY_CHARS, MAX_NAMESPACE_CHARS

MAX_EVENTS = 100  # events per request
MAX_SCOPE_CHARS = 4096  # one decision scope string, as sent
MAX_SCOPES_SENT = 100  # scope strings per event, Offerbase's or not (at most MAX_SCOPES are ours)


class EdgeInputError(ValueError):
    """A request body that does not fit: `field` is the path of the member at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DecisionScope:
    scope: str  # as sent: the answer's proposition carries it back verbatim
    activity_id: str
    placement_id: str
    item_count: int | None  # None: the datastream's default, else the placement's


@dataclass(frozen=True, slots=True)
class EdgeEvent:
    index: int
    xdm: Mapping[str, Any]
    data: Mapping[str, Any]
    scopes: tuple[DecisionScope, ...]

    @property
    def dry_run(self) -> bool:
        """`data.__adobe.ajo.dryRun: true`: decided, but nothing is counted or recorded."""
        adobe = self.data.get("__adobe")
        ajo = adobe.get("ajo") if isinstance(adobe, Mapping) else None
        return isinstance(ajo, Mapping) and ajo.get("dryRun") is True

    @property
    def identity_map(self) -> Mapping[str, Any]:
        found = self.xdm.get("identityMap")
        return found if isinstance(found, Mapping) else {}


@dataclass(frozen=True, slots=True)
class EdgeRequest:
    events: tuple[EdgeEvent, ...]
    identity_map: Mapping[str, Any]  # the top-level xdm.identityMap (Mobile SDK)
    state_entries: list[Any]  # meta.state.entries: the cookies alloy hands over


@functools.lru_cache(maxsize=4096)
def decode_scope(scope: str) -> DecisionScope | None:
    """An Offer Decisioning scope: base64 of a JSON object with `activityId` and `placementId`
    (or `xdm:activityId` / `xdm:placementId`) and an optional `itemCount` (or `xdm:itemCount`).
    None for anything else. A malformed itemCount decodes as 0, which the engine refuses for
    this scope alone. Memoised: a site sends the same few scopes on every page view."""
    if len(scope) > MAX_SCOPE_CHARS or not scope.isascii():
        return None
    text = scope.strip().replace("-", "+").replace("_", "/")
    try:
        decoded = orjson.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, dict):
        return None
    activity = decoded.get("activityId", decoded.get("xdm:activityId"))
    placement = decoded.get("placementId", decoded.get("xdm:placementId"))
    if not isinstance(activity, str) or not isinstance(placement, str):
        return None
    if not activity or not placement:
        return None
    count = decoded.get("itemCount", decoded.get("xdm:itemCount"))
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        count = 0
    return DecisionScope(scope, activity, placement, count)


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EdgeInputError(field, "must be an object")
    return value


def _scopes(query: Any, field: str) -> list[DecisionScope]:
    personalization = _object(
        _object(query, field).get("personalization"), f"{field}/personalization"
    )
    sent = personalization.get("decisionScopes")
    if sent is None:
        return []
    where = f"{field}/personalization/decisionScopes"
    if not isinstance(sent, list):
        raise EdgeInputError(where, "must be an array of strings")
    if len(sent) > MAX_SCOPES_SENT:
        raise EdgeInputError(where, f"at most {MAX_SCOPES_SENT} decision scopes are allowed")
    found = []
    for i, scope in enumerate(sent):
        if not isinstance(scope, str):
            raise EdgeInputError(f"{where}/{i}", "must be a string")
        decoded = decode_scope(scope)
        if decoded is not None:
            found.append(decoded)
    if len(found) > MAX_SCOPES:
        raise EdgeInputError(where, f"at most {MAX_SCOPES} Offer Decisioning scopes are allowed")
    return found


def _no_nul(value: Any, field: str) -> None:
    """What is decided on and stored may not hold U+0000 (PostgreSQL cannot store it); `meta`
    may (the Mobile SDK's record separator is one)."""
    pointer = nul_pointer(value, "")
    if pointer is not None:
        raise EdgeInputError(field + pointer, "the character U+0000 is not allowed here")


def check_identity_map(identity_map: Any, field: str) -> int:
    """Refuse an identityMap that is not `{namespace: [{"id": string, ...}]}`; the number of
    identities it holds."""
    count = 0
    for namespace, entries in _object(identity_map, field).items():
        if not namespace or len(namespace) > MAX_NAMESPACE_CHARS:
            raise EdgeInputError(
                field, f"namespace codes are 1 to {MAX_NAMESPACE_CHARS} characters"
            )
        if not isinstance(entries, list):
            raise EdgeInputError(f"{field}/{namespace}", "must be an array of identities")
        for i, entry in enumerate(entries):
            count += 1
            if count > MAX_IDENTITIES:
                raise EdgeInputError(field, f"at most {MAX_IDENTITIES} identities are allowed")
            ident = entry.get("id") if isinstance(entry, Mapping) else None
            if not isinstance(ident, str) or not 0 < len(ident) <= MAX_IDENTITY_CHARS:
                raise EdgeInputError(
                    f"{field}/{namespace}/{i}/id",
                    f"must be a string of 1 to {MAX_IDENTITY_CHARS} characters",
                )
    return count


def parse(body: Any, *, may_hold_nul: bool = True) -> EdgeRequest:
    """The request, or EdgeInputError naming the member that does not fit. `may_hold_nul`:
    False when the body's text has no `\\u0000` (bodies.may_hold_nul), so that no string in it
    holds U+0000 and the walks looking for one are skipped."""
    if not isinstance(body, Mapping):
        raise EdgeInputError("", "the body must be a JSON object")
    if "event" in body:  # v2: one event, its query at the top level
        raw_events: list[Any] = [body["event"]]
        field = "event"
    else:
        sent = body.get("events", [])
        if not isinstance(sent, list):
            raise EdgeInputError("events", "must be an array of events")
        raw_events = sent
        field = "events"
    if len(raw_events) > MAX_EVENTS:
        raise EdgeInputError(field, f"at most {MAX_EVENTS} events are allowed in one request")
    top_scopes = _scopes(body.get("query"), "query")
    if top_scopes and not raw_events:
        raw_events = [{}]  # a v2 body that asks for decisions without an event of its own
    events = []
    for i, raw in enumerate(raw_events):
        where = field if field == "event" else f"events/{i}"
        event = _object(raw, where)
        if may_hold_nul:
            _no_nul(event, where)
        xdm = _object(event.get("xdm"), f"{where}/xdm")
        check_identity_map(xdm.get("identityMap"), f"{where}/xdm/identityMap")
        scopes = _scopes(event.get("query"), f"{where}/query")
        if i == 0:
            scopes = top_scopes + scopes
        if len(scopes) > MAX_SCOPES:
            raise EdgeInputError(f"{where}/query", f"at most {MAX_SCOPES} decision scopes")
        data = _object(event.get("data"), f"{where}/data")
        events.append(EdgeEvent(i, xdm, data, tuple(scopes)))
    top_xdm = _object(body.get("xdm"), "xdm")
    if may_hold_nul:
        _no_nul(top_xdm, "xdm")
    check_identity_map(top_xdm.get("identityMap"), "xdm/identityMap")
    meta = _object(body.get("meta"), "meta")
    state = _object(meta.get("state"), "meta/state")
    entries = state.get("entries", [])
    return EdgeRequest(
        tuple(events),
        _object(top_xdm.get("identityMap"), "xdm/identityMap"),
        entries if isinstance(entries, list) else [],
    )
