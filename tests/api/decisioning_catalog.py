"""Building small catalogs through the Offer Library API for decisioning tests, from the
shared entity builders (tests/builders.py)."""

from __future__ import annotations

from typing import Any

import builders

DPS = "/data/core/dps"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
WIDE_DATES = {"startDate": "2020-01-01T00:00:00.000Z", "endDate": "2040-01-01T00:00:00.000Z"}
WIDE_DATES_KW = {"start": WIDE_DATES["startDate"], "end": WIDE_DATES["endDate"]}


class Catalog:
    """Creates entities with chosen ids; every call asserts the 201."""

    def __init__(self, client, tenant) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.tenant = tenant

    async def post(self, path: str, entity_id: str, body: dict[str, Any]) -> str:
        url = f"{DPS}/{path}/{entity_id}"
        if path == "offers":
            offer_type = body.pop("_type", "personalized")
            url += f"?offer-type={offer_type}"
        response = await self.client.post(url, json=body, headers=self.tenant.headers)
        assert response.status_code == 201, response.text
        return entity_id

    async def send(self, path: str, stored: dict[str, Any]) -> str:
        """Create a builder's body (tests/builders.py) under its id."""
        body = {k: v for k, v in stored.items() if k not in ("id", "etag")}
        return await self.post(path, stored["id"], body)

    async def placement(self, pid: str, **fields: Any) -> str:
        return await self.send("placements", {**builders.placement(pid), "channel": WEB, **fields})

    async def offer(self, oid: str, placements: list[str], priority: int = 0, **fields: Any) -> str:
        body = builders.offer(
            oid,
            priority,
            placements=tuple(placements),
            constraint={"profileConstraintType": "none"},
            start=WIDE_DATES["startDate"],
            end=WIDE_DATES["endDate"],
        )
        return await self.send("offers", {**body, **fields})

    async def fallback(self, fid: str, placements: list[str]) -> str:
        body = builders.fallback(fid, tuple(placements))
        return await self.send("offers", {**body, "_type": "fallback"})

    async def collection(self, cid: str, offer_ids: list[str]) -> str:
        return await self.send("offer-collections", builders.collection(cid, offer_ids))

    async def rule(self, rid: str, pql: str) -> str:
        return await self.send("offer-rules", builders.rule(rid, pql))

    async def formula(self, fid: str, pql: str) -> str:
        body = builders.formula(fid, pql, returnType={"type": "integer"})
        return await self.send("ranking-formulas", body)

    async def decision(
        self, did: str, criteria: list[dict[str, Any]], fallback: str | None = None, **fields: Any
    ) -> str:
        body = builders.decision(did, criteria, fallback_id=fallback, **WIDE_DATES_KW)
        return await self.send("offer-decisions", {**body, **fields})


def criterion(
    collection: str,
    placements: list[str] | None = None,
    priority: int = 0,
    formula: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """builders.criterion with the API tests' positional placements and extra members."""
    body = builders.criterion(collection, placements=placements, priority=priority, formula=formula)
    return {**body, **fields}


def decision_request(
    scopes: list[tuple[str, str] | tuple[str, str, int]],
    identity: str | None = "person@example.com",
    **fields: Any,
) -> dict[str, Any]:
    requests = []
    for scope in scopes:
        item: dict[str, Any] = {"xdm:activityId": scope[0], "xdm:placementId": scope[1]}
        if len(scope) == 3:
            item["xdm:itemCount"] = scope[2]
        requests.append(item)
    profile: dict[str, Any] = {"xdm:decisionRequestId": "req-1"}
    if identity is not None:
        profile["xdm:identityMap"] = {"Email": [{"xdm:id": identity, "primary": True}]}
    profile.update(fields.pop("profile", {}))
    body = {"xdm:propositionRequests": requests, "xdm:profiles": [profile]}
    body.update(fields)
    return body


def option_ids(proposition: dict[str, Any]) -> list[str]:
    if "xdm:options" in proposition:
        return [o["xdm:id"] for o in proposition["xdm:options"]]
    return ["fallback:" + proposition["xdm:fallback"]["xdm:id"]]
