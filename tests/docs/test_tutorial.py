"""docs/tutorial.md and the README's walk-through, run as written: their `sh` blocks, in order, in
one bash session against a real `offerbase serve` started in an empty directory; each block's
output must be the `text` block that follows it. In the tutorial a block without one must print
nothing; the README's requests print Adobe's receipts (ids, dates), and only its decision is
compared. So neither can rot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from real_server import clean_environment, serving

ROOT = Path(__file__).parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
MARK = "@@tutorial-block-{}@@"


def blocks(page: Path) -> list[tuple[str, str | None]]:
    """(sh block, the text block after it or None), in document order; in the README, those of
    its walk-through section (the others install and test Offerbase)."""
    text = page.read_text()
    if page == README:
        start = text.index("## Walk-through with curl")
        text = text[start : text.index("\n## ", start + 1)]
    found: list[tuple[str, str | None]] = []
    for match in FENCE.finditer(text):
        language, body = match.groups()
        if language == "sh":
            found.append((body, None))
        elif language == "text" and found and found[-1][1] is None:
            found[-1] = (found[-1][0], body)
    return found


def test_the_tutorial_has_commands_and_outputs() -> None:
    found = blocks(TUTORIAL)
    assert len(found) >= 8
    assert sum(expected is not None for _, expected in found) >= 6


@pytest.mark.parametrize("page", [TUTORIAL, README], ids=lambda p: p.name)
def test_the_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    if shutil.which("jq") is None or shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but curl or jq is missing (apt-get install curl jq)")
        pytest.skip("the pages need curl and jq")
    env = clean_environment()
    with serving(cwd=tmp_path, env=env) as host:
        script = "\n".join(
            f"echo '{MARK.format(i)}'\n{body}" for i, (body, _) in enumerate(blocks(page))
        )
        run = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            # The pages run `offerbase` as a user would: the one installed beside this Python.
            env={**env, "HOST": host, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    outputs = re.split(r"@@tutorial-block-\d+@@\n", run.stdout)[1:]
    found = blocks(page)
    assert len(outputs) == len(found)
    if page == README:
        # The last block is the decision; every request before it must have succeeded.
        assert '"status":4' not in run.stdout.replace(" ", ""), run.stdout
        found = [block for block in found if block[1] is not None]
        outputs = outputs[-len(found) :]
        assert found
    for (body, expected), output in zip(found, outputs, strict=True):
        assert output == (expected or ""), f"after the block:\n{body}"
