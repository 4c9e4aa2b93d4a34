"""Table-driven tests: every case in cases.json is a source, its inputs and the expected
value or error (with 1-based line and column)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from offerbase.pql import PqlError, compile

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "cases.json").read_text())


def _id(case: dict[str, Any]) -> str:
    return case["source"][:60].replace("\n", " ") or "<empty>"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 300


@pytest.mark.parametrize("case", [c for c in CASES if "error" not in c], ids=_id)
def test_value(case: dict[str, Any]) -> None:
    expr = compile(case["source"], case["kind"])
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00")) if "now" in case else None
    got = expr.evaluate(
        case["profile"],
        offer=case.get("offer"),
        context=case.get("context"),
        params=case.get("params"),
        now=now,
    )
    expected = case["expect"]
    if case["kind"] == "rule":
        assert got is expected
    elif isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected
        assert type(got) is type(expected)


@pytest.mark.parametrize("case", [c for c in CASES if "error" in c], ids=_id)
def test_error(case: dict[str, Any]) -> None:
    want = case["error"]
    with pytest.raises(PqlError) as info:
        compile(case["source"], case["kind"])
    err = info.value
    assert want["message"] in err.message
    assert (err.line, err.column) == (want["line"], want["column"])
    assert err.excerpt in str(err)
