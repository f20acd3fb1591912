"""`commtel dashboards export DIR` and the bundle's installed (wheel) and checkout layouts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from pathlib import Path

import pytest
import yaml

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


def _raw_selectors(text: str) -> list[tuple[str | None, dict[str, tuple[str, str]]]]:
    """Selectors of commtel metrics and ``up`` (recorded series excluded) in *text*."""
    from tests.ops.bundle import selectors

    return [(name, m) for name, m in selectors(text) if name is None or name == "up" or name.startswith("commtel_")]


def test_export_with_a_selector_scopes_every_rule_and_dashboard_query(tmp_path: Path) -> None:
    """--selector adds its matchers to every commtel metric and up; the rules still pass promtool."""
    import json

    from tests.harness.procs import need_binary
    from tests.ops.bundle import metric_names

    assert main(["dashboards", "export", str(tmp_path), "--selector", '{job="myapp", env!="dev"}']) == 0
    rules = sorted((tmp_path / "dashboards" / "prometheus").glob("*.rules.yml"))
    exprs = [r["expr"] for path in rules for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    boards = [json.loads(p.read_text()) for p in (tmp_path / "dashboards" / "grafana").glob("*.json")]
    exprs += [t["expr"] for b in boards for p in b["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for b in boards for v in b["templating"]["list"] if v["type"] == "query"]
    raw = [n for e in exprs for n in metric_names(e) if n == "up" or n.startswith("commtel_")]
    assert "up" in raw and "commtel_build_info" in raw
    for expr in exprs:
        for name, matchers in _raw_selectors(expr):
            assert matchers.get("job") == ("=", '"myapp"') and matchers.get("env") == ("!=", '"dev"'), (name, expr)
        for name in metric_names(expr):
            if name == "up" or name.startswith("commtel_"):
                assert re.search(rf"{name}\{{", expr), (name, expr)
    assert not (tmp_path / "dashboards" / "prometheus" / "tests").exists()
    promtool = need_binary("promtool", "prometheus")
    done = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_export_with_a_runbook_base_links_every_alert_there_and_keeps_the_unit_tests_green(tmp_path: Path) -> None:
    """--runbook-base rewrites each runbook_url (and the unit tests' expectations); promtool tests still pass."""
    from tests.harness.procs import need_binary

    base = "https://wiki.example.com/ops/commtel-runbooks"
    assert main(["dashboards", "export", str(tmp_path), "--runbook-base", base]) == 0
    alerts = yaml.safe_load((tmp_path / "dashboards" / "prometheus" / "alerts.rules.yml").read_text())
    urls = {r["alert"]: r["annotations"]["runbook_url"] for g in alerts["groups"] for r in g["rules"]}
    assert urls and all(url == f"{base}#{name.lower()}" for name, url in urls.items())
    tests = tmp_path / "dashboards" / "prometheus" / "tests" / "alerts.test.yml"
    promtool = need_binary("promtool", "prometheus")
    done = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("selector", ["job=myapp", 'job="a" or 1', "{}", 'job="a"}'])
def test_export_refuses_a_selector_that_is_not_label_matchers(
    tmp_path: Path, selector: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad selector is a clear error naming the expected form, and nothing is written."""
    assert main(["dashboards", "export", str(tmp_path / "out"), "--selector", selector]) == 2
    assert "label matchers such as" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="runbook_base must be an http"):
        export_bundle(tmp_path / "out", runbook_base="docs/runbooks.md")
