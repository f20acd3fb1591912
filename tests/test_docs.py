"""Every ```python block of README.md and docs/*.md runs as written, in a fresh interpreter, and asserts.

Blocks that use Redis read ``REDIS_URL``, pointed here at the session's real redis-server.
The docs also stay within the public API and stand alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages for people working on commtel itself, which describe its private modules.
CONTRIBUTOR_PAGES = ("docs/contributing.md", "docs/architecture.md", "docs/mutation.md")


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group("code")))
    return found


BLOCKS = _blocks()


def test_docs_have_examples() -> None:
    """README.md carries runnable examples."""
    assert any(name.startswith("README.md") for name, _ in BLOCKS)


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_code_block_runs(where: str, code: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The block exits 0 when run as a script, and checks its own outcome with assert."""
    assert re.search(r"^\s*assert\b", code, re.MULTILINE), f"{where} asserts nothing"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
    if "REDIS_URL" in code:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, f"{where} failed:\n{result.stdout}\n{result.stderr}"


def test_user_docs_name_only_public_modules() -> None:
    """README and the user pages never send readers to a private module (``commtel.x._y``)."""
    private = re.compile(r"commtel(?:\.[a-z]\w*)*\._\w+")
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in DOCS
        if str(path.relative_to(ROOT)) not in CONTRIBUTOR_PAGES
        for match in private.finditer(path.read_text())
    ]
    assert found == []


def test_the_project_stands_alone() -> None:
    """No tracked file cites a design document or shared folder outside the repository."""
    needles = ("DESIGN" + ".md", "../" + "shared", "NOTES" + ".md")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if (
            path.suffix not in {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".cfg", ".txt", ""}
            or not path.is_file()
        ):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {needle}" for needle in needles if needle in text]
    assert offenders == []
