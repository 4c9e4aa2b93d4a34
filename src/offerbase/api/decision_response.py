"""Rendering an engine result as a Decisioning API response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from offerbase.api.decision_request import Metadata, ParsedRequest
from offerbase.catalog import Placement, enums
from offerbase.engine import ChosenOption, DecisionResult, FallbackOption, ScopeResult


def deliverable_component(representation: Mapping[str, Any] | None, placement: Placement) -> Any:
    """The component to deliver: the first whose type matches the placement's, else the first."""
    if not representation:
        return None
    components = representation.get("components") or []
    wanted = placement.component_type
    for component in components:
        if component.get("type") == wanted:
            return component
    return components[0] if components else None


def _content(option: dict[str, Any], component: Mapping[str, Any] | None) -> None:
    if component is None:
        return
    if "type" in component:
        option["@type"] = enums.COMPONENT_TYPE_URI.get(component["type"], component["type"])
    if "format" in component:
        option["dc:format"] = component["format"]
    if "language" in component:
        option["dc:language"] = component["language"]
    for key in ("content", "deliveryURL", "linkURL"):
        if key in component:
            option[f"xdm:{key}"] = component[key]


def _option(
    chosen: ChosenOption | FallbackOption,
    placement: Placement,
    include_content: bool,
    fields: frozenset[str],
) -> dict[str, Any]:
    option: dict[str, Any] = {"xdm:id": chosen.id, "repo:etag": chosen.etag}
    if include_content:
        _content(option, deliverable_component(chosen.representation, placement))
    if "name" in fields and "name" in chosen.body:
        option["xdm:name"] = chosen.body["name"]
    if "characteristics" in fields:
        option["xdm:characteristics"] = chosen.body.get("characteristics", {})
    if isinstance(chosen, ChosenOption) and chosen.score is not None:
        option["xdm:score"] = chosen.score
    return option


def _proposition(scope: ScopeResult, request: ParsedRequest) -> dict[str, Any]:
    meta: Metadata = request.metadata
    placement = scope.placement
    activity: dict[str, Any] = {"xdm:id": scope.activity.id, "repo:etag": scope.activity.etag}
    if "name" in meta.activity and "name" in scope.activity.body:
        activity["xdm:name"] = scope.activity.body["name"]
    placement_out: dict[str, Any] = {
        "xdm:id": scope.placement.id,
        "repo:etag": scope.placement.etag,
    }
    for field in ("name", "channel", "componentType"):
        if field in meta.placement and field in placement.body:
            placement_out[f"xdm:{field}"] = placement.body[field]
    include_content = request.include_content
    if include_content is None:
        include_content = placement.return_content
    proposition: dict[str, Any] = {"xdm:activity": activity, "xdm:placement": placement_out}
    if scope.options:
        proposition["xdm:options"] = [
            _option(o, placement, include_content, meta.option) for o in scope.options
        ]
    elif scope.fallback is not None:
        proposition["xdm:fallback"] = _option(
            scope.fallback, placement, include_content, meta.option
        )
    else:
        # A decision without a fallback offer and nothing eligible: Adobe never answers an
        # empty options list, so the proposition carries neither (documented).
        pass
    return proposition


def render(
    result: DecisionResult, request: ParsedRequest, proposition_id: str, created_ms: int
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "xdm:propositionId": proposition_id,
        "xdm:propositions": [_proposition(scope, request) for scope in result.scopes],
        "ode:createDate": created_ms,
    }
    if request.trace and result.trace is not None:
        body["offerbase:trace"] = result.trace
    return body


def event_body(
    result: DecisionResult, request: ParsedRequest, proposition_id: str, timestamp: str
) -> dict[str, Any]:
    """The recorded decision event (shaped after XDM's decision event)."""
    propositions = []
    for scope in result.scopes:
        item: dict[str, Any] = {
            "xdm:activity": {"xdm:id": scope.activity.id},
            "xdm:placement": {"xdm:id": scope.placement.id},
        }
        if scope.options:
            item["xdm:selections"] = [
                {"xdm:id": o.id, **({"xdm:score": o.score} if o.score is not None else {})}
                for o in scope.options
            ]
        elif scope.fallback is not None:
            item["xdm:fallback"] = {"xdm:id": scope.fallback.id}
        if scope.capped:  # the offers a cap stopped (reports' capHits), only when there are any
            item["offerbase:cappedOptions"] = list(scope.capped)
        if scope.ranking is not None:  # what the learner attributes this scope's feedback to
            item["offerbase:ranking"] = {
                "strategyId": scope.ranking.strategy_id,
                "arm": scope.ranking.arm,
                "contextKey": scope.ranking.context_key,
            }
        propositions.append(item)
    return {
        "xdm:propositionId": proposition_id,
        "xdm:timestamp": timestamp,
        "xdm:identityMap": request.identity_map,
        "xdm:decisionRequestId": request.decision_request_id,
        "xdm:propositions": propositions,
    }
