"""Route ``py:`` rule sources to the fake compiler of engine_helpers (see there)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import FakeExpr

from offerbase.engine import snapshot as snapshot_module


@pytest.fixture(autouse=True)
def fake_pql(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = snapshot_module._compile

    def compile_(source: str, kind: str, params: tuple[str, ...] = ()) -> Any:
        if source.startswith("py:"):
            return FakeExpr(source[3:].strip())
        return real(source, kind, params)

    monkeypatch.setattr(snapshot_module, "_compile", compile_)
    FakeExpr.calls = 0
    return
