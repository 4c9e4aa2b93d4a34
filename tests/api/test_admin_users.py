"""The admin UI's Users and Credentials pages through HTTP, as a browser sends their forms: what
an admin does on each, the 403 of every other role on every page and form, the CSRF token on
every form, errors next to their fields, escaping, and tenancy: an admin reaches nothing of
another organization through any of these forms (the credentials' own secrets and revocation:
tests/api/test_admin_credentials.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from test_admin_ui import add_user, browser, csrf_of, sign_in, text_of

from admin_evil import EVIL
from conftest import Tenant, make_tenant
from offerbase.api.deps import services_of
from offerbase.store import tenants, users

USERS = "/admin/sandbox/prod/users"
CREDENTIALS = "/admin/sandbox/prod/credentials"
NEW_PASSWORD = "a new user's long passphrase"


@asynccontextmanager
async def signed_in(
    app: Any, org: str, role: str, sandboxes: list[str] | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    email = await add_user(app, org, role, sandboxes)
    async with browser(app) as http:
        assert (await sign_in(http, email)).status_code == 303
        yield http, email


@pytest.fixture
async def admin(app: Any, tenant: Tenant) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with signed_in(app, tenant.org, "admin") as signed:
        yield signed


async def stored_user(app: Any, org: str, email: str) -> users.User | None:
    async with services_of(app).db.read() as conn:
        return await users.get_user(conn, org, email)


def new_user_form(csrf: str, email: str, **changes: Any) -> dict[str, Any]:
    form = {
        "csrf": csrf,
        "email": email,
        "role": "editor",
        "sandboxes": ["prod"],
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    return {**form, **changes}


def error_of(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="user-{field}-error">([^<]*)</p>', html)
    assert found, f"no error next to {field}"
    return found.group(1)


# -- what an admin does ------------------------------------------------------------------------


async def test_an_admin_creates_a_user_who_signs_in_then_changes_its_role_and_deletes_it(
    app: Any, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, admin_email = admin
    page = await http.get(USERS)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<a href="/admin/sandbox/prod/users" aria-current="page">Users</a>' in page.text
    assert '<a href="/admin/sandbox/prod/credentials">Credentials</a>' in page.text
    for field, label in [
        ("user-email", "Email (the sign-in name)"),
        ("user-role", "Role"),
        ("user-password", "Password (at least 12 characters)"),
        ("user-password-again", "Password again"),
    ]:
        assert f'<label for="{field}">{label}</label>' in page.text
    assert "<legend>Sandboxes the user may use</legend>" in page.text
    assert '<button type="submit">New user</button>' in page.text
    assert f"{admin_email} (you)" in page.text

    email = f"New.{uuid.uuid4().hex[:8]}@Example.com"
    created = await http.post(f"{USERS}/new", data=new_user_form(csrf_of(page.text), email))
    assert created.status_code == 303, created.text
    assert created.headers["location"] == USERS
    stored = await stored_user(app, tenant.org, email)
    assert stored is not None
    assert (stored.email, stored.role, stored.sandboxes) == (email.lower(), "editor", ("prod",))
    async with services_of(app).db.read() as conn:
        found = await users.find_for_sign_in(conn, email)
    assert found is not None
    assert found[1].startswith("scrypt$65536$8$1$")  # the CLI's hash, not the password
    assert NEW_PASSWORD not in found[1]
    listed = text_of((await http.get(USERS)).text)
    assert f"{email.lower()} Role" in listed
    assert "prod" in listed

    async with browser(app) as newcomer:  # the password typed in the form is the one
        assert (await sign_in(newcomer, email, NEW_PASSWORD)).status_code == 303
        assert "(editor," in (await newcomer.get("/admin/sandbox/prod/offers")).text
        assert (await newcomer.get("/admin/sandbox/dev/offers")).status_code == 404

        csrf = csrf_of(page.text)
        changed = await http.post(
            f"{USERS}/role", data={"csrf": csrf, "email": email, "role": "approver"}
        )
        assert changed.status_code == 303
        assert (await stored_user(app, tenant.org, email)).role == "approver"  # type: ignore[union-attr]
        assert "(approver," in (await newcomer.get("/admin/sandbox/prod/offers")).text
        bad = await http.post(f"{USERS}/role", data={"csrf": csrf, "email": email, "role": "boss"})
        assert bad.status_code == 422
        assert "&#39;boss&#39; is not a role" in bad.text

        deleted = await http.post(f"{USERS}/delete", data={"csrf": csrf, "email": email})
        assert deleted.status_code == 303
        assert await stored_user(app, tenant.org, email) is None
        assert (await newcomer.get("/admin/sandbox/prod/offers")).status_code == 303  # ended
    assert email.lower() not in (await http.get(USERS)).text
    again = await http.post(f"{USERS}/delete", data={"csrf": csrf, "email": email})
    assert again.status_code == 404
    assert "Your organization has no user" in again.text


async def test_the_new_user_form_shows_each_error_next_to_its_field(
    app: Any, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, admin_email = admin
    csrf = csrf_of((await http.get(USERS)).text)
    before = len(await _org_users(app, tenant.org))
    wrong = await http.post(
        f"{USERS}/new",
        data=new_user_form(
            csrf, "not an email", role="boss", sandboxes=[], password="short", password_again=""
        ),
    )
    assert wrong.status_code == 422
    assert "is not an email address" in error_of(wrong.text, "email")
    assert "is not a role" in error_of(wrong.text, "role")
    assert error_of(wrong.text, "sandboxes") == "Choose a sandbox, or every sandbox."
    assert error_of(wrong.text, "password") == "A password has at least 12 characters."
    assert 'value="not an email"' in wrong.text  # the form keeps what was typed...
    assert 'value="short"' not in wrong.text  # ...but never a password
    assert not re.search(r'<input id="user-password[^>]*value=', wrong.text)

    differ = await http.post(
        f"{USERS}/new", data=new_user_form(csrf, "x@example.com", password_again="other one!!!!")
    )
    assert differ.status_code == 422
    assert error_of(differ.text, "password_again") == "The two passwords differ."
    unknown = await http.post(
        f"{USERS}/new", data=new_user_form(csrf, "y@example.com", sandboxes=["nowhere"])
    )
    assert error_of(unknown.text, "sandboxes") == "You have no sandbox named &#39;nowhere&#39;."
    taken = await http.post(f"{USERS}/new", data=new_user_form(csrf, admin_email.upper()))
    assert taken.status_code == 409
    assert "exists" in error_of(taken.text, "email")
    assert len(await _org_users(app, tenant.org)) == before

    every = await http.post(
        f"{USERS}/new", data=new_user_form(csrf, "every@example.com", sandboxes=["*", "prod"])
    )
    assert every.status_code == 303
    assert (await stored_user(app, tenant.org, "every@example.com")).sandboxes is None  # type: ignore[union-attr]


async def _org_users(app: Any, org: str) -> list[users.User]:
    async with services_of(app).db.read() as conn:
        return await users.list_users(conn, org)


async def test_an_admin_cannot_delete_itself_or_change_its_own_role(
    app: Any, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, email = admin
    page = await http.get(USERS)
    assert f'<input type="hidden" name="email" value="{email}">' not in page.text  # no buttons
    csrf = csrf_of(page.text)
    deleted = await http.post(f"{USERS}/delete", data={"csrf": csrf, "email": email})
    assert deleted.status_code == 409
    assert "You cannot delete your own user; another admin can." in deleted.text
    demoted = await http.post(
        f"{USERS}/role", data={"csrf": csrf, "email": email.upper(), "role": "viewer"}
    )
    assert demoted.status_code == 409
    assert "You cannot change the role of your own user; another admin can." in demoted.text
    assert (await stored_user(app, tenant.org, email)).role == "admin"  # type: ignore[union-attr]


# -- roles and CSRF ------------------------------------------------------------------------------


def _forms(csrf: str, email: str, client_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every state-changing form of both pages, filled in as an admin would."""
    return [
        (f"{USERS}/new", new_user_form(csrf, f"{uuid.uuid4().hex[:8]}@example.com")),
        (f"{USERS}/role", {"csrf": csrf, "email": email, "role": "admin"}),
        (f"{USERS}/delete", {"csrf": csrf, "email": email}),
        (f"{CREDENTIALS}/new", {"csrf": csrf, "name": "Sneaky", "sandbox": "prod"}),
        (f"{CREDENTIALS}/{client_id}/rotate", {"csrf": csrf}),
        (f"{CREDENTIALS}/{client_id}/revoke", {"csrf": csrf}),
    ]


