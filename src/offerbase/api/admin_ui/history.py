"""The History page of one entity: who changed what and when, a diff between two versions, and
restoring an earlier version.

`/admin/sandbox/{sandbox}/history/{kind}/{id}`: `kind` is the catalog kind
(`personalized-offer`, `fallback-offer`, `placement`, `collection`, `tag`, `decision-rule`,
`ranking-formula`, `decision`), so any editor page can link to it. Versions come from the
store's `entity_history` (store/library.py `Library.history`). A restore is an update whose new
body is the chosen version's, through `Library.update` like the API's PUT: validation,
references, guardrails, and the etag the page showed (a stale page is refused, never applied).
"""

from __future__ import annotations

import difflib
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from offerbase import catalog
from offerbase.api.admin_ui import routes as ui
from offerbase.api.admin_ui import sessions
from offerbase.api.admin_ui.sessions import Visitor
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.store_problems import transaction
from offerbase.catalog import enums
from offerbase.store import users
from offerbase.store.library import Actor, Library, Version
from offerbase.store.tenants import Sandbox

MAX_DIFF_LINES = 2000  # of one diff (a body is at most a few hundred KB of JSON)
# Statuses that make an entity serve: restoring a version into one of them is an approval.
SERVING = {"approved", enums.DECISION_LIVE}

router = APIRouter(prefix=ui.ROOT, include_in_schema=False)


def lines(body: dict[str, Any] | None) -> list[str]:
    """A body as stable, diffable lines (sorted keys, indented)."""
    if body is None:
        return ["(deleted)"]
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def diff(old: Version | None, new: Version) -> list[tuple[str, str]]:
    """(`+`, `-`, ` ` or `@`, line) of the unified diff from `old` to `new`."""
    before = lines(old.body) if old is not None else []
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(before, lines(new.body), lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        out.append((line[:1] if line[:1] in "+-@" else " ", line[1:]))
        if len(out) >= MAX_DIFF_LINES:
            out.append(("@", f"... (more than {MAX_DIFF_LINES} lines)"))
            break
    return out


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


async def _context(
    request: Request, services: Services, sandbox_name: str, kind: str, entity_id: str
) -> tuple[Visitor, Sandbox, list[Version], dict[str, Any]]:
    visitor, sandboxes, sandbox = await ui._sandbox_page(services, request, sandbox_name)
    if kind not in catalog.KINDS:
        raise ui._NotFound(visitor, sandboxes, "There is no such kind of entity.")
    async with services.db.read() as conn:
        versions = list(await Library(conn, sandbox).history([kind], entity_id))
    if not versions:
        raise ui._NotFound(visitor, sandboxes, f"No {kind} with id '{entity_id}' in this sandbox.")
    return visitor, sandbox, versions, ui._in_layout(visitor, sandboxes, sandbox)


@router.get("/sandbox/{sandbox_name}/history/{kind}/{entity_id:path}")
async def history_page(
    request: Request, services: ServicesDep, sandbox_name: str, kind: str, entity_id: str
) -> Response:
    visitor, sandbox, versions, layout = await _context(
        request, services, sandbox_name, kind, entity_id
    )
    by_number = {version.number: version for version in versions}
    # Compare `compare` (default: the newest) with `to` (default: the version before it).
    shown = by_number.get(_number(request.query_params.get("compare")) or -1, versions[0])
    index = versions.index(shown)
    earlier = versions[index + 1] if index + 1 < len(versions) else None
    base = by_number.get(_number(request.query_params.get("to")) or -1, earlier)
    latest = versions[0] if versions[0].action != "deleted" else None
    name = next((str(v.body.get("name", "")) for v in versions if v.body), "")
    path = f"{ui.ROOT}/sandbox/{quote(sandbox.name, safe='')}/history/{kind}/"
    path += quote(entity_id, safe="")
    return ui._page(
        request,
        "history.html",
        title=f"History of {name or entity_id}",
        section=_section(kind),
        kind=kind,
        entity_id=entity_id,
        name=name,
        versions=versions,
        shown=shown,
        base_version=base,
        diff=diff(base, shown),
        latest=latest,
        path=path,
        may_restore=visitor.user.role.allows(users.Role.EDITOR),
        **layout,
    )


@router.post("/sandbox/{sandbox_name}/history/{kind}/{entity_id:path}/restore")
async def restore(
    request: Request, services: ServicesDep, sandbox_name: str, kind: str, entity_id: str
) -> Response:
    """A new version whose body is an earlier version's, as the version the page showed."""
    visitor, sandbox, versions, layout = await _context(
        request, services, sandbox_name, kind, entity_id
    )
    await sessions.check_csrf(request, visitor.session)
    sessions.require(visitor.user, users.Role.EDITOR)
    form = await sessions.read_form(request)
    chosen = next((v for v in versions if v.number == _number(form.get("version"))), None)
    etag = form.get("etag", "")
    title = "History"

    def refused(status: int, message: str) -> Response:
        return ui._page(request, "message.html", status, title=title, message=message, **layout)

    if chosen is None or chosen.body is None or not etag.isdigit():
        return refused(400, "The form names no version to restore: reload the page.")
    if versions[0].action == "deleted":
        return refused(409, "This entity was deleted; a deleted entity cannot be restored here.")
    current_status = (versions[0].body or {}).get("status")
    if chosen.body.get("status") in SERVING and chosen.body.get("status") != current_status:
        # Restoring an approved (or live) version approves: an approver's action.
        sessions.require(visitor.user, users.Role.APPROVER)
    body = dict(chosen.body)
    actor = Actor(user=visitor.user.email, client_id=ui.ADMIN_UI_CLIENT)
    try:
        async with transaction(services.db, write=True) as conn:
            await Library(conn, sandbox).update(
                [kind], entity_id, lambda _: body, actor, f'"{etag}"'
            )
    except ApiProblem as problem:
        if problem.status == 412:
            return refused(
                412,
                "This entity changed since the page was loaded; nothing was restored. "
                "Reload the page and check the history again.",
            )
        details = "; ".join(
            f"{e.get('pointer', '')}: {e.get('detail', '')}" for e in problem.errors
        )
        return refused(problem.status, problem.detail + (f" ({details})" if details else ""))
    services.snapshots.invalidate(sandbox.pk)
    path = f"{ui.ROOT}/sandbox/{quote(sandbox.name, safe='')}/history/{kind}/"
    return RedirectResponse(path + quote(entity_id, safe=""), 303)


def _section(kind: str) -> str:
    """The navigation section an entity's kind belongs to."""
    return {
        "personalized-offer": "offers",
        "fallback-offer": "fallback-offers",
        "placement": "placements",
        "collection": "collections",
        "tag": "collections",
        "decision-rule": "decision-rules",
        "ranking-formula": "ranking-formulas",
        "decision": "decisions",
    }.get(kind, "offers")
