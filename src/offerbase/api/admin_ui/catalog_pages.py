"""The catalog's lists and editors, one list and one editor for every kind (kinds.py says what
differs), and the rule editor's PQL check and profile test.

One code path: a save calls what the Offer Library API's handlers call (api/library.py):
`Library.create`, or `Library.draft` then `Library.update` with the form's etag as If-Match,
inside `store_problems.transaction`, so validation, references, guardrails, history and etags
are the API's; its problems come back with field pointers, shown next to their controls.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from offerbase import catalog, pql
from offerbase.api.admin_ui import forms, sessions
from offerbase.api.admin_ui.kinds import PAGES, KindPage, pointer_value, sorts_of
from offerbase.api.admin_ui.lists import ListQuery, list_page
from offerbase.api.admin_ui.routes import (
    ADMIN_UI_CLIENT,
    ROOT,
    SECURITY_HEADERS,
    _in_layout,
    _NotFound,
    _page,
    _sandbox_page,
)
from offerbase.api.admin_ui.sessions import Refused, Visitor
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.paging import CursorSigner
from offerbase.api.problems import ApiProblem
from offerbase.api.store_problems import transaction
from offerbase.catalog.load import defined_on_params
from offerbase.catalog.schema import Obj
from offerbase.catalog.specs import SPECS
from offerbase.store import users
from offerbase.store.library import Actor, Entity, Library
from offerbase.store.profiles import Profiles
from offerbase.store.tenants import Sandbox

# An editor's form holds representations' HTML and criteria: the API's body limit bounds it.
EDITOR_FORM_FIELDS = 2000
MAX_CHOICES = 200  # entities offered in one reference menu (by name)
MAX_PQL_CHARS = 64 * 1024
# Images of a representation are previewed from where they are (a CDN): the editor's pages
# allow images from any https origin; scripts and frames stay this server's own.
EDITOR_HEADERS = {
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", "img-src 'self' data: https:"
    )
}

router = APIRouter(prefix=ROOT, include_in_schema=False)


def _base(sandbox: Sandbox, page: KindPage) -> str:
    return f"{ROOT}/sandbox/{quote(sandbox.name, safe='')}/{page.slug}"


def _actor(visitor: Visitor) -> Actor:
    return Actor(user=visitor.user.email, client_id=ADMIN_UI_CLIENT)


# -- lists ---------------------------------------------------------------------------------------


def _list_route(page: KindPage) -> Callable[..., Awaitable[Response]]:
    async def show_list(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        query = ListQuery.of(page, request.query_params)
        signer = CursorSigner(services.settings.resolved_secret_key, sandbox.pk)
        layout = _in_layout(visitor, sandboxes, sandbox)
        try:
            async with transaction(services.db, write=False) as conn:
                found, next_start, prev_start = await list_page(
                    Library(conn, sandbox), query, signer
                )
        except ApiProblem as problem:  # a cursor from elsewhere, a bad search pattern
            return _page(
                request,
                "message.html",
                problem.status,
                title=page.title,
                message=problem.detail,
                section=page.slug,
                **layout,
            )
        base = _base(sandbox, page)

        def href(start: str | None) -> str | None:
            return None if start is None else f"{base}?{urlencode(query.link(start))}"

        # htmx asks for the results only (the search box is not replaced while one types).
        template = "list_results.html" if request.headers.get("hx-request") else "list.html"
        return _page(
            request,
            template,
            title=page.title,
            section=page.slug,
            kind=page,
            query=query,
            page=found,
            sorts=sorts_of(page),
            value_at=pointer_value,
            next_href=href(next_start),
            prev_href=href(prev_start),
            base=base,
            back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            may_approve=page.slug == "offers" and visitor.user.role.allows(users.Role.APPROVER),
            may_create=visitor.user.role.allows(users.Role.EDITOR),
            **layout,
        )

    return show_list


# -- editors -------------------------------------------------------------------------------------


async def _choices(library: Library, spec: Obj) -> forms.Choices:
    """The menus of the references this kind's form has: each target's entities by name."""
    wanted = {
        target
        for pattern, target in forms.REFERENCES.items()
        if pattern.split("/")[1] in spec.fields
    }
    menus: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for target in sorted(wanted):
        several = len(target) > 1
        menus[target] = [
            (entity_id, name + (f" ({catalog.KINDS[kind].id_word})" if several else ""))
            for kind, entity_id, name in await library.names(target, MAX_CHOICES)
        ]
    return menus


def _previews(body: dict[str, Any], placements: dict[str, str]) -> list[dict[str, Any]]:
    """What the representations show: per component its type and content or image URL (the
    template puts HTML in a sandboxed iframe's srcdoc, escaped, never in the page)."""
    shown = []
    reps = body.get("representations")
    for index, rep in enumerate(reps if isinstance(reps, list) else []):
        components = rep.get("components") if isinstance(rep, dict) else None
        items = []
        for component in components if isinstance(components, list) else []:
            if not isinstance(component, dict):
                continue
            kind = catalog.enums.canonical(catalog.enums.COMPONENT_TYPE, str(component.get("type")))
            content = component.get("content")
            items.append(
                {
                    "type": kind,
                    "content": content if isinstance(content, str) else json.dumps(content),
                    "url": _image_url(component.get("deliveryURL")),
                }
            )
        placement = str(rep.get("placement", ""))
        shown.append(
            {"index": index + 1, "placement": placements.get(placement, placement), "items": items}
        )
    return shown


def _image_url(url: Any) -> str:
    """An image URL the preview may load: https only (the editor's CSP allows no other)."""
    return url if isinstance(url, str) and url.lower().startswith("https://") else ""


def _editor_context(page: KindPage, visitor: Visitor) -> dict[str, Any]:
    role = visitor.user.role
    return {
        "kind": page,
        "section": page.slug,
        "may_edit": role.allows(users.Role.EDITOR),
        "pql": {"decision-rule": "condition", "ranking-formula": "expression"}.get(page.kind),
    }


async def _render_editor(
    request: Request,
    services: Services,
    page: KindPage,
    visitor: Visitor,
    sandboxes: list[Sandbox],
    sandbox: Sandbox,
    body: dict[str, Any],
    entity: Entity | None,
    *,
    status: int = 200,
    errors: list[tuple[str, str]] | None = None,
    raw_text: dict[str, str] | None = None,
    message: str | None = None,
    chosen_id: str = "",
) -> Response:
    spec = SPECS[page.kind]
    async with transaction(services.db, write=False) as conn:
        menus = await _choices(Library(conn, sandbox), spec)
    form = forms.build(spec, body, menus, raw_text)
    general = forms.attach_errors(form, errors or [])
    title = entity.body.get("name", entity.id) if entity else f"New {page.singular}"
    return _page(
        request,
        "editor.html",
        status,
        EDITOR_HEADERS,
        title=str(title),
        form=form,
        entity=entity,
        general_errors=general,
        form_has_errors=bool(errors),
        message=message,
        previews=_previews(body, dict(menus.get(("placement",), []))),
        base=_base(sandbox, page),
        chosen_id=chosen_id,
        saved=request.query_params.get("saved") == "1",
        **_editor_context(page, visitor),
        **_in_layout(visitor, sandboxes, sandbox),
    )


def _check_status(page: KindPage, visitor: Visitor, old: dict[str, Any] | None, new: Any) -> None:
    """Editors create and change drafts; a status other than draft, before or after the change
    (approving an offer, putting a decision live), needs an approver."""
    if not page.statuses or visitor.user.role.allows(users.Role.APPROVER):
        return
    before = "draft" if old is None else str(old.get("status", "draft"))
    after = str(new.get("status", "draft")) if isinstance(new, dict) else "draft"
    if before != "draft" or after != "draft":
        raise Refused(
            f"Your role ({visitor.user.role.value}) may change drafts only; making or changing "
            f"a {page.singular} that is {after if after != 'draft' else before} needs approver."
        )


async def _read_editor_form(request: Request, services: Services) -> dict[str, list[str]]:
    await sessions.read_form(request, services.settings.max_body_bytes, EDITOR_FORM_FIELDS)
    return sessions.form_values(request)


def _body_of(page: KindPage, values: dict[str, list[str]]) -> forms.Parsed:
    parsed = forms.parse(SPECS[page.kind], values)
    defined_on = parsed.body.get("definedOn")
    if page.kind == "decision-rule" and _only_reference_paths(defined_on):
        # What the catalog derives from the condition when definedOn is absent: left out, so
        # a changed condition gets its own paths instead of the old condition's.
        del parsed.body["definedOn"]
    return parsed


def _only_reference_paths(defined_on: Any) -> bool:
    return (
        isinstance(defined_on, dict)
        and set(defined_on) == {"profile"}
        and isinstance(defined_on["profile"], dict)
        and set(defined_on["profile"]) == {"referencePaths"}
    )


def _problem_errors(problem: ApiProblem) -> list[tuple[str, str]]:
    named = [(e.get("pointer", ""), e.get("detail", "")) for e in problem.errors]
    return named or [("", problem.detail)]


def _editor_routes(page: KindPage) -> None:
    path = f"/sandbox/{{sandbox_name}}/{page.slug}"

    async def new_form(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        return await _render_editor(request, services, page, visitor, sandboxes, sandbox, {}, None)

    async def create(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        values = await _read_editor_form(request, services)
        await sessions.check_csrf(request, visitor.session)
        sessions.require(visitor.user, users.Role.EDITOR)
        parsed = _body_of(page, values)
        chosen = (values.get("id") or [""])[0].strip()
        try:
            _check_status(page, visitor, None, parsed.body)
        except Refused as refused:  # the form comes back as sent, with why
            return await _render_editor(
                request, services, page, visitor, sandboxes, sandbox, parsed.body, None,
                status=403, raw_text=parsed.raw_text, chosen_id=chosen, message=refused.message,
            )  # fmt: skip
        if parsed.errors:
            return await _render_editor(
                request, services, page, visitor, sandboxes, sandbox, parsed.body, None,
                status=422, errors=parsed.errors, raw_text=parsed.raw_text, chosen_id=chosen,
            )  # fmt: skip
        try:
            async with transaction(services.db, write=True) as conn:
                entity = await Library(conn, sandbox).create(
                    page.kind, parsed.body, _actor(visitor), chosen or None
                )
        except ApiProblem as problem:
            return await _render_editor(
                request, services, page, visitor, sandboxes, sandbox, parsed.body, None,
                status=problem.status, errors=_problem_errors(problem), raw_text=parsed.raw_text,
                chosen_id=chosen,
            )  # fmt: skip
        services.snapshots.invalidate(sandbox.pk)  # this worker's next decision sees it
        return RedirectResponse(f"{_base(sandbox, page)}/edit/{quote(entity.id)}?saved=1", 303)

    async def edit_form(
        request: Request, services: ServicesDep, sandbox_name: str, entity_id: str
    ) -> Response:
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        entity = await _entity(services, page, visitor, sandboxes, sandbox, entity_id)
        return await _render_editor(
            request, services, page, visitor, sandboxes, sandbox, entity.body, entity
        )

    async def save(
        request: Request, services: ServicesDep, sandbox_name: str, entity_id: str
    ) -> Response:
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        values = await _read_editor_form(request, services)
        await sessions.check_csrf(request, visitor.session)
        sessions.require(visitor.user, users.Role.EDITOR)
        entity = await _entity(services, page, visitor, sandboxes, sandbox, entity_id)
        parsed = _body_of(page, values)
        etag = (values.get("etag") or [""])[0]

        async def again(
            status: int, errors: list[tuple[str, str]], message: str | None = None
        ) -> Response:
            return await _render_editor(
                request, services, page, visitor, sandboxes, sandbox, parsed.body, entity,
                status=status, errors=errors, raw_text=parsed.raw_text, message=message,
            )  # fmt: skip

        if not etag.isdigit():
            return await again(400, [], "The form names no version of this entity: reload it.")
        if parsed.errors:
            return await again(422, parsed.errors)

        def transform(old: dict[str, Any]) -> object:
            _check_status(page, visitor, old, parsed.body)
            return parsed.body

        library_kinds, if_match = page.kinds, f'"{etag}"'
        try:  # as the API's PUT (api/library.py CollectionRoutes._update)
            async with transaction(services.db, write=False) as conn:
                draft = await Library(conn, sandbox).draft(
                    library_kinds, entity_id, transform, if_match
                )
            async with transaction(services.db, write=True) as conn:
                saved = await Library(conn, sandbox).update(
                    library_kinds, entity_id, transform, _actor(visitor), if_match, draft
                )
        except ApiProblem as problem:
            if problem.status == 412:
                return await again(
                    412,
                    [],
                    "Someone changed this entity since you opened it (its version is no longer "
                    f"{etag}); nothing was saved. Reload the page to see their change, then "
                    "make yours again.",
                )
            return await again(problem.status, _problem_errors(problem))
        except Refused as refused:  # _check_status, from the transform
            return await again(403, [], refused.message)
        services.snapshots.invalidate(sandbox.pk)
        return RedirectResponse(f"{_base(sandbox, page)}/edit/{quote(saved.id)}?saved=1", 303)

    add = router.add_api_route
    add(f"{path}/new", new_form, methods=["GET"])
    add(f"{path}/new", create, methods=["POST"])
    add(f"{path}/edit/{{entity_id:path}}", edit_form, methods=["GET"])
    add(f"{path}/edit/{{entity_id:path}}", save, methods=["POST"])


async def _entity(
    services: Services,
    page: KindPage,
    visitor: Visitor,
    sandboxes: list[Sandbox],
    sandbox: Sandbox,
    entity_id: str,
) -> Entity:
    try:
        async with transaction(services.db, write=False) as conn:
            return await Library(conn, sandbox).get(page.kinds, entity_id)
    except ApiProblem as problem:
        raise _NotFound(visitor, sandboxes, f"There is no {page.singular} '{entity_id}'.") from (
            problem
        )


# -- the rule editor's PQL check and profile test ------------------------------------------------


def _pql_of(page: KindPage, form: dict[str, list[str]]) -> tuple[str, list[str]]:
    member = "condition" if page.kind == "decision-rule" else "expression"
    source = (form.get(f"/{member}/value") or [""])[0][:MAX_PQL_CHARS]
    params: list[str] = []
    defined_on = (form.get("/definedOn") or [""])[0].strip()
    if defined_on:
        try:
            params = [name for name, _ in defined_on_params(json.loads(defined_on))]
        except (ValueError, TypeError, AttributeError):
            params = []
    return source, params


def _pql_routes(page: KindPage, mode: pql.Kind) -> None:
    path = f"/sandbox/{{sandbox_name}}/{page.slug}"

    async def check(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
        """As the catalog checks it (catalog/validate.py): the error's line and column."""
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        values = await _read_editor_form(request, services)
        await sessions.check_csrf(request, visitor.session)
        source, params = _pql_of(page, values)
        error = None
        if source.strip():
            try:
                pql.compile(source, mode, params=params)
            except pql.PqlError as exc:
                error = exc
        return _page(
            request, "pql_check.html", source=source, error=error, **_in_layout(visitor, [], None)
        )

    async def test(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
        """The rule as typed, evaluated against a stored profile of this sandbox."""
        visitor, sandboxes, sandbox = await _sandbox_page(services, request, sandbox_name)
        values = await _read_editor_form(request, services)
        await sessions.check_csrf(request, visitor.session)
        source, params = _pql_of(page, values)
        namespace = (values.get("test-namespace") or [""])[0].strip()[:255]
        identity = (values.get("test-identity") or [""])[0].strip()[:1024]
        async with transaction(services.db, write=False) as conn:
            profile = await Profiles(conn, sandbox).get(namespace, identity) if identity else None
        outcome: str
        if profile is None:
            outcome = f"This sandbox has no profile with the identity {namespace}:{identity}."
        else:
            try:
                value = pql.compile(source, mode, params=params).evaluate(profile)
                outcome = f"The {page.singular} gives {json.dumps(value)} for this profile."
                if mode == "rule":
                    verdict = "qualifies" if value is True else "does not qualify"
                    outcome = f"The profile {verdict} (the rule gives {json.dumps(value)})."
            except pql.PqlError as exc:
                outcome = (
                    f"The rule cannot run: {exc.message} (line {exc.line}, column {exc.column})."
                )
        return _page(request, "rule_test.html", outcome=outcome, **_in_layout(visitor, [], None))

    router.add_api_route(f"{path}/check-pql", check, methods=["POST"])
    router.add_api_route(f"{path}/test", test, methods=["POST"])


for _page_of in PAGES.values():
    router.add_api_route(
        f"/sandbox/{{sandbox_name}}/{_page_of.slug}", _list_route(_page_of), methods=["GET"]
    )
    _editor_routes(_page_of)
_pql_routes(PAGES["decision-rules"], "rule")
_pql_routes(PAGES["ranking-formulas"], "formula")
