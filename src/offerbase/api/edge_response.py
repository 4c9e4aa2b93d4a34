"""Rendering an engine result as the Edge Network's `personalization:decisions` payload.

The shape the Web SDK and the Mobile SDK (AEPOptimize) read: per scope one proposition with
`id`, `scope` (as sent), `activity {id, etag}`, `placement {id, etag}` and `items[]`, each item
with `id`, `etag`, `schema` (the content component's URI) and `data {id, format, language,
content | deliveryURL, characteristics}`. The Mobile SDK drops an offer whose `etag` is not a
string, whose `data.id` differs from its `id` or whose characteristics are not strings, so
etags are strings here (the Decisioning API's `repo:etag` is an integer) and characteristic
values that are not strings are written as their JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from offerbase.api.decision_response import deliverable_component
from offerbase.api.edge_request import DecisionScope
from offerbase.catalog import Placement, enums
from offerbase.engine import ChosenOption, DecisionResult, FallbackOption

_DEFAULT_SCHEMA = enums.COMPONENT_TYPE_URI.get("html", "")


def _characteristics(body: Mapping[str, Any]) -> dict[str, str]:
    found = body.get("characteristics")
    if not isinstance(found, Mapping):
        return {}
    return {
        str(key): value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in found.items()
    }


def _item(chosen: ChosenOption | FallbackOption, placement: Placement) -> dict[str, Any]:
    component = deliverable_component(chosen.representation, placement)
    data: dict[str, Any] = {"id": chosen.id}
    schema = _DEFAULT_SCHEMA
    if isinstance(component, Mapping):
        schema = enums.COMPONENT_TYPE_URI.get(component.get("type", ""), schema)
        for key in ("format", "language", "content", "deliveryURL", "linkURL"):
            if key in component:
                data[key] = component[key]
    data["characteristics"] = _characteristics(chosen.body)
    item: dict[str, Any] = {"id": chosen.id, "etag": str(chosen.etag), "schema": schema}
    if isinstance(chosen, ChosenOption) and chosen.score is not None:
        item["score"] = chosen.score
    item["data"] = data
    return item


def propositions(
    result: DecisionResult, scopes: Sequence[DecisionScope], proposition_id: str
) -> list[dict[str, Any]]:
    """One proposition per decided scope (result.scopes is in the order of `scopes`). Every
    proposition of one decided event shares the decision event's proposition id, so feedback
    on any of them finds its decision (docs/edge.md)."""
    out = []
    for sent, scope in zip(scopes, result.scopes, strict=True):
        placement = scope.placement
        if scope.options:
            items = [_item(option, placement) for option in scope.options]
        elif scope.fallback is not None:
            items = [_item(scope.fallback, placement)]
        else:
            items = []  # a decision without a fallback offer, and nothing eligible
        out.append(
            {
                "id": proposition_id,
                "scope": sent.scope,
                "activity": {"id": scope.activity.id, "etag": str(scope.activity.etag)},
                "placement": {"id": placement.id, "etag": str(placement.etag)},
                "items": items,
            }
        )
    return out
