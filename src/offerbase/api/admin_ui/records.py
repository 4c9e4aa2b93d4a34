"""The Profiles and Datastreams pages: what the sandbox holds besides the catalog, read through
the store functions the Profile and Datastream APIs call; admins create and delete datastreams
(as `POST`/`DELETE /data/core/edge/datastreams` do)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from offerbase.api.admin_ui import sessions
from offerbase.api.admin_ui.routes import ROOT, _in_layout, _page, _sandbox_page
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.store_problems import transaction
from offerbase.store import datastreams, users
from offerbase.store.profiles import Profiles, profile_page
from offerbase.store.tenants import Sandbox

PAGE_SIZE = 25
MAX_LINES = 100
router = APIRouter(prefix=ROOT, include_in_schema=False)


def _base(sandbox: Sandbox, slug: str) -> str:
    return f"{ROOT}/sandbox/{quote(sandbox.name, safe='')}/{slug}"


def _identities(body: dict[str, Any]) -> list[str]:
    found = []
    identity_map = body.get("identityMap")
    if isinstance(identity_map, dict):
        for namespace, entries in identity_map.items():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and "id" in entry:
                    found.append(f"{namespace}:{entry['id']}")
    return found[:10]


@router.get("/sandbox/{sandbox_name}/profiles")
async def profiles_list(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    """Search by identity (exact, as the Profile API looks one up), or every profile in the
    order they were stored, a page at a time (the store's keyset pages)."""
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    params = request.query_params
    namespace = params.get("namespace", "ECID").strip()[:255] or "ECID"
    identity = params.get("identity", "").strip()[:1024]
    after_text = params.get("after", "0")
    after = int(after_text) if after_text.isdigit() and len(after_text) < 19 else 0
    base = _base(sandbox, "profiles")
    next_href = None
    async with transaction(services.db, write=False) as conn:
        if identity:
            body = await Profiles(conn, sandbox).get(namespace, identity)
            rows = [] if body is None else [(0, body)]
        else:
            rows = await profile_page(conn, sandbox, after, PAGE_SIZE + 1)
            if len(rows) > PAGE_SIZE:
                rows = rows[:PAGE_SIZE]
                next_href = f"{base}?{urlencode({'after': rows[-1][0]})}"
    shown = [
        {"identities": _identities(body), "json": json.dumps(body, indent=2, sort_keys=True)}
        for _, body in rows
    ]
    return _page(
        request,
        "profiles.html",
        title="Profiles",
        section="profiles",
        namespace=namespace,
        identity=identity,
        profiles=shown,
        base=base,
        next_href=next_href,
        first_href=base if after else None,
        **_in_layout(visitor, sandboxes, sandbox),
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()[:MAX_LINES] if line.strip()]


@router.get("/sandbox/{sandbox_name}/datastreams")
async def datastreams_list(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    return await _datastreams_page(request, services, sandbox_name)


async def _datastreams_page(
    request: Request,
    services: ServicesDep,
    sandbox_name: str,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    params = request.query_params
    search = params.get("q", "").strip()[:200]
    sort = params.get("sort", "created")
    sort = sort if sort in ("created", "name", "-name") else "created"
    offset_text = params.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 6 else 0
    async with transaction(services.db, write=False) as conn:
        found = await datastreams.list_datastreams(conn, sandbox)  # at most MAX_PER_SANDBOX
    if search:
        found = [d for d in found if search.lower() in d.name.lower()]
    if sort != "created":
        found.sort(key=lambda d: (d.name.lower(), d.id), reverse=sort == "-name")
    base = _base(sandbox, "datastreams")

    def href(at: int) -> str:
        return f"{base}?{urlencode({'q': search, 'sort': sort, 'offset': at})}"

    page = found[offset : offset + PAGE_SIZE]
    return _page(
        request,
        "datastreams.html",
        status,
        title="Datastreams",
        section="datastreams",
        items=page,
        total=len(found),
        search=search,
        sort=sort,
        base=base,
        next_href=href(offset + PAGE_SIZE) if offset + PAGE_SIZE < len(found) else None,
        prev_href=href(max(0, offset - PAGE_SIZE)) if offset else None,
        may_manage=visitor.user.role.allows(users.Role.ADMIN),
        errors=errors or {},
        form=form or {},
        **_in_layout(visitor, sandboxes, sandbox),
    )


@router.post("/sandbox/{sandbox_name}/datastreams/new")
async def create_datastream(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, _sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    await sessions.check_csrf(request, visitor.session)
    sessions.require(visitor.user, users.Role.ADMIN)
    form = await sessions.read_form(request)
    counts: dict[str, object] = {}
    for line in _lines(form.get("itemCounts", "")):
        placement, _, count = line.partition("=")
        counts[placement.strip()] = int(count) if count.strip().isdigit() else count.strip()
    try:
        async with transaction(services.db, write=True) as conn:
            created = await datastreams.create_datastream(
                conn,
                sandbox,
                name=form.get("name", ""),
                origins=_lines(form.get("origins", "")),
                item_counts=counts,
            )
    except ApiProblem as problem:
        errors: dict[str, list[str]] = {}
        for error in problem.errors or [{"pointer": "", "detail": problem.detail}]:
            field = error.get("pointer", "").strip("/").split("/")[0] or "name"
            errors.setdefault(field, []).append(error.get("detail", ""))
        return await _datastreams_page(
            request, services, sandbox_name, problem.status, errors, form
        )
    services.datastreams.forget(created.id)  # a cached "not found" of this id is stale
    return RedirectResponse(_base(sandbox, "datastreams"), 303)


@router.post("/sandbox/{sandbox_name}/datastreams/{datastream_id}/delete")
async def delete_datastream(
    request: Request, services: ServicesDep, sandbox_name: str, datastream_id: str
) -> Response:
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    await sessions.check_csrf(request, visitor.session)
    sessions.require(visitor.user, users.Role.ADMIN)
    async with transaction(services.db, write=True) as conn:
        deleted = await datastreams.delete_datastream(conn, sandbox, datastream_id)
    if not deleted:
        return _page(
            request,
            "message.html",
            404,
            title="Datastreams",
            message=f"This sandbox has no datastream '{datastream_id[:80]}'.",
            **_in_layout(visitor, sandboxes, sandbox),
        )
    services.datastreams.forget(datastream_id)
    return RedirectResponse(_base(sandbox, "datastreams"), 303)
