"""`offerbase datastreams create|list|delete`, through typer's runner (the real server's case is
in test_serve.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offerbase.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def run(data_dir: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["datastreams", *args, "--data-dir", data_dir])
    assert result.exit_code == code, result.output
    return result.output


def test_create_list_delete(data_dir: str) -> None:
    created = json.loads(
        run(
            data_dir,
            "create",
            "--org",
            "CLI@AdobeOrg",
            "--sandbox",
            "stage",
            "--name",
            "Web",
            "--origin",
            "https://WWW.shop.example/",
            "--origin",
            "http://localhost:3000",
            "--item-count",
            "dps:offer-placement:1=2",
            "--json",
        )
    )
    assert uuid.UUID(created["id"])
    assert created == {
        "id": created["id"],
        "org": "CLI@AdobeOrg",
        "sandbox": "stage",  # created with its organization
        "name": "Web",
        "origins": ["https://www.shop.example", "http://localhost:3000"],
        "itemCounts": {"dps:offer-placement:1": 2},
        "created": created["created"],
    }
    chosen = run(data_dir, "create", "--org", "Other@AdobeOrg", "--id", "my.stream:1")
    assert chosen.startswith("my.stream:1  org Other@AdobeOrg  sandbox prod")
    assert "(none: no browser may call)" in chosen

    listed = [json.loads(line) for line in run(data_dir, "list", "--json").splitlines()]
    assert [d["id"] for d in listed] == [created["id"], "my.stream:1"]
    only = run(data_dir, "list", "--org", "CLI@AdobeOrg", "--json").splitlines()
    assert [json.loads(line) for line in only] == [created]

    # Delete needs the datastream's own organization and sandbox.
    run(data_dir, "delete", created["id"], "--org", "CLI@AdobeOrg", code=2)
    run(data_dir, "delete", created["id"], "--org", "Other@AdobeOrg", code=2)
    deleted = run(data_dir, "delete", created["id"], "--org", "CLI@AdobeOrg", "--sandbox", "stage")
    assert json.loads(deleted) == {"deleted": created["id"]}
    assert run(data_dir, "list", "--org", "CLI@AdobeOrg") == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--origin", "https://shop.example/cart"], "'https://shop.example/cart' is not an origin"),
        (["--origin", "*"], "'*' is not an origin"),
        (["--item-count", "p=31"], "The itemCount of 'p' is 31"),
        (["--item-count", "p"], "--item-count 'p': write PLACEMENT_ID=N"),
        (["--id", "no spaces"], "'no spaces' is not a datastream id"),
    ],
)
def test_bad_input_exits_1_and_says_why(data_dir: str, args: list[str], says: str) -> None:
    result = runner.invoke(
        app, ["datastreams", "create", "--org", "CLI@AdobeOrg", *args, "--data-dir", data_dir]
    )
    assert result.exit_code == 1, result.output
    assert says in result.output


def test_an_id_in_use_is_refused_in_any_organization(data_dir: str) -> None:
    run(data_dir, "create", "--org", "A@AdobeOrg", "--id", "shared")
    result = runner.invoke(
        app,
        ["datastreams", "create", "--org", "B@AdobeOrg", "--id", "shared", "--data-dir", data_dir],
    )
    assert result.exit_code == 1
    assert "A datastream with id 'shared' exists already." in result.output
    assert len(run(data_dir, "list").splitlines()) == 1


def test_list_is_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    result = runner.invoke(app, ["datastreams", "list", "--data-dir", str(missing)])
    assert result.exit_code == 2
    assert not missing.exists()
