"""The admin UI's pages under /admin, and `install(app)`.

Every page but sign-in needs a session (sessions.py); every page in a sandbox resolves it within
the user's organization and among the sandboxes the user may use, so another organization's
sandbox (or one the user may not use) is "not found", whatever its name. Data comes from the
store's repositories, as the API's does: no SQL here (tests/store/test_tenancy.py checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from offerbase.api.admin_ui import offers, sessions
from offerbase.api.admin_ui.sessions import Refused, SignInRequired, Visitor
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.store_problems import transaction
from offerbase.store import tenants, users
from offerbase.store.library import Actor, Library
from offerbase.store.tenants import Sandbox

ROOT = "/admin"
HERE = Path(__file__).parent
MAX_FORM_FIELD_CHARS = 2048
# Who wrote, in an entity's history, when a change came through the UI (with the user's email).
ADMIN_UI_CLIENT = "admin-ui"  # email (320) and password (1024) fit
# The navigation, in order: (slug, link text). Pages not built yet answer the "not built yet"
# page (docs/admin-ui.md).
SECTIONS = [
    ("offers", "Offers"),
    ("fallback-offers", "Fallback offers"),
    ("placements", "Placements"),
    ("collections", "Collections"),
    ("collection-qualifiers", "Collection qualifiers"),
    ("decision-rules", "Decision rules"),
    ("ranking-formulas", "Ranking formulas"),
    ("ranking-strategies", "Ranking strategies"),
    ("decisions", "Decisions"),
    ("simulation", "Simulation"),
    ("reports", "Reports"),
    ("profiles", "Profiles"),
    ("datastreams", "Datastreams"),
    ("users", "Users"),
    ("credentials", "Credentials"),
]
# Sections only admins may open (403 for others), linked for admins only. Users and API
# credentials belong to the organization, not to the sandbox in the address.
ADMIN_SECTIONS = {"users", "credentials"}
# The catalog's lists and editors (catalog_pages.py), profiles and datastreams (records.py).
BUILT = {
    "offers",
    "fallback-offers",
    "placements",
    "collections",
    "collection-qualifiers",
    "decision-rules",
    "ranking-formulas",
    "ranking-strategies",
    "decisions",
    "profiles",
    "datastreams",
    # simulation.py and reports.py
    "simulation",
    "reports",
    # user_pages.py and credential_pages.py
    "users",
    "credentials",
}
# Scripts and styles from this server only, no inline script, no framing: a stored value that
# escaped escaping still could not run (autoescape is the defence; this is the second line).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    # Every template is HTML: every value is escaped unless a template says otherwise (none do).
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)

# One path segment: an id may hold any character, `/` included (Jinja's urlencode keeps `/`).
templates.filters["segment"] = lambda value: quote(str(value), safe="")

router = APIRouter(prefix=ROOT, include_in_schema=False)


def _page(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        request=request, sections=SECTIONS, admin_sections=ADMIN_SECTIONS, **context
    )
    return HTMLResponse(html, status, headers={**SECURITY_HEADERS, **(headers or {})})


async def _visitor(services: Services, request: Request) -> Visitor:
    found = await sessions.visitor(services, request)
    if found is None:
        raise SignInRequired
    return found


async def _sandboxes_of(services: Services, user: users.User) -> list[Sandbox]:
    async with services.db.read() as conn:
        found = await tenants.list_sandboxes(conn, user.org_id)
    return [sandbox for sandbox in found if user.may_use(sandbox.name)]


def _in_layout(
    visitor: Visitor, sandboxes: list[Sandbox], current: Sandbox | None
) -> dict[str, Any]:
    return {
        "user": visitor.user,
        "csrf": visitor.session.csrf_token,
        "sandboxes": sandboxes,
        "current": current,
    }


async def _sandbox_page(
    services: Services, request: Request, name: str
) -> tuple[Visitor, list[Sandbox], Sandbox]:
    """The visitor and the sandbox NAME of its organization, when the user may use it."""
    visitor = await _visitor(services, request)
    sandboxes = await _sandboxes_of(services, visitor.user)
    for sandbox in sandboxes:
        if sandbox.name == name:
            return visitor, sandboxes, sandbox
    raise _NotFound(visitor, sandboxes, f"You have no sandbox named '{name}'.")


async def _admin_page(
    services: Services, request: Request, name: str, *, changes: bool
) -> tuple[Visitor, list[Sandbox], Sandbox]:
    """As `_sandbox_page`, for an admin's page (403 for other roles); a request that `changes`
    state must also carry the session's CSRF token."""
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, name)
    if changes:
        await sessions.check_csrf(request, visitor.session)
    sessions.require(visitor.user, users.Role.ADMIN)
    return visitor, sandboxes, sandbox