async def _unchanged(app: Any, tenant: Tenant, email: str, count: int) -> None:
    assert (await stored_user(app, tenant.org, email)).role == "viewer"  # type: ignore[union-attr]
    async with services_of(app).db.read() as conn:
        listed = await tenants.list_credentials(conn, tenant.org)
    assert len(listed) == count
    assert all(credential.revoked is None for credential in listed)
    assert len(await _org_users(app, tenant.org)) >= 1


@pytest.mark.parametrize("role", ["viewer", "editor", "approver"])
async def test_other_roles_get_403_on_each_page_and_form_and_see_no_link(
    app: Any, tenant: Tenant, role: str
) -> None:
    target = await add_user(app, tenant.org, "viewer")
    async with signed_in(app, tenant.org, role) as (http, _email):
        page = await http.get("/admin/sandbox/prod/offers")
        assert page.status_code == 200
        assert "/users" not in page.text
        assert "/credentials" not in page.text
        for path in (USERS, CREDENTIALS):
            refused = await http.get(path)
            assert refused.status_code == 403, path
            assert f"Your role ({role}) may not do this; it needs admin." in refused.text
            assert refused.headers["cache-control"] == "no-store"
        for path, form in _forms(csrf_of(page.text), target, tenant.client_id):
            response = await http.post(path, data=form)
            assert response.status_code == 403, path
    await _unchanged(app, tenant, target, 1)


