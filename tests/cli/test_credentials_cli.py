"""`offerbase credentials create|list|revoke|rotate`, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offerbase.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def run(data_dir: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["credentials", *args, "--data-dir", data_dir])
    assert result.exit_code == code, result.output
    return result.output


def create(data_dir: str, *args: str) -> dict[str, object]:
    created: dict[str, object] = json.loads(
        run(data_dir, "create", "--org", "CLI@AdobeOrg", "--json", *args)
    )
    return created


def listed(data_dir: str) -> dict[str, dict[str, object]]:
    lines = run(data_dir, "list").splitlines()
    return {row["client_id"]: row for row in map(json.loads, lines)}


def test_create_limits_a_credential_to_its_sandbox_unless_told(data_dir: str) -> None:
    limited = create(data_dir, "--sandbox", "stage", "--name", "web")
    wide = create(data_dir, "--all-sandboxes")
    admin = create(data_dir, "--admin", "--sandbox", "stage")
    assert (limited["sandbox"], limited["admin"]) == ("stage", False)
    assert (wide["sandbox"], wide["admin"]) == (None, False)
    assert (admin["sandbox"], admin["admin"]) == (None, True)  # an admin is always org-wide
    rows = listed(data_dir)
    assert rows[str(limited["client_id"])] == {
        "client_id": limited["client_id"],
        "org": "CLI@AdobeOrg",
        "name": "web",
        "sandbox": "stage",
        "admin": False,
        "created": rows[str(limited["client_id"])]["created"],
        "revoked": None,
    }
    assert len(rows) == 3
    output = run(data_dir, "list")
    assert "secret" not in output
    assert "scrypt" not in output


def test_a_name_longer_than_its_column_is_refused(data_dir: str) -> None:
    create(data_dir, "--name", "n" * 255)
    output = run(data_dir, "create", "--org", "CLI@AdobeOrg", "--name", "n" * 256, code=1)
    assert "Not created: A credential's name has at most 255 characters." in output
    assert len(listed(data_dir)) == 1


def test_revoke_and_rotate(data_dir: str) -> None:
    first, second = create(data_dir), create(data_dir)
    rotated = json.loads(run(data_dir, "rotate", str(first["client_id"]), "--json"))
    assert rotated["client_id"] == first["client_id"]
    assert rotated["client_secret"] != first["client_secret"]
    assert rotated["sandbox"] == "prod"
    human = run(data_dir, "rotate", str(first["client_id"]))
    assert "client_secret:" in human

    revoked = json.loads(run(data_dir, "revoke", str(second["client_id"])))
    assert revoked["revoked"] is not None
    rows = listed(data_dir)
    assert rows[str(second["client_id"])]["revoked"] == revoked["revoked"]
    assert rows[str(first["client_id"])]["revoked"] is None
    # Revoking again keeps the first time; a revoked credential cannot be rotated.
    assert json.loads(run(data_dir, "revoke", str(second["client_id"]))) == revoked
    assert "is revoked" in run(data_dir, "rotate", str(second["client_id"]), code=1)


def test_unknown_client_ids_and_missing_databases(data_dir: str) -> None:
    create(data_dir)
    assert "No credential 'nope'" in run(data_dir, "revoke", "nope", code=2)
    assert "No credential 'nope'" in run(data_dir, "rotate", "nope", code=2)


def test_list_is_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["credentials", "list", "--data-dir", str(missing)])
    assert result.exit_code == 2, result.output
    assert not missing.exists()