class _NotFound(Exception):
    def __init__(self, visitor: Visitor, sandboxes: list[Sandbox], message: str) -> None:
        super().__init__(message)
        self.visitor = visitor
        self.sandboxes = sandboxes
        self.message = message


def _form_text(form: dict[str, str], name: str) -> str:
    return form.get(name, "")[:MAX_FORM_FIELD_CHARS]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# -- sign-in and sign-out ------------------------------------------------------------------------


@router.get("")
async def home(request: Request, services: ServicesDep) -> Response:
    visitor = await _visitor(services, request)
    sandboxes = await _sandboxes_of(services, visitor.user)
    if not sandboxes:
        return _page(
            request,
            "message.html",
            title="No sandbox",
            message="Your user may use no sandbox that exists: ask an admin.",
            **_in_layout(visitor, sandboxes, None),
        )
    return RedirectResponse(f"{ROOT}/sandbox/{quote(sandboxes[0].name, safe='')}/offers", 303)


@router.get("/sign-in")
async def sign_in_page(request: Request, services: ServicesDep) -> Response:
    if await sessions.visitor(services, request) is not None:
        return RedirectResponse(ROOT, 303)
    return _page(request, "sign_in.html", title="Sign in", email="", error=None)


@router.post("/sign-in")
async def sign_in(request: Request, services: ServicesDep) -> Response:
    sessions.check_origin(request)
    form = await sessions.read_form(request)
    email, password = _form_text(form, "email"), _form_text(form, "password")
    throttle = services.sign_ins.throttle
    key, address = users.normal_email(email), _address(request)
    wait = await throttle.retry_after(key, address)
    if wait is not None:
        message = f"Too many failed sign-ins: try again in {wait} seconds."
        return _page(
            request,
            "sign_in.html",
            429,
            {"Retry-After": str(wait)},
            title="Sign in",
            email=email,
            error=message,
        )
    user = await services.sign_ins.check(services.db, email, password)
    if user is None:
        await throttle.failed(key, address)
        return _page(
            request,
            "sign_in.html",
            401,
            title="Sign in",
            email=email,
            error="The email or the password is wrong.",
        )
    async with services.db.write() as conn:
        token, _ = await users.start_session(
            conn, user, now=services.clock(), lifetime=sessions.lifetime(services)
        )
    response = RedirectResponse(ROOT, 303)
    sessions.set_cookie(services, request, response, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, services: ServicesDep) -> Response:
    visitor = await sessions.visitor(services, request)
    response = RedirectResponse(f"{ROOT}/sign-in", 303)
    if visitor is not None:
        await sessions.check_csrf(request, visitor.session)
        async with services.db.write() as conn:
            await users.end_session(conn, visitor.token)
    sessions.clear_cookie(request, response)
    return response


@router.get("/switch")
async def switch_sandbox(request: Request, services: ServicesDep) -> Response:
    """The sandbox switcher's target (a GET form: switching changes nothing stored)."""
    await _visitor(services, request)
    name = request.query_params.get("sandbox", "")[:255]
    section = request.query_params.get("section", "offers")
    slug = section if section in dict(SECTIONS) else "offers"
    return RedirectResponse(f"{ROOT}/sandbox/{quote(name, safe='')}/{slug}", 303)


