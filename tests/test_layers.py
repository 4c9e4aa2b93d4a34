"""The layering of docs/development.md, checked on the source: arrows point down only, and
`pql`, `catalog`, `engine` and `batch` stay pure (no I/O, no web or database framework)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "offerbase"

# What each part of the package may import from offerbase. `config`, `metrics` and `logs` are
# leaf utilities that any layer below the API may use. `regex` (the one regex engine for client
# patterns, RE2) is the single exception to "pql uses the standard library only": Python's `re`
# backtracks, and a rule's or a profile's pattern must not stall a decision.
ALLOWED = {
    "pql": {"regex"},
    "catalog": {"pql"},
    "engine": {"pql", "catalog"},
    # batch decisioning: pure like the engine, above it (polars and pyarrow are its own)
    "batch": {"engine", "catalog", "pql", "regex"},
    "store": {"catalog", "config", "metrics", "logs", "regex"},
    "regex": set(),
    "config": set(),
    "metrics": set(),
    "logs": set(),
    "api": {"batch", "engine", "catalog", "store", "pql", "config", "metrics", "logs", "regex"},
    # the CLI is the top: it may use every part, and no part may use it
    "cli": {
        *("api", "batch", "engine", "catalog", "store", "pql"),
        *("config", "metrics", "logs", "regex"),
    },
}
# Third-party and I/O modules the pure layers must not touch.
IMPURE = {"asyncio", "sqlalchemy", "fastapi", "starlette", "httpx", "redis", "asyncpg", "socket"}


def imports(path: Path) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved to offerbase.*)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            if module == "offerbase":  # `from offerbase import pql`
                found.update(f"offerbase.{alias.name}" for alias in node.names)
    return found


def part_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_arrows_point_down_only(part: str) -> None:
    files = (
        [SRC / f"{part}.py"] if (SRC / f"{part}.py").exists() else list((SRC / part).rglob("*.py"))
    )
    assert files
    wrong = {
        f"{path.relative_to(SRC)} imports {module}"
        for path in files
        for module in imports(path)
        if module.startswith("offerbase.")
        and module.split(".")[1] != part
        and module.split(".")[1] not in ALLOWED[part]
    }
    assert not wrong


def test_every_part_is_checked() -> None:
    parts = {part_of(path) for path in SRC.rglob("*.py")} - {"__init__", "__main__"}
    assert parts == set(ALLOWED)


def test_the_engine_reads_the_catalog_model_not_entity_json() -> None:
    """The engine -> catalog arrow is real, and no engine module names an entity body's member
    (those belong to catalog.load, the one reader of stored bodies)."""
    from offerbase.catalog.schema import Arr, Map, Node, Obj
    from offerbase.catalog.specs import SPECS

    members: set[str] = set()

    def walk(node: Node) -> None:
        if isinstance(node, Obj):
            members.update(node.fields)
            for sub in node.fields.values():
                walk(sub)
        elif isinstance(node, Arr):
            walk(node.items)
        elif isinstance(node, Map):
            walk(node.values)

    for spec in SPECS.values():
        walk(spec)
    # Words the engine uses in their own sense: trace events and fields, the request's pointer,
    # a profile's segment membership status.
    members -= {"fallback", "scope", "status", "itemCount"}
    engine = list((SRC / "engine").rglob("*.py"))
    assert any("offerbase.catalog" in imports(path) for path in engine)
    named = {
        f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}"
        for path in engine
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in members
    }
    assert not named


@pytest.mark.parametrize("part", ["pql", "catalog", "engine", "batch"])
def test_pure_layers_do_no_io(part: str) -> None:
    wrong = {
        f"{path.relative_to(SRC)} imports {module}"
        for path in (SRC / part).rglob("*.py")
        for module in imports(path)
        if module.split(".")[0] in IMPURE
    }
    assert not wrong
    if part == "pql":  # stdlib only (and offerbase.regex, see ALLOWED)
        third_party = {
            module
            for path in (SRC / part).rglob("*.py")
            for module in imports(path)
            if not module.startswith("offerbase")
            and module.split(".")[0] not in sys.stdlib_module_names
        }
        assert not third_party


def test_the_regex_engine_is_a_leaf_on_re2() -> None:
    """`offerbase.regex` may be used by pql because it is pure too: RE2 and the stdlib only."""
    outside = {
        module
        for module in imports(SRC / "regex.py")
        if module.split(".")[0] not in sys.stdlib_module_names
    }
    assert outside == {"re2"}


def test_only_the_app_and_its_services_know_the_admin_ui() -> None:
    """The admin UI (api/admin_ui, docs/admin-ui.md) sits on the API's services; the API's own
    routes never depend on it, so it could be left out without breaking them."""
    users_of_ui = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "admin_ui" not in path.parts
        and any(module.startswith("offerbase.api.admin_ui") for module in imports(path))
    }
    assert users_of_ui == {"api/app.py", "api/deps.py"}
