"""`offerbase batch decide` on bad input: errors name the row and field, exit codes as the other
commands, and a failed job publishes nothing (no output directory, no temporary one left)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from offerbase.cli import app

from .test_batch_online import catalog_document

runner = CliRunner()
ORG = "BATCH@AdobeOrg"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory (SQLite) with the catalog of test_batch_online in sandbox prod."""
    data = tmp_path / "data"
    monkeypatch.setenv("OFFERBASE_DATA_DIR", str(data))  # restored after (the CLI sets it)
    created = runner.invoke(app, ["credentials", "create", "--org", ORG, "--data-dir", str(data)])
    assert created.exit_code == 0, created.output
    document = tmp_path / "catalog.json"
    document.write_text(json.dumps(catalog_document()))
    result = runner.invoke(
        app, ["catalog", "import", str(document), "--org", ORG, "--data-dir", str(data)]
    )
    assert result.exit_code == 0, result.output
    return data


def decide(data_dir: Path, source: Path, output: Path, *extra: str, code: int = 0) -> str:
    result = runner.invoke(
        app,
        [
            "batch", "decide", "--org", ORG, "--input", str(source), "--activity", "dec",
            "--placement", "web", "--output", str(output), "--data-dir", str(data_dir), *extra,
        ],
    )  # fmt: skip
    assert result.exit_code == code, result.output
    return str(result.output)


def people(count: int) -> list[dict]:
    return [
        {"identityMap": {"Email": [{"id": f"p{n}@x", "primary": True}]}, "points": n}
        for n in range(count)
    ]


def nothing_published(output: Path) -> bool:
    return not output.exists() and not any(
        p.name.startswith(".out") for p in output.parent.iterdir()
    )


def test_summary_and_output_columns(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(people(50)), source)
    output = tmp_path / "out"
    text = decide(data_dir, source, output, "--include-content", "--dry-run")
    assert text.strip().startswith("50 rows, 0 fallbacks, ")
    table = pq.read_table(output)
    assert table.column_names == [
        "decision_event_id", "timestamp", "workload_id", "identity_namespace", "identity_id",
        "proposition_id", "activity_id", "placement_id", "rank", "option_id", "option_etag",
        "score", "is_fallback", "content", "delivery_url", "format", "language",
    ]  # fmt: skip
    first = table.to_pylist()[0]
    identity = (first["identity_namespace"], first["identity_id"], first["rank"])
    assert identity == ("email", "p0@x", 1)
    assert first["content"].startswith("<p>")
    assert (output / "_SUCCESS").exists()


def test_a_malformed_row_fails_the_job_and_publishes_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    import offerbase.batch.run as run

    lines = [orjson.dumps(p) for p in people(30)]
    lines[24] = b'{"identityMap": {"Email": [{"id": 7}]}}'  # line 25, after a first partition
    source = tmp_path / "in.ndjson"
    source.write_bytes(b"\n".join(lines))
    output = tmp_path / "out"
    before = run.ROWS_PER_PARTITION
    run.ROWS_PER_PARTITION = 10
    try:
        text = decide(data_dir, source, output, code=1)
    finally:
        run.ROWS_PER_PARTITION = before
    assert "row 25, /identityMap/Email/0/id: must be a string" in text
    assert nothing_published(output)


def test_not_json_names_the_line(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_bytes(orjson.dumps(people(1)[0]) + b"\n\n{oops\n")
    text = decide(data_dir, source, tmp_path / "out", "--dry-run", code=1)
    assert "row 3: not valid JSON" in text
    assert nothing_published(tmp_path / "out")


def test_unreadable_and_missing_files(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "in.parquet"
    broken.write_bytes(b"not parquet at all")
    assert "not a readable Parquet file" in decide(data_dir, broken, tmp_path / "out", code=1)
    assert nothing_published(tmp_path / "out")
    assert "No such file" in decide(data_dir, tmp_path / "none.ndjson", tmp_path / "out", code=2)
    csv = tmp_path / "in.csv"
    csv.write_text("a,b\n")
    assert "must be .parquet or .ndjson" in decide(data_dir, csv, tmp_path / "out", code=1)


def test_an_unknown_activity_or_a_used_output_directory(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_bytes(orjson.dumps(people(1)[0]))
    result = runner.invoke(
        app,
        [
            "batch", "decide", "--org", ORG, "--input", str(source), "--activity", "nope",
            "--placement", "web", "--output", str(tmp_path / "out"), "--data-dir", str(data_dir),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Decision 'nope' not found" in result.output
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert "exists and is not empty" in decide(data_dir, source, used, code=1)
    assert (used / "keep.txt").read_text() == "mine"
    other = runner.invoke(
        app,
        [
            "batch", "decide", "--org", "Nobody@AdobeOrg", "--input", str(source),
            "--activity", "dec", "--placement", "web", "--output", str(tmp_path / "o2"),
            "--data-dir", str(data_dir),
        ],
    )  # fmt: skip
    assert other.exit_code == 2
