"""Package surface: version, console script, typed marker, policy/telemetry separation."""

from __future__ import annotations

import ast
import subprocess
import sys

from importlib.metadata import version
from pathlib import Path

import commtel


ROOT = Path(__file__).resolve().parents[1]


def test_version_comes_from_package_metadata() -> None:
    """commtel.__version__ is the installed distribution's version."""
    assert commtel.__version__ == version("commtel")


def test_console_script_lists_subcommands() -> None:
    """`commtel --help` names every subcommand."""
    out = subprocess.run([sys.executable, "-m", "commtel", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("version", "demo", "dashboards"):
        assert command in out


def test_package_is_typed() -> None:
    """The py.typed marker ships with the package."""
    assert (ROOT / "commtel" / "py.typed").exists()


def test_policies_import_no_telemetry_library() -> None:
    """Modules under commtel/policies never import opentelemetry or prometheus_client."""
    offenders = []
    for path in (ROOT / "commtel" / "policies").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level:
                    names = [f"{'.' * node.level}{node.module or ''}"]
            for name in names:
                if name.startswith(("opentelemetry", "prometheus_client")) or "telemetry" in name:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_public_names_exist() -> None:
    """Every name in commtel.__all__ exists (ruff RUF022 keeps the list sorted)."""
    for name in commtel.__all__:
        assert hasattr(commtel, name), name
