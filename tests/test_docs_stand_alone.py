"""The repository stands alone: no document, comment or test cites a file that is not in it
(a design note or a reference folder of the team's workspace, an absolute workspace path, a
section number of a document the reader does not have). Standards are cited by their name
(`RFC 6902 §4.6`), Adobe's pages by title or address."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
OUTSIDE = re.compile(
    r"shared/(?:seeds|reference)"
    r"|DESIGN\.md"
    r"|\breference/[\w-]+\.md"
    r"|/work/"
    # A section sign belongs to a named standard: `RFC 6749 §2.3.1`.
    r"|(?<!RFC \d{4} )(?<!RFC \d{3} )§\s?\d"
)
FILES = sorted(
    path
    for pattern in (
        "README.md",
        "docs/*.md",
        "src/**/*.py",
        "tests/**/*.py",
        "bench/*.py",
        "scripts/*",
        ".ci/*",
        "pyproject.toml",
    )
    for path in ROOT.glob(pattern)
    if path.is_file() and path != Path(__file__) and "node_modules" not in path.parts
)


def test_the_scan_covers_the_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in FILES}
    assert {"README.md", "docs/development.md", "src/offerbase/cli.py", "scripts/test"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_citation_of_a_file_outside_the_repository(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if OUTSIDE.search(line)]
    assert found == []
