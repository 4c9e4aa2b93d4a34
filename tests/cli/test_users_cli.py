"""`offerbase users create|list|set-role|delete`, through typer's runner, and a created user
signing in to the admin UI of an app on the same database."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from offerbase.api.app import create_app
from offerbase.cli import app
from offerbase.config import Settings

runner = CliRunner()
ORG = "USERS@AdobeOrg"
PASSWORD = "a long enough passphrase"


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


@pytest.fixture(autouse=True)
def environment() -> Iterator[None]:
    """The CLI exports --data-dir to the environment (for `serve`'s workers): put it back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def users(data_dir: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["users", *args, "--data-dir", data_dir], input=stdin)
    return result.exit_code, result.output


def create(data_dir: str, email: str, *extra: str) -> dict[str, object]:
    code, output = users(
        data_dir,
        "create",
        "--org",
        ORG,
        "--email",
        email,
        "--password-stdin",
        "--json",
        *extra,
        stdin=PASSWORD + "\n",
    )
    assert code == 0, output
    created: dict[str, object] = json.loads(output)
    return created


def test_create_list_set_role_delete(data_dir: str) -> None:
    ana = create(data_dir, "Ana@Example.com", "--role", "editor", "--sandbox", "prod")
    assert ana["email"] == "ana@example.com"
    assert ana["role"] == "editor"
    assert ana["sandboxes"] == ["prod"]
    bob = create(data_dir, "bob@example.com", "--role", "viewer")
    assert bob["sandboxes"] is None
    code, output = users(data_dir, "list", "--json", "--org", ORG)
    assert code == 0
    listed = [json.loads(line) for line in output.splitlines()]
    assert [user["email"] for user in listed] == ["ana@example.com", "bob@example.com"]
    assert all("password" not in json.dumps(user) for user in listed)
    assert PASSWORD not in output
    assert users(data_dir, "list", "--org", "OTHER@AdobeOrg") == (0, "")

    code, output = users(
        data_dir, "set-role", "--org", ORG, "--email", "bob@example.com", "--role", "approver"
    )
    assert code == 0
    assert "role approver" in output
    code, output = users(data_dir, "delete", "--org", ORG, "--email", "ANA@example.com")
    assert code == 0
    assert json.loads(output) == {"deleted": "ana@example.com"}
    code, output = users(data_dir, "list", "--json")
    assert [json.loads(line)["email"] for line in output.splitlines()] == ["bob@example.com"]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "says"),
    [
        (["--role", "viewer"], None, 1, "--password-stdin"),
        (["--role", "viewer", "--password-stdin"], "short\n", 1, "at least 12 characters"),
        (["--role", "boss", "--password-stdin"], PASSWORD + "\n", 1, "'boss' is not a role"),
    ],
)
def test_bad_input_exits_1_and_says_why(
    data_dir: str, args: list[str], stdin: str | None, code: int, says: str
) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "--org", ORG, "--email", "x@example.com", *args],
        input=stdin,
        env={"OFFERBASE_DATA_DIR": data_dir},
    )
    assert result.exit_code == code
    assert says in result.output


def test_an_email_is_one_user_in_every_organization(data_dir: str) -> None:
    create(data_dir, "same@example.com", "--role", "viewer")
    code, output = users(
        data_dir,
        "create",
        "--org",
        "OTHER@AdobeOrg",
        "--email",
        "SAME@example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 1
    assert "exists" in output


def test_another_organization_cannot_change_or_delete_the_user(data_dir: str) -> None:
    create(data_dir, "ana@example.com", "--role", "viewer")
    other = ["--org", "OTHER@AdobeOrg", "--email", "ana@example.com"]
    assert users(data_dir, "set-role", *other, "--role", "admin")[0] == 2
    assert users(data_dir, "delete", *other)[0] == 2
    code, output = users(data_dir, "list", "--json")
    assert json.loads(output)["role"] == "viewer"


def test_list_is_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["users", "list", "--data-dir", str(missing)])
    assert result.exit_code == 2
    assert not missing.exists()


def test_a_created_user_signs_in(data_dir: str) -> None:
    # Synchronous: the command runs its own event loop.
    create(data_dir, "ana@example.com", "--role", "editor")
    asyncio.run(_sign_in(data_dir))


async def _sign_in(data_dir: str) -> None:
    served = create_app(Settings(data_dir=Path(data_dir), secret_key="k" * 32))
    transport = httpx.ASGITransport(app=served)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        form = {"email": "ana@example.com", "password": PASSWORD}
        response = await http.post("/admin/sign-in", data=form)
        assert response.status_code == 303
        page = await http.get("/admin/sandbox/prod/offers", follow_redirects=True)
        assert page.status_code == 404  # no sandbox yet: the org has none
        home = await http.get("/admin")
        assert "Your user may use no sandbox that exists" in home.text
