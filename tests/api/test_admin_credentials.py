"""The admin UI's Credentials page through HTTP: a secret is shown once (on the answer to the form
that made it) and never on the list or in the database in clear; a credential created there
works at the real token endpoint; revoking or rotating it there ends its tokens at the API, as
the CLI's revocations do (tests/api/test_credentials.py). Roles, CSRF and tenancy of this page:
tests/api/test_admin_users.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from test_admin_ui import csrf_of, text_of
from test_admin_users import CREDENTIALS, signed_in

from conftest import Tenant
from offerbase.api.deps import services_of
from offerbase.store import tables, tenants

TOKEN = "/ims/token/v3"
TAGS = "/data/core/dps/tags"


@pytest.fixture
async def admin(app: Any, tenant: Tenant) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with signed_in(app, tenant.org, "admin") as signed:
        yield signed


def secret_of(html: str) -> str:
    found = re.search(
        r'<input id="client-secret" type="text" readonly size="50" value="([^"]+)"', html
    )
    assert found, "no secret on the page"
    return unescape(found.group(1))


def client_id_of(html: str) -> str:
    found = re.search(r"<dt>Client id</dt><dd><code>([0-9a-f]+)</code></dd>", html)
    assert found
    return found.group(1)


async def token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await client.post(TOKEN, data=data)


def headers(tenant: Tenant, access_token: str, client_id: str) -> dict[str, str]:
    return {**tenant.headers, "Authorization": f"Bearer {access_token}", "x-api-key": client_id}


async def stored_rows(app: Any, org: str) -> list[str]:
    """Every stored credential row of the organization, as text (the hash included)."""
    async with services_of(app).db.read() as conn:
        query = sa.select(tables.credentials).where(tables.credentials.c.org_id == org)
        return [repr(tuple(row)) for row in (await conn.execute(query)).all()]


async def test_a_new_credential_s_secret_is_shown_once_and_it_works(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _email = admin
    page = await http.get(CREDENTIALS)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '<label for="credential-name">Name (a label for this list)</label>' in page.text
    assert '<label for="credential-sandbox">Sandbox it may use</label>' in page.text
    assert '<button type="submit">New credential</button>' in page.text
    assert tenant.client_id in page.text
    assert tenant.client_secret not in page.text

    made = await http.post(
        f"{CREDENTIALS}/new",
        data={"csrf": csrf_of(page.text), "name": "Web shop", "sandbox": "dev"},
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "shown only this once and cannot be shown again" in made.text
    secret, client_id = secret_of(made.text), client_id_of(made.text)
    assert secret.startswith("p8e-")
    listed = await http.get(CREDENTIALS)
    assert secret not in listed.text
    row = re.search(
        rf"<tr>\s*<td class=\"name\"><code>{client_id}</code>.*?</tr>", listed.text, re.S
    )
    assert row
    assert "Web shop dev no" in text_of(row.group(0))
    assert "active" in row.group(0)
    rows = await stored_rows(app, tenant.org)
    assert len(rows) == 2
    assert all(secret not in stored for stored in rows)  # only its scrypt hash is stored
    async with services_of(app).db.read() as conn:
        found = await tenants.find_credential(conn, client_id)
    assert found is not None
    assert (found[0].name, found[0].sandbox, found[0].admin) == ("Web shop", "dev", False)
    assert tenants.verify_secret(secret, found[1])

    issued = await token(client, client_id, secret)
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]
    dev = headers(tenant.in_sandbox("dev"), access, client_id)
    assert (await client.get(TAGS, headers=dev)).status_code == 200
    prod = headers(tenant, access, client_id)
    assert (await client.get(TAGS, headers=prod)).status_code == 403  # limited to dev

    too_long = await http.post(
        f"{CREDENTIALS}/new", data={"csrf": csrf_of(page.text), "name": "n" * 256, "sandbox": "dev"}
    )
    assert too_long.status_code == 422
    assert "at most 255 characters" in too_long.text
    assert 'id="credential-name-error"' in too_long.text
    assert len(await stored_rows(app, tenant.org)) == 2


async def test_revoking_on_the_page_ends_its_tokens_and_rotating_shows_a_new_secret(
    app: Any, client: httpx.AsyncClient, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    http, _email = admin
    csrf = csrf_of((await http.get(CREDENTIALS)).text)
    made = await http.post(
        f"{CREDENTIALS}/new", data={"csrf": csrf, "name": "Rotated", "sandbox": "*"}
    )
    first, client_id = secret_of(made.text), client_id_of(made.text)
    old_token = (await token(client, client_id, first)).json()["access_token"]
    assert (
        await client.get(TAGS, headers=headers(tenant, old_token, client_id))
    ).status_code == 200

    rotated = await http.post(f"{CREDENTIALS}/{client_id}/rotate", data={"csrf": csrf})
    assert rotated.status_code == 200
    assert "shown only this once" in rotated.text
    second = secret_of(rotated.text)
    assert second != first
    assert client_id_of(rotated.text) == client_id
    assert (await token(client, client_id, first)).status_code == 401
    ended = await client.get(TAGS, headers=headers(tenant, old_token, client_id))
    assert ended.status_code == 401
    assert "was rotated" in ended.json()["detail"]
    new_token = (await token(client, client_id, second)).json()["access_token"]
    assert (
        await client.get(TAGS, headers=headers(tenant, new_token, client_id))
    ).status_code == 200
    assert all(second not in stored for stored in await stored_rows(app, tenant.org))
    assert second not in (await http.get(CREDENTIALS)).text

    revoked = await http.post(f"{CREDENTIALS}/{client_id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == CREDENTIALS
    refused = await client.get(TAGS, headers=headers(tenant, new_token, client_id))
    assert refused.status_code == 401
    assert "was revoked" in refused.json()["detail"]
    assert (await token(client, client_id, second)).status_code == 401
    listed = await http.get(CREDENTIALS)
    assert re.search(r"revoked \d{4}-\d\d-\d\dT", listed.text)
    assert f"{client_id}/revoke" not in listed.text  # no buttons on a revoked credential
    again = await http.post(f"{CREDENTIALS}/{client_id}/rotate", data={"csrf": csrf})
    assert again.status_code == 409
    assert "is revoked; create a new one" in again.text
    # The tenant's own credential was never touched.
    assert (await client.get(TAGS, headers=tenant.headers)).status_code == 200


async def test_an_admin_credential_made_on_the_page_manages_credentials_over_http(
    client: httpx.AsyncClient, tenant: Tenant, admin: tuple[httpx.AsyncClient, str]
) -> None:
    """The HTTP admin routes under /admin/credentials are not the page's: they still answer
    to an admin credential's token, and to nothing else."""
    http, _email = admin
    csrf = csrf_of((await http.get(CREDENTIALS)).text)
    made = await http.post(
        f"{CREDENTIALS}/new", data={"csrf": csrf, "sandbox": "prod", "admin": "yes"}
    )
    assert made.status_code == 200
    client_id = client_id_of(made.text)
    assert "<dt>Admin</dt><dd>yes</dd>" in made.text
    access = (await token(client, client_id, secret_of(made.text))).json()["access_token"]
    listed = await client.get("/admin/credentials", headers=headers(tenant, access, client_id))
    assert listed.status_code == 200
    assert {c["client_id"] for c in listed.json()["results"]} == {tenant.client_id, client_id}
    by_session = await http.get("/admin/credentials")  # a session cookie is no credential
    assert by_session.status_code in (401, 403)
    assert client_id not in by_session.text