# -- pages in a sandbox --------------------------------------------------------------------------


@router.post("/sandbox/{sandbox_name}/offers/{offer_id}/approve")
async def approve_offer(
    request: Request, services: ServicesDep, sandbox_name: str, offer_id: str
) -> Response:
    """Approve a draft offer: an approver's action, through the same update as the API's
    (validation, references, guardrails, etag), as the version the page showed (`etag`)."""
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    await sessions.check_csrf(request, visitor.session)
    sessions.require(visitor.user, users.Role.APPROVER)
    form = await sessions.read_form(request)
    etag, back = _form_text(form, "etag"), _form_text(form, "back")
    base = f"{ROOT}/sandbox/{quote(sandbox.name, safe='')}/offers"
    layout = _in_layout(visitor, sandboxes, sandbox)
    if not etag.isdigit():
        return _page(
            request,
            "message.html",
            400,
            title="Offers",
            message="The form names no version of the offer: reload the page.",
            **layout,
        )
    actor = Actor(user=visitor.user.email, client_id=ADMIN_UI_CLIENT)
    try:
        async with transaction(services.db, write=True) as conn:
            await Library(conn, sandbox).update(
                offers.KINDS, offer_id, offers.approved, actor, f'"{etag}"'
            )
    except ApiProblem as problem:
        message = (
            "This offer changed since the page was loaded; reload the page and check it again."
            if problem.status == 412
            else problem.detail
        )
        return _page(
            request, "message.html", problem.status, title="Offers", message=message, **layout
        )
    services.snapshots.invalidate(sandbox.pk)  # this worker's next decision sees it
    # Back to the list as it was; only a path of this list, never another site.
    target = back if back == base or back.startswith(f"{base}?") else base
    return RedirectResponse(target, 303)


@router.get("/sandbox/{sandbox_name}/{section}")
async def not_built(
    request: Request, services: ServicesDep, sandbox_name: str, section: str
) -> Response:
    visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
    names = dict(SECTIONS)
    if section not in names or section in BUILT:
        raise _NotFound(visitor, sandboxes, "There is no such page.")
    return _page(
        request,
        "not_built.html",
        title=names[section],
        section=section,
        **_in_layout(visitor, sandboxes, sandbox),
    )


# -- install -------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """The pages, the vendored static files, and the UI's answers to its own exceptions."""
    # Imported here: these pages build on this module's helpers. Their routes are explicit paths,
    # so they come first, before this module's catch-all "not built yet" page.
    from offerbase.api.admin_ui import (
        catalog_pages,
        credential_pages,
        history,
        records,
        reports,
        simulation,
        user_pages,
    )

    every = (catalog_pages, records, simulation, history, reports, user_pages, credential_pages)
    for pages in every:
        app.include_router(pages.router)
    app.include_router(router)
    app.mount(f"{ROOT}/static", StaticFiles(directory=HERE / "static"), name="admin-static")

    @app.exception_handler(SignInRequired)
    async def on_sign_in_required(request: Request, _exc: SignInRequired) -> Response:
        target = f"{ROOT}/sign-in"
        if request.headers.get("hx-request"):  # htmx: load the sign-in page, not a fragment
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, 303)

    @app.exception_handler(sessions.FormTooLarge)
    async def on_too_large(request: Request, _exc: sessions.FormTooLarge) -> Response:
        message = f"The form is larger than {sessions.MAX_FORM_BYTES} bytes; it was not read."
        return _page(request, "message.html", 413, title="Too large", message=message)

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> Response:
        return _page(request, "message.html", 403, title="Refused", message=exc.message)

    @app.exception_handler(_NotFound)
    async def on_not_found(request: Request, exc: _NotFound) -> Response:
        return _page(
            request,
            "message.html",
            404,
            title="Not found",
            message=exc.message,
            **_in_layout(exc.visitor, exc.sandboxes, None),
        )
