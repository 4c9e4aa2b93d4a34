"""The benchmark scripts keep working: each runs with tiny sizes and reports its verdict lines.
Timings are printed, never asserted (machines are noisy; see docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a speed check: CI machines are shared
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pql_bench_runs() -> None:
    out = run("pql.py", env={"N": "20", "ROUNDS": "1"})
    assert "two-predicate rule <= 500 ns:" in out
    assert "107-char rule parses in <= 20 us:" in out


def test_engine_bench_runs() -> None:
    out = run("decide.py", "--runs", "1", "--n", "50")
    assert "catalog: 1000 offers, 100 rules, 10% capped" in out
    assert "median: p50" in out


def test_engine_bench_runs_with_a_ranking_strategy() -> None:
    out = run("decide.py", "--runs", "1", "--n", "50", "--ranking-strategy")
    assert "strategy p50" in out
    assert "strategy/priority p50 ratio" in out


def test_catalog_bench_runs(tmp_path: Path) -> None:
    # The filtered list page it times needs a few hundred offers to be full.
    out = run(
        "catalog.py",
        *("--backends", "sqlite", "--runs", "1", "--offers", "300"),
        *("--samples-write", "3", "--samples-read", "3", "--samples-list", "1"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "sqlite median of 1 runs (ms):" in out
    assert "list-next  p50" in out


def test_token_flood_bench_runs(tmp_path: Path) -> None:
    out = run(
        "token_flood.py",
        *("--runs", "1", "--seconds", "0.5", "--offers", "5", "--flood-clients", "2"),
        *("--load", "httpx"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "alone   (decisions/s):" in out
    assert "median: alone" in out
    assert "target <= 20%" in out


def test_batch_vector_bench_runs() -> None:
    out = run("batch_vector.py", "--profiles", "300", "--runs", "1")
    assert "masks agree" in out
    assert "vectorised, from Arrow" in out


def test_batch_bench_runs() -> None:
    out = run("batch.py", "--profiles", "300", "--no-api")
    assert "batch end to end:" in out
    assert "peak memory < 2 GiB:" in out


def test_batch_profile_bench_runs() -> None:
    out = run("batch_profile.py", "--profiles", "300", "--top", "5")
    assert "under cProfile" in out
    assert "function calls" in out


def test_reports_bench_runs(tmp_path: Path) -> None:
    out = run(
        "reports.py",
        *("--events", "2000", "--runs", "1", "--samples", "2", "--check", "1000"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "bulk fill check: the first 1,000 events give the same rollup rows both ways" in out
    assert "stored 2,000 events with their rollups" in out
    assert "30 days by offer,day under 1 s:" in out
    assert "an event is in the report within 5 s:" in out


def test_profiles_import_bench_runs(tmp_path: Path) -> None:
    out = run(
        "profiles_import.py",
        *("--profiles", "50", "--runs", "1", "--backends", "sqlite"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "sqlite run 1: 50 profiles, create" in out
    assert "sqlite median of 1: create" in out


def test_ai_ranking_bench_runs(tmp_path: Path) -> None:
    out = run("ai_ranking.py", "--small", env={"TMPDIR": str(tmp_path)})
    assert "five offers, CTR 1%-5% (300 displays each)" in out
    assert "auto-optimization serves the best offer to >= 80% of the model arm:" in out
    assert "personalized CTR >= 20% above auto-optimization's:" in out


def test_admin_bench_runs(tmp_path: Path) -> None:
    out = run(
        "admin.py",
        *("--backends", "sqlite", "--runs", "1", "--offers", "30", "--samples", "2"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "sqlite median of 1 runs (ms):" in out
    assert "simulation all" in out
    assert "simulation 50 / API decision 50" in out
    assert "every page p95 < 100 ms:" in out
    # The medians as docs/benchmarks.md's table, to paste.
    assert "| page | SQLite p50 | SQLite p95 |" in out
    assert "| Decision builder (the 30-offer decision) | " in out


def test_batch_engines_bench_runs() -> None:
    out = run(
        "batch_engines.py",
        *("--profiles", "400", "--partition", "100", "--runs", "1"),
        *("--engines", "pool,dask,run-local,run-dask"),
    )
    assert "400 profiles, partitions of 100, 1 runs" in out
    assert "run-dask" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_ingest_effect_bench_runs(tmp_path: Path) -> None:
    out = run(
        "ingest_effect.py",
        *("--duration", "1", "--rounds", "1", "--offers", "5", "--rate", "50"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "event stream: target 50/s, reached median" in out
    stored = re.search(r"in the report after the runs: displays (\d+), clicks (\d+)", out)
    assert stored is not None
    assert int(stored.group(1)) > 0  # the events were stored and counted, not only answered
    assert "with / without events: median" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_ingest_effect_bench_stream_mode_runs(tmp_path: Path) -> None:
    out = run(
        "ingest_effect.py",
        *("--mode", "stream", "--duration", "2", "--rounds", "1", "--offers", "5", "--rate", "400"),
        env={"TMPDIR": str(tmp_path)},
    )
    assert "server CPU per event: median" in out
    found = re.search(
        r"events sent (\d+) \(with the warm-up's\); in the report: displays (\d+), clicks (\d+)",
        out,
    )
    assert found is not None, out
    assert 0 < int(found.group(1)) <= int(found.group(2)) + int(found.group(3))


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_ingest_effect_bench_interact_mode_runs(tmp_path: Path) -> None:
    out = run(
        "ingest_effect.py",
        *("--mode", "interact", "--duration", "1", "--rounds", "1", "--offers", "5"),
        *("--connections", "2"),
        env={"TMPDIR": str(tmp_path)},
    )
    found = re.search(
        r"displays carried (\d+) \(with the warm-up's\); in the report: displays (\d+)", out
    )
    assert found is not None, out
    # Every display carried by an answered request is stored (those still in flight when wrk
    # stopped may be too).
    assert 0 < int(found.group(1)) <= int(found.group(2))
    assert "per carried event" in out
    assert "with / without events: median" in out


def test_ranking_learner_bench_runs(tmp_path: Path) -> None:
    out = run(
        "ranking_learner.py", "--events", "200", "--rounds", "1", env={"TMPDIR": str(tmp_path)}
    )
    assert "queue cost: storing feedback takes" in out
    assert "learner: 200 of 200 queued displays learned" in out
