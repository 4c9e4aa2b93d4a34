"""`offerbase batch decide` on bad input, on SQLite and PostgreSQL, with the local and the dask
engine: the message names the row and field (or the request field), the exit code is not 0,
nothing is published and nothing is written to the database (no decision event, no counter),
even when the bad row comes after partitions whose decisions consumed capping counters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .test_batch_cli import nothing_published
from .test_batch_dask import scheduler as scheduler
from .test_batch_online import Cli, _counters, catalog_document


class Output(Cli):
    """Cli, answering stdout and stderr together (the error message goes to stderr)."""

    async def __call__(self, *args: str, code: int = 0) -> str:
        import asyncio

        from typer.testing import CliRunner

        from offerbase.cli import app

        def invoke() -> Any:
            extra = ["--database-url", self.url, "--data-dir", str(self.data_dir)]
            return CliRunner().invoke(app, [*args, *extra])

        result = await asyncio.to_thread(invoke)
        assert result.exit_code == code, result.output
        return str(result.output)


pytestmark = pytest.mark.xdist_group("batch-dask")  # its own cluster: beside the other batch tests


def _people(count: int) -> list[dict[str, Any]]:
    return [
        {"identityMap": {"Email": [{"id": f"p{n}@x", "primary": True}]}, "tier": "gold"}
        for n in range(count)
    ]


@pytest.mark.parametrize(("engine", "workers"), [("local", "1"), ("local", "2"), ("dask", "2")])
async def test_a_bad_row_late_in_the_file_writes_nothing_anywhere(
    database: Any,
    make_app: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheduler: str,
    engine: str,
    workers: str,
) -> None:
    import offerbase.batch.run as run
    from conftest import make_tenant

    monkeypatch.setattr(run, "ROWS_PER_PARTITION", 10)  # the bad row is in the third partition
    monkeypatch.setenv("OFFERBASE_DATABASE_URL", database.url)  # restored after (the CLI sets it)
    monkeypatch.setenv("OFFERBASE_DATA_DIR", str(tmp_path / "data"))
    api = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as h:
        tenant = await make_tenant(api, h)
    command = Output(database.url, tmp_path / "data", tenant.org)
    document = tmp_path / "catalog.json"
    document.write_text(json.dumps(catalog_document()))
    await command("catalog", "import", str(document), "--org", tenant.org)
    rows = _people(30)
    rows[24] = {"identityMap": {"Email": [{"id": "", "primary": True}]}, "tier": "gold"}
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=10)
    on = ["--engine", engine, "--workers", workers]
    on += ["--scheduler", scheduler] if engine == "dask" else []

    async def decide(*args: str, code: int) -> str:
        return await command(
            "batch", "decide", "--org", tenant.org, "--output", str(tmp_path / "out"), *on, *args,
            code=code,
        )  # fmt: skip

    scope = ("--activity", "dec", "--placement", "web")
    text = await decide("--input", str(source), *scope, code=1)
    assert "row 25, /identityMap/Email/0/id: must be a string" in text
    assert nothing_published(tmp_path / "out")
    assert await _counters(database, tenant.org, "prod") == {}

    async def propositions() -> int:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://t"
        ) as h:
            got = await h.get(
                "/data/core/ods/reports", params={"groupBy": "activity"}, headers=tenant.headers
            )
        assert got.status_code == 200, got.text
        return sum(row["propositions"] for row in got.json()["results"])

    assert await propositions() == 0
    text = await decide("--input", str(source), "--activity", "dec", "--placement", "nope", code=1)
    assert "nope" in text
    assert nothing_published(tmp_path / "out")
    text = await decide("--input", str(tmp_path / "none.parquet"), *scope, code=2)
    assert "No such file" in text
    # the same rows without the bad one: decided, and counted in the reports
    good = tmp_path / "good.ndjson"
    good.write_bytes(b"\n".join(orjson.dumps(r) for r in _people(30)))
    await decide("--input", str(good), *scope, code=0)
    assert await propositions() == 30
