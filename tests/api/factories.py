"""Helpers for the Offer Library API tests: URLs, valid bodies of every kind, a small client.

Bodies made here are valid and self-contained (they name no other entity) unless a test passes
references; `build_graph` creates one entity of every kind wired together the way Adobe's
examples are (offer -> placement, tag, rule; collection -> tag; decision -> everything).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

import httpx

ROOT = "/data/core/dps"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
EMAIL = "https://ns.adobe.com/xdm/channel-types/email"
NS = "https://ns.adobe.com/experience/offer-management"

# kind -> (collection path, offer-type query value or None)
KINDS: dict[str, tuple[str, str | None]] = {
    "personalized-offer": ("offers", "personalized"),
    "fallback-offer": ("offers", "fallback"),
    "placement": ("placements", None),
    "collection": ("offer-collections", None),
    "tag": ("tags", None),
    "decision-rule": ("offer-rules", None),
    "ranking-formula": ("ranking-formulas", None),
    "decision": ("offer-decisions", None),
    "ranking-strategy": ("ranking-strategies", None),
}
ALL_KINDS = list(KINDS)

# Adobe's Offer Library API: the schema URI (with version) in every read.
SCHEMAS: dict[str, str] = {
    "personalized-offer": f"{NS}/personalized-offer;version=0.15",
    "fallback-offer": f"{NS}/fallback-offer;version=0.8",
    "placement": f"{NS}/offer-placement;version=0.5",
    "collection": f"{NS}/offer-filter;version=0.4",
    "tag": f"{NS}/tag;version=0.1",
    "decision-rule": f"{NS}/eligibility-rule;version=0.3",
    "ranking-formula": f"{NS}/ranking-function;version=0.3",
    "decision": f"{NS}/offer-activity;version=0.8",
    # Offerbase's own collection: its own namespace
    "ranking-strategy": "https://ns.offerbase.dev/ranking-strategy;version=1",
}

RECEIPT_KEYS = {
    "etag",
    "createdBy",
    "lastModifiedBy",
    "id",
    "sandboxId",
    "createdDate",
    "lastModifiedDate",
    "createdByClientId",
    "lastModifiedByClientId",
}
READ_METADATA = {"id", "etag", "created", "modified", "createdBy", "lastModifiedBy", "schemas"}

RULE_PQL = 'profile.person.name.firstName.equals("Joe", false)'
FORMULA_PQL = "offer.rank.priority * 2"

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix} {next(_counter)}"


def url(kind: str, entity_id: str | None = None, **params: str) -> str:
    path, offer_type = KINDS[kind]
    query = dict(params)
    if offer_type is not None:
        query.setdefault("offer-type", offer_type)
    target = f"{ROOT}/{path}" + (f"/{entity_id}" if entity_id is not None else "")
    if query:
        target += "?" + str(httpx.QueryParams(query))
    return target


def body(kind: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid body of `kind` that names no other entity; `fields` override."""
    base: dict[str, Any]
    if kind == "personalized-offer":
        base = {"name": unique("Offer"), "status": "draft", "rank": {"priority": 0}}
    elif kind == "fallback-offer":
        base = {"name": unique("Fallback"), "status": "approved"}
    elif kind == "placement":
        base = {"name": unique("Placement"), "channel": WEB, "componentType": "html"}
    elif kind == "collection":
        base = {"name": unique("Collection"), "filterType": "any-tags", "ids": []}
    elif kind == "tag":
        base = {"name": unique("Tag")}
    elif kind == "decision-rule":
        base = {
            "name": unique("Rule"),
            "condition": {"type": "PQL", "format": "pql/text", "value": RULE_PQL},
        }
    elif kind == "ranking-formula":
        base = {
            "name": unique("Formula"),
            "returnType": {"type": "INTEGER"},
            "expression": {"type": "PQL", "format": "pql/text", "value": FORMULA_PQL},
        }
    elif kind == "decision":
        base = {"name": unique("Decision"), "status": "draft"}
    elif kind == "ranking-strategy":
        base = {"name": unique("Strategy"), "type": "auto-optimization"}
    else:
        raise ValueError(kind)
    base.update(copy.deepcopy(fields))
    return base


