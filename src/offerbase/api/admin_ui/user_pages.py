"""The Users page (admins only): the organization's users, a "New user" form, a role change
and a delete per user, through the store functions `offerbase users create|list|set-role|
delete` call (store/users.py: the same checks, the same scrypt hash).

Users belong to the organization, not to the sandbox in the address (which only places the page
in the layout). An admin limited to some sandboxes sees and manages only the users whose
sandboxes it may use itself, and grants only those (`User.reaches`): no admin can give anyone,
itself included, more than it has. No admin changes its own role or deletes itself: another
admin can, so an organization is never left without one by a slip.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from offerbase.api.admin_ui import sessions
from offerbase.api.admin_ui.routes import ROOT, _admin_page, _form_text, _in_layout, _page
from offerbase.api.admin_ui.sessions import Visitor
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.store_problems import transaction
from offerbase.store import users
from offerbase.store.errors import InvalidFields
from offerbase.store.tenants import Sandbox

router = APIRouter(prefix=ROOT, include_in_schema=False)
EVERY_SANDBOX = "*"  # the "every sandbox, later ones included" box of the form
Errors = dict[str, list[str]]


def _base(sandbox: Sandbox) -> str:
    return f"{ROOT}/sandbox/{quote(sandbox.name, safe='')}/users"


def _field(pointer: str) -> str:
    return pointer.strip("/").split("/")[0] or "email"


def _problem_errors(problem: ApiProblem, default: str) -> Errors:
    errors: Errors = {}
    for error in problem.errors or [{"pointer": f"/{default}", "detail": problem.detail}]:
        errors.setdefault(_field(error.get("pointer", "")), []).append(error.get("detail", ""))
    return errors


async def _users_page(
    request: Request,
    services: Services,
    visitor: Visitor,
    sandboxes: list[Sandbox],
    sandbox: Sandbox,
    status: int = 200,
    *,
    errors: Errors | None = None,
    form: dict[str, Any] | None = None,
    notice: str | None = None,
) -> Response:
    me = visitor.user
    async with transaction(services.db, write=False) as conn:
        found = await users.list_users(conn, me.org_id)
    return _page(
        request,
        "users.html",
        status,
        title="Users",
        section="users",
        people=[person for person in found if me.reaches(person.sandboxes)],
        roles=[role.value for role in users.Role],
        may_grant_every=me.sandboxes is None,
        every=EVERY_SANDBOX,
        base=_base(sandbox),
        errors=errors or {},
        form=form or {},
        notice=notice,
        **_in_layout(visitor, sandboxes, sandbox),
    )


@router.get("/sandbox/{sandbox_name}/users")
async def users_list(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=False)
    return await _users_page(request, services, visitor, sandboxes, sandbox)


def _chosen_sandboxes(
    me: users.User, sandboxes: list[Sandbox], chosen: list[str], errors: Errors
) -> list[str] | None:
    """The sandboxes the form grants (None: every one), adding what is wrong to `errors`."""
    if EVERY_SANDBOX in chosen:
        if me.sandboxes is not None:
            message = "You may not grant every sandbox: your own user is limited to some."
            errors.setdefault("sandboxes", []).append(message)
        return None
    names = sorted(set(chosen))
    yours = {sandbox.name for sandbox in sandboxes}
    unknown = [name for name in names if name not in yours]
    if unknown:
        message = f"You have no sandbox named '{unknown[0][:80]}'."
        errors.setdefault("sandboxes", []).append(message)
    elif not names:
        errors.setdefault("sandboxes", []).append("Choose a sandbox, or every sandbox.")
    return names


@router.post("/sandbox/{sandbox_name}/users/new")
async def create_user(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    """Checks everything before hashing (the hash costs ~0.4 s of a core), then creates."""
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=True)
    form = await sessions.read_form(request)
    email, role = _form_text(form, "email"), _form_text(form, "role")
    password, again = _form_text(form, "password"), _form_text(form, "password_again")
    chosen = [name[:255] for name in sessions.form_values(request).get("sandboxes", [])]
    errors: Errors = {}
    granted = _chosen_sandboxes(visitor.user, sandboxes, chosen, errors)
    try:
        users.check_user(email, role, granted or None)
    except InvalidFields as exc:
        for error in exc.errors:
            errors.setdefault(_field(error.pointer), []).append(error.message)
    problem = users.password_problem(password)
    if problem is not None:
        errors.setdefault("password", []).append(problem)
    elif password != again:
        errors.setdefault("password_again", []).append("The two passwords differ.")
    shown = {"email": email, "role": role, "sandboxes": chosen}  # never a password
    status = 422
    if not errors:
        password_hash = await services.sign_ins.hash(password)  # in a thread, one at a time
        try:
            async with transaction(services.db, write=True) as conn:
                await users.create_user(
                    conn,
                    visitor.user.org_id,
                    email,
                    role,
                    granted,
                    password_hash,
                    now=services.clock(),
                )
        except ApiProblem as exc:
            errors, status = _problem_errors(exc, "email"), exc.status
    if errors:
        return await _users_page(
            request, services, visitor, sandboxes, sandbox, status, errors=errors, form=shown
        )
    return RedirectResponse(_base(sandbox), 303)


async def _target(
    request: Request, services: Services, sandbox_name: str, verb: str
) -> tuple[Visitor, list[Sandbox], Sandbox, users.User | Response]:
    """The admin, and the user of its organization the form names (one it reaches, not
    itself), or the page that refuses."""
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=True)
    email = _form_text(await sessions.read_form(request), "email")
    async with transaction(services.db, write=False) as conn:
        target = await users.get_user(conn, visitor.user.org_id, email)
    if target is None or not visitor.user.reaches(target.sandboxes):
        refusal: Response = _page(
            request,
            "message.html",
            404,
            title="Users",
            message=f"Your organization has no user '{email[:80]}'.",
            **_in_layout(visitor, sandboxes, sandbox),
        )
        return visitor, sandboxes, sandbox, refusal
    if target.id == visitor.user.id:
        notice = f"You cannot {verb} your own user; another admin can."
        refusal = await _users_page(
            request, services, visitor, sandboxes, sandbox, 409, notice=notice
        )
        return visitor, sandboxes, sandbox, refusal
    return visitor, sandboxes, sandbox, target


@router.post("/sandbox/{sandbox_name}/users/role")
async def change_role(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, sandboxes, sandbox, target = await _target(
        request, services, sandbox_name, "change the role of"
    )
    if isinstance(target, Response):
        return target
    role = _form_text(await sessions.read_form(request), "role")
    try:
        async with transaction(services.db, write=True) as conn:
            await users.set_role(conn, visitor.user.org_id, target.email, role)
    except ApiProblem as exc:
        return await _users_page(
            request, services, visitor, sandboxes, sandbox, 422, notice=exc.detail
        )
    return RedirectResponse(_base(sandbox), 303)


@router.post("/sandbox/{sandbox_name}/users/delete")
async def delete_user(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, _sandboxes, sandbox, target = await _target(request, services, sandbox_name, "delete")
    if isinstance(target, Response):
        return target
    async with transaction(services.db, write=True) as conn:
        await users.delete_user(conn, visitor.user.org_id, target.email)  # and its sessions
    return RedirectResponse(_base(sandbox), 303)
