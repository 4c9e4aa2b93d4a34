"""The legacy Decisioning API (`/data/core/ode/{containerId}`) and the container discovery its
clients start from.

Before `/data/core/ods`, the decisioning runtime lived under a container id, one per sandbox,
which clients read from the repository root of the (now retired) xcore API. Adobe's own "AJO:
Decisioning Service" Postman collection still chains these calls, without `x-sandbox-name`:

    GET  /data/core/xcore/?product=acp&property=_instance.parentName==SANDBOX   containers
    GET  /data/core/ode/{containerId}/offers?activityId=ID (repeatable, <= 30)   candidates
    GET  /data/core/ode/{containerId}/diagnostics                                 last changes
    POST /data/core/ode/{containerId}/decisions                                   decisions

The decisions route is decisioning.py's; this module gives it the container's sandbox and the
translation of the 2019 request format (`decision-request;version=0.9`) into the current one.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offerbase.api import deps
from offerbase.api.auth import authenticate_headers, require_sandbox
from offerbase.api.problems import ApiProblem, field_error
from offerbase.engine import MAX_SCOPES, Snapshot
from offerbase.store import tenants
from offerbase.store.library import last_changes
from offerbase.store.tenants import Sandbox

ROOT = "/data/core/ode"
XCORE_HOME_MEDIA_TYPE = "application/vnd.adobe.platform.xcore.home.hal+json"
CONTAINER_SCHEMA = "https://ns.adobe.com/experience/xcore/container"
_CATALOG_KINDS = ("personalized-offer", "fallback-offer", "collection", "tag")
_ACTIVITY_KINDS = ("decision", "placement", "decision-rule", "ranking-formula", "ranking-strategy")


async def container_sandbox(request: Request) -> Sandbox:
    """The sandbox of the path's container id, which must belong to the caller's organization
    and be one the credential may use (the container id selects the sandbox: `x-sandbox-name`
    is not needed)."""
    services = deps.services(request)
    credential = await authenticate_headers(request, services)
    container_id = request.path_params["container_id"]
    async with services.db.read() as conn:
        sandbox = await tenants.get_sandbox_by_container(conn, container_id)
    if sandbox is None or sandbox.org_id != credential.org:
        raise ApiProblem(404, "Not Found", f"No container '{container_id}' in this organization.")
    require_sandbox(credential, sandbox.name)
    return sandbox


# --- the 0.9 request format -------------------------------------------------------------------


def is_v09(body: Any) -> bool:
    return isinstance(body, dict) and "xdm:offerActivities" in body


def translate_v09(body: dict[str, Any], snapshot: Snapshot) -> dict[str, Any]:
    """A 0.9 request as the current request format.

    0.9 names activities only (`xdm:offerActivities[].xdm:offerActivity`, an optional
    `xdm:offerPlacement`), with one top-level identity map and context. An activity without a
    placement is asked for in each placement its criteria name, as the 2019 activities had one
    placement each. Members of the current format the body also carries are kept.
    """
    activities = body["xdm:offerActivities"]
    if not isinstance(activities, list) or not activities:
        raise _bad("/xdm:offerActivities", "must be a non-empty array of {xdm:offerActivity}")
    scopes: list[dict[str, Any]] = []
    for index, item in enumerate(activities):
        pointer = f"/xdm:offerActivities/{index}"
        activity_id = item.get("xdm:offerActivity") if isinstance(item, dict) else None
        if not isinstance(activity_id, str) or not activity_id:
            raise _bad(f"{pointer}/xdm:offerActivity", "is required (a decision id)")
        placement_id = item.get("xdm:offerPlacement")
        if placement_id is not None:
            if not isinstance(placement_id, str) or not placement_id:
                raise _bad(f"{pointer}/xdm:offerPlacement", "must be a placement id")
            scopes.append({"xdm:activityId": activity_id, "xdm:placementId": placement_id})
            continue
        decision = snapshot.decisions.get(activity_id)
        placements = snapshot.placements_of(decision) if decision is not None else ()
        if not placements:
            raise ApiProblem(
                404 if decision is None else 422,
                "Not Found" if decision is None else "Unprocessable Entity",
                f"No decision '{activity_id}' in this sandbox."
                if decision is None
                else f"Decision '{activity_id}' applies to no placement: name one in "
                "xdm:offerPlacement.",
                errors=[field_error(f"{pointer}/xdm:offerActivity", "unknown or unplaced")],
            )
        scopes.extend({"xdm:activityId": activity_id, "xdm:placementId": p.id} for p in placements)
    if len(scopes) > MAX_SCOPES:
        raise ApiProblem(
            422,
            "Unprocessable Entity",
            f"These activities make {len(scopes)} scopes; at most {MAX_SCOPES} are allowed.",
            errors=[field_error("/xdm:offerActivities", f"at most {MAX_SCOPES} scopes")],
        )
    profile: dict[str, Any] = {}
    for name in ("xdm:identityMap", "xdm:contextData", "xdm:decisionRequestId"):
        if name in body:
            profile[name] = body[name]
    translated = {
        key: value
        for key, value in body.items()
        if key
        not in (
            "xdm:offerActivities",
            "xdm:identityMap",
            "xdm:contextData",
            "xdm:decisionRequestId",
            # 0.9's schema-validation switch and profile model name have no effect here.
            "xdm:validateContextData",
            "xdm:profileModel",
        )
    }
    translated["xdm:propositionRequests"] = scopes
    translated.setdefault("xdm:profiles", [profile])
    return translated


def _bad(pointer: str, detail: str) -> ApiProblem:
    return ApiProblem(
        400, "Bad Request", f"{pointer}: {detail}", errors=[field_error(pointer, detail)]
    )


# --- activity-to-offers and diagnostics ---------------------------------------------------------


def _reference(href: str, entity_id: str, etag: Any) -> dict[str, Any]:
    return {"@id": entity_id, "_links": {"self": {"href": href}}, "repo:etag": str(etag)}


async def activity_offers(request: Request) -> Response:
    """Each decision's candidates before rules and caps (approved, selected by its criteria,
    with a representation for one of its placements) and its fallback."""
    sandbox = await container_sandbox(request)
    ids = request.query_params.getlist("activityId")
    if not ids:
        raise _bad("activityId", "is required (a decision id; repeat it for up to 30)")
    if len(ids) > MAX_SCOPES:
        raise _bad("activityId", f"at most {MAX_SCOPES} activities per request")
    services = deps.services(request)
    snapshot = await services.snapshots.get(sandbox)
    if any(i not in snapshot.decisions for i in ids):
        snapshot = await services.snapshots.get(sandbox, recheck=True)
    results = []
    for activity_id in ids:
        decision = snapshot.decisions.get(activity_id)
        if decision is None:
            raise ApiProblem(
                404,
                "Not Found",
                f"No decision '{activity_id}' in this sandbox.",
                errors=[field_error("activityId", f"unknown decision '{activity_id}'")],
            )
        entry: dict[str, Any] = {
            "xdm:offerActivity": _reference(
                f"/data/core/dps/offer-decisions/{decision.id}", decision.id, decision.etag
            ),
            "xdm:offers": [
                _reference(f"/data/core/dps/offers/{o.id}?offer-type=personalized", o.id, o.etag)
                for o in snapshot.candidate_offers(decision)
            ],
        }
        fallback = snapshot.fallbacks.get(decision.fallback_id or "")
        if fallback is not None:
            entry["xdm:fallbackOffer"] = _reference(
                f"/data/core/dps/offers/{fallback.id}?offer-type=fallback",
                fallback.id,
                fallback.etag,
            )
        results.append(entry)
    return _json(request, {"xdm:activityOffers": results})


async def diagnostics(request: Request) -> Response:
    """When the offers and the activities of the container last changed, and the rules and
    formulas that do not compile (rules are compiled when saved, so this is normally empty)."""
    sandbox = await container_sandbox(request)
    services = deps.services(request)
    snapshot = await services.snapshots.get(sandbox)
    async with services.db.read() as conn:
        changed = await last_changes(conn, sandbox)
    errors = [
        {"xdm:id": entity_id, "xdm:message": text} for entity_id, text in snapshot.errors.items()
    ]

    def latest(kinds: tuple[str, ...]) -> str | None:
        return max((changed[k] for k in kinds if k in changed), default=None)

    operations = {
        "xdm:offerCatalogUpdate": {"xdm:date": latest(_CATALOG_KINDS), "xdm:errors": []},
        "xdm:activitiesUpdate": {"xdm:date": latest(_ACTIVITY_KINDS), "xdm:errors": errors},
    }
    return _json(request, {"xdm:operations": operations})


# --- container discovery ----------------------------------------------------------------------

CONTAINER_PROPERTIES = ("_instance.parentName", "_instance.containerType", "instanceId")


async def containers_home(request: Request) -> Response:
    """The repository root of the xcore API, as far as clients use it: the organization's
    containers, filtered by `product` and `property=NAME==VALUE` (sandbox name, container type
    or id). Organization-wide, like every container list: no `x-sandbox-name` needed."""
    services = deps.services(request)
    credential = await authenticate_headers(request, services)
    filters: list[tuple[str, str]] = []
    for expression in request.query_params.getlist("property"):
        name, sep, value = expression.partition("==")
        if not sep or name not in CONTAINER_PROPERTIES:
            raise _bad(
                "property",
                f"'{expression}' is not NAME==VALUE with NAME one of "
                + ", ".join(CONTAINER_PROPERTIES),
            )
        filters.append((name, value))
    unknown = set(request.query_params) - {"product", "property"}
    if unknown:
        raise _bad(sorted(unknown)[0], "is not a parameter of this endpoint (product, property)")
    products = request.query_params.getlist("product")
    async with services.db.read() as conn:
        sandboxes = await tenants.list_sandboxes(conn, credential.org)
    found = [
        _container(s)
        for s in sandboxes
        # A credential limited to one sandbox sees its container only.
        if credential.may_use(s.name)
        and all(p == "acp" for p in products)
        and all(_matches(s, n, v) for n, v in filters)
    ]
    query = request.url.query
    body = {
        "_embedded": {CONTAINER_SCHEMA: found},
        "_links": {
            "self": {
                "href": "/" + (f"?{query}" if query else ""),
                "@type": "https://ns.adobe.com/experience/xcore/hal/home",
            }
        },
    }
    accept = request.headers.get("accept", "")
    media_type = XCORE_HOME_MEDIA_TYPE if "xcore.home.hal+json" in accept else "application/json"
    return Response(orjson.dumps(body), 200, media_type=media_type)


def _matches(sandbox: Sandbox, name: str, value: str) -> bool:
    if name == "_instance.parentName":
        return sandbox.name == value
    if name == "_instance.containerType":
        return value == "decisioning"
    return sandbox.container_id == value


def _container(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "instanceId": sandbox.container_id,
        "schemas": [f"{CONTAINER_SCHEMA};version=0.5"],
        "productContexts": ["acp"],
        "repo:etag": 1,
        "_instance": {
            "containerType": "decisioning",
            "repo:name": sandbox.name,
            "parentName": sandbox.name,
            "parentId": sandbox.sandbox_id,
        },
        "_links": {"self": {"href": f"/containers/{sandbox.container_id}"}},
    }


def _json(request: Request, body: Any) -> Response:
    accept = request.headers.get("accept", "")
    media_type = "application/vnd.adobe.xdm+json" if "xdm+json" in accept else "application/json"
    return Response(orjson.dumps(body), 200, media_type=media_type)


routes = [
    Route(f"{ROOT}/{{container_id}}/offers", activity_offers, methods=["GET"]),
    Route(f"{ROOT}/{{container_id}}/diagnostics", diagnostics, methods=["GET"]),
    Route("/data/core/xcore/", containers_home, methods=["GET"]),
    Route("/data/core/xcore", containers_home, methods=["GET"]),
]
