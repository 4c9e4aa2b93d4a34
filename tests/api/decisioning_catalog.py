"""Building small catalogs through the Offer Library API for decisioning tests."""

from __future__ import annotations

from typing import Any

DPS = "/data/core/dps"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
WIDE_DATES = {"startDate": "2020-01-01T00:00:00.000Z", "endDate": "2040-01-01T00:00:00.000Z"}


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

    async def placement(self, pid: str, **fields: Any) -> str:
        body = {"name": pid, "channel": WEB, "componentType": "html", **fields}
        return await self.post("placements", pid, body)

    async def offer(self, oid: str, placements: list[str], priority: int = 0, **fields: Any) -> str:
        body: dict[str, Any] = {
            "name": oid,
            "status": "approved",
            "representations": [
                {
                    "channel": WEB,
                    "placement": p,
                    "components": [
                        {"type": "html", "format": "text/html", "content": f"<p>{oid}</p>"}
                    ],
                }
                for p in placements
            ],
            "selectionConstraint": {**WIDE_DATES, "profileConstraintType": "none"},
            "rank": {"priority": priority},
        }
        body.update(fields)
        return await self.post("offers", oid, body)

    async def fallback(self, fid: str, placements: list[str]) -> str:
        body = {
            "_type": "fallback",
            "name": fid,
            "status": "approved",
            "representations": [
                {
                    "channel": WEB,
                    "placement": p,
                    "components": [
                        {"type": "html", "format": "text/html", "content": "<p>fallback</p>"}
                    ],
                }
                for p in placements
            ],
        }
        return await self.post("offers", fid, body)

    async def collection(self, cid: str, offer_ids: list[str]) -> str:
        return await self.post(
            "offer-collections", cid, {"name": cid, "filterType": "offers", "ids": offer_ids}
        )

    async def rule(self, rid: str, pql: str) -> str:
        body = {"name": rid, "condition": {"type": "PQL", "format": "pql/text", "value": pql}}
        return await self.post("offer-rules", rid, body)

    async def formula(self, fid: str, pql: str) -> str:
        body = {
            "name": fid,
            "returnType": {"type": "integer"},
            "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        }
        return await self.post("ranking-formulas", fid, body)

    async def decision(
        self, did: str, criteria: list[dict[str, Any]], fallback: str | None = None, **fields: Any
    ) -> str:
        body: dict[str, Any] = {
            "name": did,
            "status": "live",
            **WIDE_DATES,
            "criteria": criteria,
            **fields,
        }
        if fallback:
            body["fallback"] = fallback
        return await self.post("offer-decisions", did, body)


def criterion(
    collection: str,
    placements: list[str] | None = None,
    priority: int = 0,
    formula: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "optionSelection": {"filter": collection},
        "rank": {"priority": priority},
    }
    if placements is not None:
        body["placements"] = placements
    if formula is not None:
        body["rank"]["order"] = {"orderEvaluationType": "scoringFunction", "function": formula}
    body.update(fields)
    return body


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
