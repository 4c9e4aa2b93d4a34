"""CLI commands that work on the database directly (no server), through typer's runner."""

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


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_credentials_sandboxes_profiles_and_events(data_dir: str, tmp_path: Path) -> None:
    created = json.loads(
        run(
            "credentials",
            "create",
            "--org",
            "CLI@AdobeOrg",
            "--sandbox",
            "stage",
            "--json",
            "--data-dir",
            data_dir,
        )
    )
    assert created["org"] == "CLI@AdobeOrg"
    assert created["sandbox"] == "stage"
    assert created["client_secret"]
    listed = [
        json.loads(line) for line in run("sandboxes", "list", "--data-dir", data_dir).splitlines()
    ]
    assert [(s["org"], s["name"]) for s in listed] == [("CLI@AdobeOrg", "stage")]
    assert len(listed[0]["containerId"]) == 36

    ndjson = tmp_path / "profiles.ndjson"
    ndjson.write_text(
        '{"identityMap": {"Email": [{"id": "a@b.c", "primary": true}]}, "tier": "gold"}\nnot json\n'
    )
    result = runner.invoke(
        app,
        [
            "profiles",
            "import",
            str(ndjson),
            "--org",
            "CLI@AdobeOrg",
            "--sandbox",
            "stage",
            "--data-dir",
            data_dir,
        ],
    )
    assert result.exit_code == 1  # one line failed, the other was imported
    summary = json.loads(result.output)
    assert summary["imported"] == 1
    assert summary["failed"] == 1

    assert (
        run(
            "events",
            "export",
            "--org",
            "CLI@AdobeOrg",
            "--sandbox",
            "stage",
            "--data-dir",
            data_dir,
        )
        == ""
    )
    missing = runner.invoke(app, ["events", "export", "--org", "NOPE", "--data-dir", data_dir])
    assert missing.exit_code == 2


def test_serve_refuses_an_unknown_log_level_before_touching_anything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = runner.invoke(app, ["serve", "--log-level", "loud", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())  # unwrap rich's error box
    assert "must be one of debug, info, warning, error, critical" in message
    assert not data_dir.exists()


def _commands() -> list[list[str]]:
    """Every command of the CLI, as the words that name it."""
    import typer.main

    found: list[list[str]] = []

    def walk(group: object, words: list[str]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            if hasattr(command, "commands"):
                walk(command, [*words, name])
            else:
                found.append([*words, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_plain_help_with_an_example() -> None:
    commands = _commands()
    assert ["serve"] in commands
    assert ["credentials", "rotate"] in commands
    assert len(commands) >= 10
    for words in commands:
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        assert "<bool>" not in result.output, words
        assert "<str>" not in result.output, words
        assert "Example" in result.output, words
        assert f"offerbase {' '.join(words)}" in result.output, words


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535(tmp_path: Path, port: str) -> None:
    result = runner.invoke(app, ["serve", "--port", port, "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "--port" in result.output
    assert not (tmp_path / "d").exists()


def test_sandboxes_of_an_unknown_organization_is_an_error(data_dir: str) -> None:
    run("credentials", "create", "--org", "KNOWN@AdobeOrg", "--data-dir", data_dir)
    known = runner.invoke(
        app, ["sandboxes", "list", "--org", "KNOWN@AdobeOrg", "--data-dir", data_dir]
    )
    assert known.exit_code == 0
    assert json.loads(known.output)["name"] == "prod"
    result = runner.invoke(
        app, ["sandboxes", "list", "--org", "UNKNOWN@AdobeOrg", "--data-dir", data_dir]
    )
    assert result.exit_code == 2
    assert "UNKNOWN@AdobeOrg" in result.output
