from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

import offerbase


class FakePqlError(Exception):
    def __init__(self, message: str, line: int, column: int, excerpt: str = "") -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.excerpt = message, line, column, excerpt


@dataclass
class FakeCompiled:
    profile_paths: frozenset[str]


@pytest.fixture
def fake_pql(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Replace offerbase.pql with a stub: 'BAD' in a value is a syntax error at 1:5;
    words after 'profile.' are reported as profile paths. Yields the calls made."""
    calls: list[tuple[str, str]] = []

    def check(value: str, mode: str) -> FakeCompiled:
        calls.append((value, mode))
        if "BAD" in value:
            raise FakePqlError("unexpected token 'BAD'", 1, 5, value[:10])
        paths = {word[len("profile.") :] for word in value.split() if word.startswith("profile.")}
        return FakeCompiled(frozenset(paths))

    module = types.ModuleType("offerbase.pql")
    module.check = check  # type: ignore[attr-defined]
    module.PqlError = FakePqlError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "offerbase.pql", module)
    # `from offerbase import pql` reads the package attribute once the real module is loaded.
    monkeypatch.setattr(offerbase, "pql", module, raising=False)
    return calls
