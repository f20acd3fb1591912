"""`commtel dashboards export DIR` and the bundle's installed (wheel) and checkout layouts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

from commtel._bundle import bundle_root, export_bundle
from commtel.cli import main
from tests.ops.bundle import ROOT


def _bundle_files(root: Path) -> dict[str, bytes]:
    files = [root / "otel-collector.yaml", *(p for p in (root / "dashboards").rglob("*") if p.is_file())]
    return {str(p.relative_to(root)): p.read_bytes() for p in files if "__pycache__" not in p.parts}


def test_export_writes_the_whole_bundle(tmp_path: Path) -> None:
    """Export copies every dashboard, rule, test and config file byte for byte and lists them."""
    written = export_bundle(tmp_path / "ops")
    assert written == sorted(written)
    assert all(path.is_file() for path in written)
    assert _bundle_files(tmp_path / "ops") == _bundle_files(ROOT)
    assert {str(p.relative_to(tmp_path / "ops")) for p in written} == set(_bundle_files(ROOT))


def test_export_overwrites_bundle_files_and_keeps_others(tmp_path: Path) -> None:
    """A second export refreshes bundle files and leaves the user's own files alone."""
    export_bundle(tmp_path)
    (tmp_path / "otel-collector.yaml").write_text("edited\n")
    (tmp_path / "dashboards" / "mine.json").write_text("{}\n")
    export_bundle(tmp_path)
    assert (tmp_path / "otel-collector.yaml").read_bytes() == (ROOT / "otel-collector.yaml").read_bytes()
    assert (tmp_path / "dashboards" / "mine.json").read_text() == "{}\n"


def test_export_refuses_a_file_as_target(tmp_path: Path) -> None:
    """Exporting onto an existing file raises instead of writing anything."""
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError):
        export_bundle(target)


def test_cli_exports_and_prints_each_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`commtel dashboards export DIR` writes the bundle and prints one path per line."""
    assert main(["dashboards", "export", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert str(tmp_path / "otel-collector.yaml") in printed
    assert len(printed) == len(_bundle_files(ROOT))


def test_editable_install_reads_the_checkout() -> None:
    """Without an installed copy, the bundle comes from the repository checkout."""
    assert bundle_root() == ROOT


def test_wheel_layout_reads_the_installed_copy(tmp_path: Path) -> None:
    """Laid out like the wheel (pyproject force-include), the package exports its own copy."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[tool.hatch.build.targets.wheel.force-include]", 1)[1].split("\n[", 1)[0]
    includes = dict(re.findall(r'^"([^"]+)"\s*=\s*"([^"]+)"', section, re.MULTILINE))
    assert includes, "pyproject.toml force-includes nothing into the wheel"
    site = tmp_path / "site"
    shutil.copytree(ROOT / "commtel", site / "commtel", ignore=shutil.ignore_patterns("__pycache__"))
    for source, destination in includes.items():
        copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copyfile
        copy(ROOT / source, site / destination)
    script = (
        "import sys; from commtel._bundle import bundle_root, export_bundle;"
        "print(bundle_root()); print(len(export_bundle(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        timeout=60,
        check=True,
    )
    root, count = done.stdout.split()
    assert Path(root) == site / "commtel" / "_bundle"
    assert int(count) == len(_bundle_files(ROOT))
    assert _bundle_files(tmp_path / "out") == _bundle_files(ROOT)
