"""The Credentials page (admins only): the organization's API credentials, a "New credential"
form, and Revoke and Rotate per credential, through the store functions `offerbase credentials
create|list|revoke|rotate` and `/admin/credentials` call (store/tenants.py).

No page shows a secret hash. A new secret (a creation, a rotation) is shown once, on the answer
to the form's POST (`Cache-Control: no-store`, as every page): it is not stored anywhere it
could be shown again. Revocations and rotations end the credential's tokens on every worker
within a second (api/credential_cache.py), as the CLI's do.

Credentials belong to the organization; an admin limited to some sandboxes sees and manages
only the credentials limited to one of them, and creates only those (no org-wide or admin
credential): rotating an org-wide credential would hand it every sandbox.
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
from offerbase.store import tenants, users
from offerbase.store.tenants import Credential, NewCredential, Sandbox

router = APIRouter(prefix=ROOT, include_in_schema=False)
EVERY_SANDBOX = "*"  # the form's "every sandbox of the organization" choice
Errors = dict[str, list[str]]


def _base(sandbox: Sandbox) -> str:
    return f"{ROOT}/sandbox/{quote(sandbox.name, safe='')}/credentials"


def _reaches(user: users.User, credential: Credential) -> bool:
    return user.reaches(None if credential.sandbox is None else (credential.sandbox,))


async def _credentials_page(
    request: Request,
    services: Services,
    visitor: Visitor,
    sandboxes: list[Sandbox],
    sandbox: Sandbox,
    status: int = 200,
    *,
    errors: Errors | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    me = visitor.user
    async with transaction(services.db, write=False) as conn:
        found = await tenants.list_credentials(conn, me.org_id)
    return _page(
        request,
        "credentials.html",
        status,
        title="Credentials",
        section="credentials",
        items=[credential for credential in found if _reaches(me, credential)],
        org_wide=me.sandboxes is None,
        every=EVERY_SANDBOX,
        base=_base(sandbox),
        errors=errors or {},
        form=form or {"sandbox": sandbox.name},
        **_in_layout(visitor, sandboxes, sandbox),
    )


def _secret_page(
    request: Request,
    visitor: Visitor,
    sandboxes: list[Sandbox],
    sandbox: Sandbox,
    new: NewCredential,
    title: str,
) -> Response:
    """The new secret, this once; the page is never cached (no-store) and never stored."""
    return _page(
        request,
        "credential_secret.html",
        title=title,
        section="credentials",
        new=new,
        base=_base(sandbox),
        **_in_layout(visitor, sandboxes, sandbox),
    )


@router.get("/sandbox/{sandbox_name}/credentials")
async def credentials_list(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=False)
    return await _credentials_page(request, services, visitor, sandboxes, sandbox)


@router.post("/sandbox/{sandbox_name}/credentials/new")
async def create_credential(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=True)
    me = visitor.user
    form = await sessions.read_form(request)
    name, chosen = _form_text(form, "name"), _form_text(form, "sandbox")
    admin = form.get("admin") == "yes"
    shown = {"name": name, "sandbox": chosen, "admin": admin}
    errors: Errors = {}
    yours = {known.name for known in sandboxes}
    if (admin or chosen == EVERY_SANDBOX) and me.sandboxes is not None:
        message = "Your user is limited to some sandboxes: choose one of them, not every one."
        errors["admin" if admin else "sandbox"] = [message]
    elif not chosen:
        errors["sandbox"] = ["Choose a sandbox, or every sandbox."]
    elif chosen != EVERY_SANDBOX and chosen not in yours:
        errors["sandbox"] = [f"You have no sandbox named '{chosen[:80]}'."]
    created = None
    if not errors:
        try:
            async with transaction(services.db, write=True) as conn:
                created = await tenants.create_credential(
                    conn,
                    me.org_id,
                    sandbox.name if chosen == EVERY_SANDBOX else chosen,
                    name,
                    all_sandboxes=chosen == EVERY_SANDBOX,
                    admin=admin,
                )
        except ApiProblem as exc:
            for error in exc.errors or [{"pointer": "/name", "detail": exc.detail}]:
                field = error.get("pointer", "").strip("/") or "name"
                errors.setdefault(field, []).append(error.get("detail", ""))
    if created is None:
        return await _credentials_page(
            request, services, visitor, sandboxes, sandbox, 422, errors=errors, form=shown
        )
    services.credentials.invalidate()
    return _secret_page(request, visitor, sandboxes, sandbox, created, "New credential")


async def _target(
    request: Request, services: Services, sandbox_name: str, client_id: str
) -> tuple[Visitor, list[Sandbox], Sandbox, Response | None]:
    """The admin, and a refusal unless its organization has the credential and it reaches it."""
    visitor, sandboxes, sandbox = await _admin_page(services, request, sandbox_name, changes=True)
    async with transaction(services.db, write=False) as conn:
        found = await tenants.get_credential(conn, client_id, visitor.user.org_id)
    if found is not None and _reaches(visitor.user, found):
        return visitor, sandboxes, sandbox, None
    refusal = _page(
        request,
        "message.html",
        404,
        title="Credentials",
        message=f"Your organization has no credential '{client_id[:80]}'.",
        **_in_layout(visitor, sandboxes, sandbox),
    )
    return visitor, sandboxes, sandbox, refusal


@router.post("/sandbox/{sandbox_name}/credentials/{client_id}/revoke")
async def revoke_credential(
    request: Request, services: ServicesDep, sandbox_name: str, client_id: str
) -> Response:
    visitor, _sandboxes, sandbox, refusal = await _target(
        request, services, sandbox_name, client_id
    )
    if refusal is not None:
        return refusal
    async with transaction(services.db, write=True) as conn:
        await tenants.revoke_credential(conn, client_id, visitor.user.org_id)
    services.credentials.invalidate()
    return RedirectResponse(_base(sandbox), 303)


@router.post("/sandbox/{sandbox_name}/credentials/{client_id}/rotate")
async def rotate_credential(
    request: Request, services: ServicesDep, sandbox_name: str, client_id: str
) -> Response:
    visitor, sandboxes, sandbox, refusal = await _target(request, services, sandbox_name, client_id)
    if refusal is not None:
        return refusal
    try:
        async with transaction(services.db, write=True) as conn:
            rotated = await tenants.rotate_credential(conn, client_id, visitor.user.org_id)
    except tenants.CredentialRevoked:
        rotated = None
    if rotated is None:  # found above, so revoked (credentials are never deleted)
        return _page(
            request,
            "message.html",
            409,
            title="Credentials",
            message=f"Credential '{client_id}' is revoked; create a new one.",
            **_in_layout(visitor, sandboxes, sandbox),
        )
    services.credentials.invalidate()
    return _secret_page(request, visitor, sandboxes, sandbox, rotated, "Rotated credential")
