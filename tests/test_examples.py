"""Every script in examples/ runs as written, in a fresh interpreter, and proves its point."""

from __future__ import annotations

import os
import subprocess
import sys

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Each example ends with an "OK: ..." line once its own checks passed; these say what was proven.
PHRASES = {
    "async_client.py": "carried its own task's correlation id",
    "batch_job.py": "2 items failed and were recorded",
    "chat_bot.py": "recovered through a probe",
    "email_sender.py": "one 451 retried",
    "instrument_httpx.py": "rode out the 503 burst",
    "social_client.py": "one 429, then zero",
}


def test_examples_exist() -> None:
    """There are examples to run."""
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    """The example exits 0 and reports that its checks passed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC", "COMMTEL_"))}
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout}\n{result.stderr}"
    assert "OK: " in result.stdout, result.stdout
    assert PHRASES.get(path.name, "OK: ") in result.stdout, result.stdout
