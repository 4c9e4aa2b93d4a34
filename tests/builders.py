"""Entity body builders, the one set every test uses: the engine tests (engine_helpers, which
loads them through validation and the catalog loader) and the API tests (decisioning_catalog,
which posts them through the Offer Library API).

Each builder returns a body as stored, with `id` and `etag`; the API tests send it without them.
Every body is one the Offer Library API accepts.
"""

from __future__ import annotations

from typing import Any

WEB = "https://ns.adobe.com/xdm/channel-types/web"


def rep(placement: str, content: str = "<p>x</p>") -> dict[str, Any]:
    return {
        "channel": WEB,
        "placement": placement,
        "components": [{"type": "html", "format": "text/html", "content": content}],
    }


def offer(
    oid: str,
    priority: int | None = 0,
    *,
    status: str | None = "approved",
    placements: tuple[str, ...] = ("P1",),
    tags: tuple[str, ...] = (),
    start: str | None = None,
    end: str | None = None,
    constraint: dict[str, Any] | None = None,
    caps: list[dict[str, Any]] | None = None,
    legacy_caps: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": oid, "etag": 1, "name": oid}
    if status is not None:
        body["status"] = status
    body["representations"] = [rep(p, f"<p>{oid}</p>") for p in placements]
    sel: dict[str, Any] = dict(constraint or {})
    if start:
        sel["startDate"] = start
    if end:
        sel["endDate"] = end
    if sel:
        body["selectionConstraint"] = sel
    if priority is not None:
        body["rank"] = {"priority": priority}
    if tags:
        body["tags"] = list(tags)
    if caps is not None:
        body["frequencyCappingConstraints"] = caps
    if legacy_caps is not None:
        body["cappingConstraint"] = legacy_caps
    body.update(extra)
    return body


def fallback(fid: str = "F1", placements: tuple[str, ...] = ("P1", "P2")) -> dict[str, Any]:
    return {
        "id": fid,
        "etag": 2,
        "name": fid,
        "status": "approved",
        "representations": [rep(p, "<p>fallback</p>") for p in placements],
    }


def placement(pid: str, item_count: int | None = None, allow_dup: bool | None = None) -> dict:
    body: dict[str, Any] = {"id": pid, "etag": 1, "name": pid, "componentType": "html"}
    if item_count is not None:
        body["itemCount"] = item_count
    if allow_dup is not None:
        body["allowDuplicatePlacements"] = allow_dup
    return body


def strategy(
    sid: str,
    kind: str = "auto-optimization",
    *,
    holdout: int | None = None,
    features: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """A ranking strategy (Offerbase's own kind)."""
    body: dict[str, Any] = {"id": sid, "etag": 1, "name": sid, "type": kind}
    if holdout is not None:
        body["holdoutPercentage"] = holdout
    if features is not None:
        body["features"] = features
    return body


def collection(cid: str, ids: list[str], filter_type: str = "offers") -> dict[str, Any]:
    return {"id": cid, "etag": 1, "name": cid, "filterType": filter_type, "ids": ids}


def criterion(
    collection_id: str | None = None,
    *,
    options: list[str] | None = None,
    placements: list[str] | None = None,
    priority: int | None = None,
    formula: str | None = None,
    order_type: str | None = None,
    strategy: str | None = None,
    constraint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    crit: dict[str, Any] = {}
    if placements is not None:
        crit["placements"] = placements
    rank: dict[str, Any] = {}
    if priority is not None:
        rank["priority"] = priority
    if formula is not None:
        rank["order"] = {"orderEvaluationType": "scoringFunction", "function": formula}
    elif order_type is not None or strategy is not None:
        rank["order"] = {
            "orderEvaluationType": order_type or "rankingStrategy",
            "rankingStrategy": strategy or "ai1",
        }
    if rank:
        crit["rank"] = rank
    if constraint is not None:
        crit["profileConstraint"] = constraint
    if options is not None:
        crit["optionSelection"] = {"optionSelectionType": "directList", "options": options}
    else:
        crit["optionSelection"] = {"filter": collection_id}
    return crit


def decision(
    did: str,
    criteria: list[dict[str, Any]],
    *,
    status: str | None = "live",
    fallback_id: str | None = "F1",
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": did, "etag": 4, "name": did, "criteria": criteria}
    if status is not None:
        body["status"] = status
    if fallback_id is not None:
        body["fallback"] = fallback_id
    if start:
        body["startDate"] = start
    if end:
        body["endDate"] = end
    return body


def rule(rid: str, source: str) -> dict[str, Any]:
    return {
        "id": rid,
        "etag": 1,
        "name": rid,
        "condition": {"type": "PQL", "format": "pql/text", "value": source},
    }


def formula(fid: str, source: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": fid,
        "etag": 1,
        "name": fid,
        "expression": {"type": "PQL", "format": "pql/text", "value": source},
        **extra,
    }
