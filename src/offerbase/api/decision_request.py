"""Parsing a Decisioning API request body into engine terms: decoded
with the typed model (decision_request_model.py, msgspec) on the decision hot path; a body that
does not fit gets the problem of the first member to blame, as the API has always reported it.

Kept apart from decide() so that other front doors (Edge decision scopes, batch) can map their
own shapes onto the same engine request.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct

from offerbase.api.body_problems import Failure, failures
from offerbase.api.decision_request_model import (
    INLINE_PROFILE,
    MAX_IDENTITIES,
    TRACE,
    Body,
    DecisionDuplicates,
    DecisionIncludeMetadata,
    DecisionProfile,
    DecisionRequestBody,
    DecisionResponseFormat,
    DecisionScope,
    Scopes,
)
from offerbase.api.problems import ApiProblem, field_error
from offerbase.engine import MAX_OPTIONS_PER_RESPONSE, DecisionRequest, ScopeRequest
from offerbase.store.profiles import MAX_IDENTITY_CHARS, MAX_NAMESPACE_CHARS


# The parsed form is a frozen Struct too: msgspec builds those several times faster than frozen
# dataclasses, and one is built for every decision.
class Metadata(Struct, frozen=True):
    activity: frozenset[str] = frozenset()
    option: frozenset[str] = frozenset()
    placement: frozenset[str] = frozenset()


class ParsedRequest(Struct, frozen=True):
    scopes: list[ScopeRequest]
    across_activities: bool | None
    across_placements: bool | None
    identity_map: dict[str, Any]
    decision_request_id: str | None
    context: dict[str, Any]
    dry_run: bool
    include_content: bool | None
    metadata: Metadata
    inline_profile: dict[str, Any] | None
    trace: bool

    def engine_request(self, profile_key: str | None) -> DecisionRequest:
        return DecisionRequest(
            scopes=self.scopes,
            allow_duplicates_across_activities=self.across_activities,
            allow_duplicates_across_placements=self.across_placements,
            context=self.context,
            profile_key=profile_key,
            trace=self.trace,
        )


def parse(body: Any, *, trace_param: bool = False) -> ParsedRequest:
    typed = _decode(body)
    too_many = _too_many_options(typed.scopes)
    if too_many is not None:
        raise _problem(too_many)
    profile = typed.profiles[0] if typed.profiles else _NO_PROFILE
    too_many = _too_many_identities(profile)
    if too_many is not None:
        raise _problem(too_many)
    bad_identity = _bad_identity(profile)  # each of at most MAX_IDENTITIES
    if bad_identity is not None:
        raise _problem(bad_identity)
    response_format = typed.response_format or _NO_RESPONSE_FORMAT
    duplicates = typed.duplicates or _NO_DUPLICATES
    metadata = response_format.include_metadata or _NO_METADATA
    return ParsedRequest(
        scopes=[ScopeRequest(s.activity_id, s.placement_id, s.item_count) for s in typed.scopes],
        across_activities=duplicates.across_activities,
        across_placements=duplicates.across_placements,
        # As sent, not the canonical copy: events record it verbatim, and the store reads both
        # spellings of an identity.
        identity_map=(body["xdm:profiles"][0].get("xdm:identityMap") or {})
        if typed.profiles
        else {},
        decision_request_id=profile.decision_request_id,
        context={
            item.type: {} if item.data is UNSET else item.data
            for item in profile.context_data or ()
        },
        dry_run=bool(typed.dry_run),
        include_content=response_format.include_content,
        metadata=Metadata(
            frozenset(metadata.activity or ()),
            frozenset(metadata.option or ()),
            frozenset(metadata.placement or ()),
        ),
        inline_profile=profile.inline_profile,
        trace=bool(typed.trace) or trace_param,
    )


# What an absent optional object reads as.
_NO_PROFILE = DecisionProfile()
_NO_RESPONSE_FORMAT = DecisionResponseFormat()
_NO_DUPLICATES = DecisionDuplicates()
_NO_METADATA = DecisionIncludeMetadata()


def _decode(body: Any) -> DecisionRequestBody:
    """The typed body. The variants of _UNPREFIXED and _FALSY_IS_ABSENT are rare, and finding
    them costs more than decoding: the body is decoded as sent first, and the canonical copy
    only when that fails or when the body sends an optional member under its unprefixed name
    (which the model ignores). Both give the same result for every other body: a body that fits
    as sent has its required `xdm:` members, and an absent or empty optional object alike."""
    try:
        typed = msgspec.convert(body, DecisionRequestBody, strict=True)
        if not _unprefixed_optional_members(body):
            return typed
    except msgspec.ValidationError:
        pass
    canonical = _canonical(body)
    try:
        return msgspec.convert(canonical, DecisionRequestBody, strict=True)
    except msgspec.ValidationError as exc:
        raise _problem(_first_failure(canonical)) from exc


def _unprefixed_optional_members(body: dict[str, Any]) -> bool:
    """Whether a body that fits the model sends `itemCount` or `data` without `xdm:`."""
    for scope in body["xdm:propositionRequests"]:
        if "itemCount" in scope:
            return True
    profiles = body.get("xdm:profiles")
    for item in (profiles[0].get("xdm:contextData") if profiles else None) or ():
        if "data" in item:
            return True
    return False


def _problem(failure: Failure) -> ApiProblem:
    title = "Bad Request" if failure.status == 400 else "Unprocessable Entity"
    return ApiProblem(
        failure.status,
        title,
        f"{failure.pointer}: {failure.detail}",
        errors=[field_error(failure.pointer, failure.detail)],
    )


def _bad_identity(profile: DecisionProfile) -> Failure | None:
    """The identity map is recorded with the decision event and looked up in the profiles:
    what the database cannot store or index (a NUL character, an id or namespace longer than
    a stored profile's) is refused here, not by a failing insert or lookup later. An empty id
    is only skipped (store.profiles.request_identities), as it always was."""
    base = "/xdm:profiles/0/xdm:identityMap"
    for namespace, entries in (profile.identity_map or {}).items():
        token = namespace.replace("~", "~0").replace("/", "~1")
        if len(namespace) > MAX_NAMESPACE_CHARS or "\x00" in namespace:
            return Failure(
                f"{base}/{token}",
                f"a namespace has at most {MAX_NAMESPACE_CHARS} characters and no NUL",
                400,
            )
        for index, entry in enumerate(entries):
            if len(entry.id) > MAX_IDENTITY_CHARS or "\x00" in entry.id:
                return Failure(
                    f"{base}/{token}/{index}/xdm:id",
                    f"an identity id has at most {MAX_IDENTITY_CHARS} characters and no NUL",
                    400,
                )
    return None


def _too_many_options(scopes: list[DecisionScope]) -> Failure | None:
    requested = 0
    for scope in scopes:
        requested += scope.item_count or 1
    if requested <= MAX_OPTIONS_PER_RESPONSE:
        return None
    return Failure(
        "/xdm:propositionRequests",
        f"at most {MAX_OPTIONS_PER_RESPONSE} offers per response; {requested} were requested",
        422,
    )


def _too_many_identities(profile: DecisionProfile) -> Failure | None:
    sent = sum(len(entries) for entries in (profile.identity_map or {}).values())
    if sent <= MAX_IDENTITIES:
        return None
    return Failure(
        "/xdm:profiles/0/xdm:identityMap",
        f"at most {MAX_IDENTITIES} identities per request; {sent} were sent",
        422,
    )


# When a body has several errors, the one reported is the first member in this order: the order
# the Decisioning API has always checked in, so a client fixing one error at a time sees the same
# answers. A pointer ranks with the longest entry it starts with.
_REPORT_ORDER = (
    "/xdm:propositionRequests",  # and the MAX_OPTIONS_PER_RESPONSE total
    "/xdm:profiles",
    f"/xdm:profiles/0/{INLINE_PROFILE}",
    "/xdm:profiles/0/xdm:decisionRequestId",
    "/xdm:allowDuplicatePropositions",
    "/xdm:responseFormat",
    "/xdm:responseFormat/xdm:includeMetadata",
    f"/{TRACE}",
    "/xdm:allowDuplicatePropositions/xdm:acrossActivities",
    "/xdm:allowDuplicatePropositions/xdm:acrossPlacements",
    "/xdm:profiles/0/xdm:identityMap",
    "/xdm:profiles/0/xdm:contextData",
    "/xdm:dryRun",
    "/xdm:responseFormat/xdm:includeContent",
    "/xdm:responseFormat/xdm:includeMetadata/xdm:activity",
    "/xdm:responseFormat/xdm:includeMetadata/xdm:option",
    "/xdm:responseFormat/xdm:includeMetadata/xdm:placement",
)


def _rank(failure: Failure) -> int:
    ranks = [
        (len(entry), index)
        for index, entry in enumerate(_REPORT_ORDER)
        if failure.pointer == entry or failure.pointer.startswith(entry + "/")
    ]
    return max(ranks)[1] if ranks else -1


def _first_failure(body: Any) -> Failure:
    """The failure to report for a body that does not fit the model (see _REPORT_ORDER)."""
    found = failures(body, Body)
    if isinstance(body, dict) and not any(_rank(f) == 0 for f in found):
        # The scopes are fine on their own: their total comes next, before any other member.
        scopes = msgspec.convert(body["xdm:propositionRequests"], Scopes, strict=True)
        too_many = _too_many_options(scopes)
        if too_many is not None:
            return too_many
    return min(found, key=_rank)


# What the API accepts beyond the documented spelling, made canonical before decoding so that
# the model (and so the schema) knows one name per member. Some SDKs send these members without
# the `xdm:` prefix; when both are sent, the prefixed one wins.
_UNPREFIXED: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("xdm:propositionRequests", "*"), ("activityId", "placementId", "itemCount")),
    (("xdm:profiles", "*", "xdm:identityMap", "*", "*"), ("id",)),
    (("xdm:profiles", "*", "xdm:contextData", "*"), ("data",)),
)
# Optional objects sent as false, 0, "" or [] are read as absent, as they always have been.
_FALSY_IS_ABSENT = (
    ((), "xdm:allowDuplicatePropositions"),
    ((), "xdm:responseFormat"),
    (("xdm:responseFormat",), "xdm:includeMetadata"),
)


def _canonical(body: Any) -> Any:
    """The body with the accepted variants of _UNPREFIXED and _FALSY_IS_ABSENT made canonical:
    a copy where that changes anything, else the body itself."""
    for path, names in _UNPREFIXED:
        body = _with_prefixes(body, path, names)
    for path, name in _FALSY_IS_ABSENT:
        body = _without_falsy(body, path, name)
    return _integral_item_counts(body)


def _integral_item_counts(body: Any) -> Any:
    """`xdm:itemCount` 2.0 made 2: the same JSON number (JSON Schema's `integer` includes it,
    and the catalog's integers accept it alike); a copy where that changes anything."""
    scopes = body.get("xdm:propositionRequests") if isinstance(body, dict) else None
    if not isinstance(scopes, list):
        return body
    fixed = [_integral_item_count(scope) for scope in scopes]
    if all(a is b for a, b in zip(fixed, scopes, strict=True)):
        return body
    return {**body, "xdm:propositionRequests": fixed}


def _integral_item_count(scope: Any) -> Any:
    count = scope.get("xdm:itemCount") if isinstance(scope, dict) else None
    if isinstance(count, float) and count.is_integer() and abs(count) < 2**63:
        return {**scope, "xdm:itemCount": int(count)}
    return scope


def _with_prefixes(node: Any, path: tuple[str, ...], names: tuple[str, ...]) -> Any:
    if not path:
        if not isinstance(node, dict):
            return node
        missing = [name for name in names if name in node and f"xdm:{name}" not in node]
        return {**node, **{f"xdm:{name}": node[name] for name in missing}} if missing else node
    step, rest = path[0], path[1:]
    if step == "*":
        if isinstance(node, list):
            items = [_with_prefixes(item, rest, names) for item in node]
            return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
        if isinstance(node, dict):
            values = {key: _with_prefixes(item, rest, names) for key, item in node.items()}
            return values if any(values[key] is not item for key, item in node.items()) else node
        return node
    if isinstance(node, dict) and step in node:
        child = _with_prefixes(node[step], rest, names)
        return node if child is node[step] else {**node, step: child}
    return node


def _without_falsy(node: Any, path: tuple[str, ...], name: str) -> Any:
    if not isinstance(node, dict):
        return node
    if path:
        step = path[0]
        if step not in node:
            return node
        child = _without_falsy(node[step], path[1:], name)
        return node if child is node[step] else {**node, step: child}
    if name in node and not node[name]:
        return {key: value for key, value in node.items() if key != name}
    return node