def html_representation(placement_id: str, content: str = "Hello") -> dict[str, Any]:
    return {
        "channel": WEB,
        "placement": placement_id,
        "components": [
            {"type": "html", "format": "text/html", "language": ["en-us"], "content": content}
        ],
    }


def criterion(placements: list[str], collection_id: str, **extra: Any) -> dict[str, Any]:
    return {"placements": placements, "optionSelection": {"filter": collection_id}, **extra}


@dataclass
class Api:
    """The HTTP client bound to one tenant (org + sandbox)."""

    client: httpx.AsyncClient
    tenant: Any

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.tenant.headers)

    def as_(self, tenant: Any) -> Api:
        return Api(self.client, tenant)

    async def post(self, kind: str, payload: Any, entity_id: str | None = None) -> httpx.Response:
        return await self.client.post(url(kind, entity_id), json=payload, headers=self.headers)

    async def create(
        self, kind: str, payload: Any = None, entity_id: str | None = None, **fields: Any
    ) -> str:
        """Create (201 asserted) and return the id."""
        response = await self.post(
            kind, body(kind, **fields) if payload is None else payload, entity_id
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def get(self, kind: str, entity_id: str, **params: str) -> httpx.Response:
        return await self.client.get(url(kind, entity_id, **params), headers=self.headers)

    async def read(self, kind: str, entity_id: str) -> dict[str, Any]:
        response = await self.get(kind, entity_id)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def list(self, kind: str, *params: tuple[str, str]) -> httpx.Response:
        path, offer_type = KINDS[kind]
        query = list(params)
        if offer_type is not None:
            query.append(("offer-type", offer_type))
        return await self.client.get(
            f"{ROOT}/{path}", params=httpx.QueryParams(query), headers=self.headers
        )

    async def ids(self, kind: str, *params: tuple[str, str]) -> list[str]:
        response = await self.list(kind, ("limit", "1000"), *params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["results"]]

    async def follow(self, href: str) -> httpx.Response:
        return await self.client.get(ROOT + href, headers=self.headers)

    async def patch(
        self, kind: str, entity_id: str, ops: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.patch(
            url(kind, entity_id), json=ops, headers={**self.headers, **(headers or {})}
        )

    async def put(
        self, kind: str, entity_id: str, payload: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.put(
            url(kind, entity_id), json=payload, headers={**self.headers, **(headers or {})}
        )

    async def delete(
        self, kind: str, entity_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.delete(
            url(kind, entity_id), headers={**self.headers, **(headers or {})}
        )


async def build_graph(api: Api) -> dict[str, str]:
    """One entity of every kind, wired together; returns kind -> id."""
    ids: dict[str, str] = {}
    ids["placement"] = await api.create("placement")
    ids["tag"] = await api.create("tag")
    ids["decision-rule"] = await api.create("decision-rule")
    ids["ranking-formula"] = await api.create("ranking-formula")
    ids["ranking-strategy"] = await api.create("ranking-strategy")
    ids["personalized-offer"] = await api.create(
        "personalized-offer",
        representations=[html_representation(ids["placement"])],
        tags=[ids["tag"]],
        selectionConstraint={
            "profileConstraintType": "eligibilityRule",
            "eligibilityRule": ids["decision-rule"],
        },
    )
    ids["fallback-offer"] = await api.create(
        "fallback-offer", representations=[html_representation(ids["placement"])]
    )
    ids["collection"] = await api.create("collection", ids=[ids["tag"]])
    ids["decision"] = await api.create(
        "decision",
        fallback=ids["fallback-offer"],
        criteria=[
            criterion(
                [ids["placement"]],
                ids["collection"],
                rank={
                    "priority": 1,
                    "order": {
                        "orderEvaluationType": "scoringFunction",
                        "function": ids["ranking-formula"],
                    },
                },
            ),
            criterion(
                [ids["placement"]],
                ids["collection"],
                rank={
                    "priority": 0,
                    "order": {
                        "orderEvaluationType": "rankingStrategy",
                        "rankingStrategy": ids["ranking-strategy"],
                    },
                },
            ),
        ],
    )
    return ids


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 7807 problem with `status` and return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    payload = dict(response.json())
    assert payload["status"] == status
    assert {"type", "title", "detail"} <= set(payload)
    return payload


def pointers(payload: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in payload.get("errors", [])]