async def test_every_form_needs_the_session_s_csrf_token(
    app: Any, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _email = admin
    target = await add_user(app, tenant.org, "viewer")
    csrf = csrf_of((await http.get(USERS)).text)
    for path, form in _forms(csrf, target, tenant.client_id):
        for sent in ({k: v for k, v in form.items() if k != "csrf"}, {**form, "csrf": "wrong"}):
            response = await http.post(path, data=sent)
            assert response.status_code == 403, path
            assert "security token" in response.text
        cross_site = await http.post(path, data=form, headers={"Origin": "https://evil.example"})
        assert cross_site.status_code == 403, path
    await _unchanged(app, tenant, target, 1)


# -- tenancy -------------------------------------------------------------------------------------


async def test_an_admin_reaches_no_user_or_credential_of_another_organization(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _email = admin
    other = await make_tenant(app, client, ("prod", f"theirs-{uuid.uuid4().hex[:8]}"))
    their_user = await add_user(app, other.org, "viewer")
    their_sandbox = next(
        name for name in await _sandbox_names(app, other.org) if name.startswith("theirs-")
    )
    for path in (USERS, CREDENTIALS):
        listed = await http.get(path)
        assert listed.status_code == 200
        assert their_user not in listed.text
        assert other.client_id not in listed.text
        assert other.org not in listed.text
        # Their sandbox is not ours: the page is "not found" there.
        theirs = await http.get(path.replace("/prod/", f"/{their_sandbox}/"))
        assert theirs.status_code == 404
    csrf = csrf_of((await http.get(USERS)).text)
    for path, form in _forms(csrf, their_user, other.client_id)[1:3]:
        response = await http.post(path, data=form)
        assert response.status_code == 404, path
        assert "Your organization has no user" in response.text
    for path, form in _forms(csrf, their_user, other.client_id)[4:]:
        response = await http.post(path, data=form)
        assert response.status_code == 404, path
        assert "Your organization has no credential" in response.text
        assert "client_secret" not in response.text
    grant = await http.post(
        f"{USERS}/new", data=new_user_form(csrf, "grab@example.com", sandboxes=[their_sandbox])
    )
    assert grant.status_code == 422
    stolen = await http.post(
        f"{CREDENTIALS}/new", data={"csrf": csrf, "name": "x", "sandbox": their_sandbox}
    )
    assert stolen.status_code == 422
    assert "You have no sandbox named" in stolen.text
    # Theirs is as it was: the user, its role, the credential, which still works.
    assert (await stored_user(app, other.org, their_user)).role == "viewer"  # type: ignore[union-attr]
    assert await stored_user(app, tenant.org, "grab@example.com") is None
    assert (await client.get("/data/core/dps/tags", headers=other.headers)).status_code == 200
    assert await _sandbox_names(app, tenant.org) == ["dev", "prod"]


async def _sandbox_names(app: Any, org: str) -> list[str]:
    async with services_of(app).db.read() as conn:
        return [sandbox.name for sandbox in await tenants.list_sandboxes(conn, org)]


async def test_an_admin_limited_to_a_sandbox_grants_and_manages_no_more(
    app: Any, tenant: Tenant
) -> None:
    wide = await add_user(app, tenant.org, "viewer")  # every sandbox: beyond a limited admin
    narrow = await add_user(app, tenant.org, "viewer", ["dev"])
    async with services_of(app).db.write() as conn:
        dev_only = await tenants.create_credential(conn, tenant.org, "dev", "dev only")
    async with signed_in(app, tenant.org, "admin", ["dev"]) as (http, _email):
        base = "/admin/sandbox/dev"
        page = await http.get(f"{base}/users")
        assert narrow in page.text
        assert wide not in page.text
        assert 'value="*"' not in page.text  # no "every sandbox" to grant
        csrf = csrf_of(page.text)
        for path, form in [
            (f"{base}/users/role", {"csrf": csrf, "email": wide, "role": "admin"}),
            (f"{base}/users/delete", {"csrf": csrf, "email": wide}),
            (f"{base}/credentials/{tenant.client_id}/rotate", {"csrf": csrf}),
            (f"{base}/credentials/{tenant.client_id}/revoke", {"csrf": csrf}),
        ]:
            assert (await http.post(path, data=form)).status_code == 404, path
        every = await http.post(
            f"{base}/users/new", data=new_user_form(csrf, "all@example.com", sandboxes=["*"])
        )
        assert every.status_code == 422
        assert "your own user is limited to some" in error_of(every.text, "sandboxes")
        for form in ({"sandbox": "*"}, {"sandbox": "dev", "admin": "yes"}):
            refused = await http.post(f"{base}/credentials/new", data={"csrf": csrf, **form})
            assert refused.status_code == 422, form
        listed = await http.get(f"{base}/credentials")
        assert dev_only.client_id in listed.text
        assert tenant.client_id not in listed.text  # org-wide: not this admin's to manage
        changed = await http.post(
            f"{base}/users/role", data={"csrf": csrf, "email": narrow, "role": "editor"}
        )
        assert changed.status_code == 303
    assert (await stored_user(app, tenant.org, wide)).role == "viewer"  # type: ignore[union-attr]
    assert (await stored_user(app, tenant.org, narrow)).role == "editor"  # type: ignore[union-attr]


# -- escaping ------------------------------------------------------------------------------------


async def test_markup_in_an_email_or_a_credential_name_is_shown_as_text(
    app: Any, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _email = admin
    evil_email = '<script>window.owned="email"</script><img/src=x/onerror=alert(1)>@evil.example'
    async with services_of(app).db.write() as conn:
        await users.create_user(
            conn, tenant.org, evil_email, "viewer", None, "scrypt$x", now=services_of(app).clock()
        )
        await tenants.create_credential(conn, tenant.org, "prod", f"Evil {EVIL}")
    for path in (USERS, CREDENTIALS):
        page = await http.get(path)
        assert page.status_code == 200
        assert "<script>window.owned" not in page.text, path
        assert "<img" not in page.text, path
        assert page.text.count("<script") == 1  # the vendored htmx only
        assert "&lt;script&gt;window.owned=" in page.text, path
    # And an error message that repeats what was typed escapes it too.
    csrf = csrf_of(page.text)
    typed = await http.post(f"{CREDENTIALS}/new", data={"csrf": csrf, "sandbox": EVIL})
    assert typed.status_code == 422
    assert "<script>window.owned" not in typed.text
    assert "&lt;script&gt;window.owned" in typed.text
