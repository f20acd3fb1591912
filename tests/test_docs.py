"""Every ```python block of README.md and docs/*.md runs as written, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[ \t]*(?P<flags>[^\n]*)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not path.exists():
            continue
        text = path.read_text()
        for match in FENCE.finditer(text):
            if "no-run" in match.group("flags"):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group("code")))
    return found


BLOCKS = _blocks()


def test_docs_have_examples() -> None:
    """README.md carries runnable examples."""
    assert any(name.startswith("README.md") for name, _ in BLOCKS)


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_code_block_runs(where: str, code: str, tmp_path: Path) -> None:
    """The block exits 0 when run as a script."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, f"{where} failed:\n{result.stdout}\n{result.stderr}"
