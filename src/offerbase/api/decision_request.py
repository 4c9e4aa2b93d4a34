"""Parsing a Decisioning API request body (decisioning.md §1.3) into engine terms.

Kept apart from decide() so that other front doors (Edge decision scopes, batch) can map their
own shapes onto the same engine request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from offerbase.api.problems import ApiProblem, field_error
from offerbase.engine import MAX_ITEM_COUNT, MAX_SCOPES, DecisionRequest, ScopeRequest

# Offerbase extensions (documented in docs/decisioning-api.md).
INLINE_PROFILE = "offerbase:profile"
TRACE = "offerbase:trace"
# Adobe's guardrail: up to 30 offers per scope and 100 per response.
MAX_OPTIONS_PER_RESPONSE = 100


@dataclass(frozen=True)
class Metadata:
    activity: frozenset[str] = frozenset()
    option: frozenset[str] = frozenset()
    placement: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ParsedRequest:
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
    extra: dict[str, Any] = field(default_factory=dict)

    def engine_request(self, profile_key: str | None) -> DecisionRequest:
        return DecisionRequest(
            scopes=self.scopes,
            allow_duplicates_across_activities=self.across_activities,
            allow_duplicates_across_placements=self.across_placements,
            context=self.context,
            profile_key=profile_key,
            trace=self.trace,
        )


def _bad(pointer: str, detail: str, status: int = 400) -> ApiProblem:
    title = "Bad Request" if status == 400 else "Unprocessable Entity"
    return ApiProblem(status, title, f"{pointer}: {detail}", errors=[field_error(pointer, detail)])


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """`xdm:name`, or the plain `name` some SDKs send."""
    if f"xdm:{name}" in obj:
        return obj[f"xdm:{name}"]
    return obj.get(name)


def _bool(value: Any, pointer: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _bad(pointer, "must be true or false")


def _string_list(value: Any, pointer: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(pointer, "must be an array of strings")
    return frozenset(value)


def _scopes(raw: Any) -> list[ScopeRequest]:
    pointer = "/xdm:propositionRequests"
    if not isinstance(raw, list) or not raw:
        raise _bad(pointer, "must be a non-empty array of {xdm:activityId, xdm:placementId}")
    if len(raw) > MAX_SCOPES:
        raise _bad(pointer, f"at most {MAX_SCOPES} proposition requests are allowed", 422)
    scopes = []
    for index, item in enumerate(raw):
        here = f"{pointer}/{index}"
        if not isinstance(item, dict):
            raise _bad(here, "must be an object")
        activity, placement = _get(item, "activityId"), _get(item, "placementId")
        if not isinstance(activity, str) or not activity:
            raise _bad(f"{here}/xdm:activityId", "is required (a decision id)")
        if not isinstance(placement, str) or not placement:
            raise _bad(f"{here}/xdm:placementId", "is required (a placement id)")
        count = _get(item, "itemCount")
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int):
                raise _bad(f"{here}/xdm:itemCount", "must be an integer")
            if not 1 <= count <= MAX_ITEM_COUNT:
                raise _bad(f"{here}/xdm:itemCount", f"must be between 1 and {MAX_ITEM_COUNT}", 422)
        scopes.append(ScopeRequest(activity, placement, count))
    requested = sum(scope.item_count or 1 for scope in scopes)
    if requested > MAX_OPTIONS_PER_RESPONSE:
        raise _bad(
            pointer,
            f"at most {MAX_OPTIONS_PER_RESPONSE} offers per response; {requested} were requested",
            422,
        )
    return scopes


def _context(raw: Any) -> dict[str, Any]:
    pointer = "/xdm:profiles/0/xdm:contextData"
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise _bad(pointer, "must be an array of {@type, xdm:data}")
    context: dict[str, Any] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("@type"), str):
            raise _bad(f"{pointer}/{index}", "must be an object with a string @type")
        context[item["@type"]] = item.get("xdm:data", item.get("data", {}))
    return context


def _identity_map(raw: Any) -> dict[str, Any]:
    pointer = "/xdm:profiles/0/xdm:identityMap"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _bad(pointer, "must map namespaces to arrays of {xdm:id, primary}")
    for namespace, identities in raw.items():
        if not isinstance(identities, list) or not all(
            isinstance(i, dict) and isinstance(i.get("xdm:id", i.get("id")), str)
            for i in identities
        ):
            raise _bad(f"{pointer}/{namespace}", "must be an array of {xdm:id, primary}")
    return raw


def parse(body: Any, *, trace_param: bool = False) -> ParsedRequest:
    if not isinstance(body, dict):
        raise _bad("", "the body must be a JSON object")
    scopes = _scopes(body.get("xdm:propositionRequests"))
    profiles = body.get("xdm:profiles")
    if profiles is None:
        profile: dict[str, Any] = {}
    elif isinstance(profiles, list) and len(profiles) == 1 and isinstance(profiles[0], dict):
        profile = profiles[0]
    else:
        raise _bad("/xdm:profiles", "must be an array holding exactly one profile")
    inline = profile.get(INLINE_PROFILE)
    if inline is not None and not isinstance(inline, dict):
        raise _bad(f"/xdm:profiles/0/{INLINE_PROFILE}", "must be an object of profile attributes")
    request_id = profile.get("xdm:decisionRequestId")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad("/xdm:profiles/0/xdm:decisionRequestId", "must be a string")

    duplicates = body.get("xdm:allowDuplicatePropositions") or {}
    if not isinstance(duplicates, dict):
        raise _bad("/xdm:allowDuplicatePropositions", "must be an object")
    response_format = body.get("xdm:responseFormat") or {}
    if not isinstance(response_format, dict):
        raise _bad("/xdm:responseFormat", "must be an object")
    metadata = response_format.get("xdm:includeMetadata") or {}
    if not isinstance(metadata, dict):
        raise _bad("/xdm:responseFormat/xdm:includeMetadata", "must be an object")
    meta_pointer = "/xdm:responseFormat/xdm:includeMetadata"
    trace = _bool(body.get(TRACE), f"/{TRACE}")
    return ParsedRequest(
        scopes=scopes,
        across_activities=_bool(
            duplicates.get("xdm:acrossActivities"),
            "/xdm:allowDuplicatePropositions/xdm:acrossActivities",
        ),
        across_placements=_bool(
            duplicates.get("xdm:acrossPlacements"),
            "/xdm:allowDuplicatePropositions/xdm:acrossPlacements",
        ),
        identity_map=_identity_map(profile.get("xdm:identityMap")),
        decision_request_id=request_id,
        context=_context(profile.get("xdm:contextData")),
        dry_run=bool(_bool(body.get("xdm:dryRun"), "/xdm:dryRun")),
        include_content=_bool(
            response_format.get("xdm:includeContent"), "/xdm:responseFormat/xdm:includeContent"
        ),
        metadata=Metadata(
            _string_list(metadata.get("xdm:activity"), f"{meta_pointer}/xdm:activity"),
            _string_list(metadata.get("xdm:option"), f"{meta_pointer}/xdm:option"),
            _string_list(metadata.get("xdm:placement"), f"{meta_pointer}/xdm:placement"),
        ),
        inline_profile=inline,
        trace=bool(trace) or trace_param,
    )
