"""Prometheus rules and config: promtool checks, unit tests per alert, runbooks, contract names, service identity."""

from __future__ import annotations

import re
import subprocess
import sys

from pathlib import Path

import pytest

from commtel._bundle import RUNBOOK_BASE
from tests.harness.procs import need_binary
from tests.ops.bundle import (
    PROMETHEUS_YML,
    ROOT,
    RULE_FILES,
    RULE_TESTS,
    alert_rules,
    check_expression,
    load_yaml,
    panel_queries,
    recorded_labels,
    recording_rules,
    rule_groups,
)


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SEVERITIES = {"critical", "warning", "info"}
RUNBOOKS = ROOT / "docs" / "runbooks.md"
REQUIRED_ALERTS = {
    "CommtelTargetDown",
    "CommtelMetricsAbsent",
    "CommtelRetryStorm",
    "CommtelRetriesExhausted",
    "CommtelSustainedThrottling",
    "CommtelServerThrottling",
    "CommtelCircuitOpen",
    "CommtelCircuitFlapping",
    "CommtelOAuthRefreshFailing",
    "CommtelTokenExpiringWithoutRefresh",
    "CommtelRateLimitBackendErrors",
    "CommtelCircuitBackendErrors",
    "CommtelRetryBudgetBackendErrors",
    "CommtelLoadShedding",
    "CommtelDependencySlowing",
    "CommtelFaultsInjected",
}
# Alerts that must fire within 3 minutes of a sustained condition: window + `for` + one evaluation.
FAST_ALERTS = {"CommtelRetryStorm", "CommtelSustainedThrottling", "CommtelCircuitOpen"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return need_binary("promtool", "prometheus")


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


def test_promtool_check_rules(promtool: str) -> None:
    """`promtool check rules` accepts every rule file."""
    assert RULE_FILES
    out = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES)


def test_promtool_check_config_resolves_rule_files(promtool: str) -> None:
    """`promtool check config` accepts prometheus.yml and finds every rule file it names."""
    out = _run(promtool, "check", "config", str(PROMETHEUS_YML))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out


def test_promtool_unit_tests_pass(promtool: str) -> None:
    """`promtool test rules` passes for every rule test file (firing, quiet, timing and first-event cases)."""
    assert RULE_TESTS
    out = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert "FAILED" not in out


def _alert_checks() -> list[tuple[str, str, bool]]:
    """(test case name, alert name, expects alerts) of every promtool alert check."""
    out = []
    for path in RULE_TESTS:
        spec = load_yaml(path)
        assert {str((path.parent / f).resolve()) for f in spec["rule_files"]} == {str(p) for p in RULE_FILES}
        for case in spec["tests"]:
            out += [(case["name"], c["alertname"], bool(c["exp_alerts"])) for c in case.get("alert_rule_test", [])]
    return out


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """The promtool tests expect each alert to fire in one case and stay quiet in another."""
    checks = _alert_checks()
    assert {alert for _, alert, fires in checks if fires} == set(alert_rules())
    assert {alert for _, alert, fires in checks if not fires} == set(alert_rules())


def test_the_timing_and_first_event_cases_exist() -> None:
    """Fire-within-3-minutes and clear cases for the fast alerts; first-event cases for counters born at 0."""
    cases = {name for name, _, _ in _alert_checks()}
    for alert in FAST_ALERTS:
        assert any(a == alert and "within 3 minutes" in name for name, a, _ in _alert_checks()), alert
    assert any("first trip of a counter that starts at 0" in name for name in cases)
    assert any("first failed refresh" in name for name in cases)
    assert any("start-up" in name for name in cases)


def test_fast_alerts_can_fire_within_3_minutes() -> None:
    """Window plus `for` of the retry-storm, throttling and breaker-open alerts stays within 3 minutes."""
    recorded = recording_rules()
    for name in FAST_ALERTS:
        rule = alert_rules()[name]
        expr = rule["expr"]
        used, seen = [expr], set()
        while unseen := [r for r in recorded if r not in seen and any(r in e for e in used)]:
            seen.update(unseen)
            used += [recorded[r] for r in unseen]
        windows = [_duration_s(w) for e in used for w in re.findall(r"\[(\w+)\]", e)]
        assert windows, name
        assert max(windows) + _duration_s(rule.get("for", "0s")) <= 240, name  # the window fills in part of it
        assert _duration_s(rule.get("for", "0s")) <= 120, name


def test_required_alerts_exist_with_severity_annotations_and_runbook() -> None:
    """Each required alert exists with a severity, summary, description and a runbook_url under the declared base."""
    alerts = alert_rules()
    assert set(alerts) == REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{name.lower()}", name


def test_the_runbook_base_is_declared_in_the_package_metadata() -> None:
    """runbook_url points at docs/runbooks.md under the Runbooks URL pyproject declares (not a host named nowhere)."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Runbooks"] == RUNBOOK_BASE
    assert RUNBOOK_BASE.startswith(urls["Repository"]) and RUNBOOK_BASE.endswith("/docs/runbooks.md")


def test_every_runbook_url_has_a_section_in_the_runbooks_doc() -> None:
    """The anchor of every runbook_url is a heading of docs/runbooks.md that explains the alert."""
    text = RUNBOOKS.read_text()
    anchors = {_github_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", text, re.MULTILINE)}
    for name, rule in alert_rules().items():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"docs/runbooks.md has no section for {name}"
        section = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("What it means", "How to check", "What to do"):
            assert part in section, f"runbook of {name} lacks '{part}'"
    sections = set(re.findall(r"^## (Commtel\w+)$", text, re.MULTILINE))
    assert sections == set(alert_rules()), "a runbook without its alert, or an alert without its runbook"


def test_rule_expressions_select_contract_metrics_only() -> None:
    """Every rule selects contract metrics (or recorded series) with labels and label values those series carry."""
    problems = {
        name: check_expression(expr)
        for name, expr in {**recording_rules(), **{a: r["expr"] for a, r in alert_rules().items()}}.items()
    }
    assert {name: p for name, p in problems.items() if p} == {}


def test_every_rule_keeps_job_and_instance() -> None:
    """Every aggregation and every vector match of every rule keeps job and instance (no services merge)."""
    for name, expr in {**recording_rules(), **{a: r["expr"] for a, r in alert_rules().items()}}.items():
        if expr.strip().startswith("absent("):
            continue  # absent() has labels only from its selector
        for keyword, labels in re.findall(r"\b(by|on)\s*\(([^()]*)\)", expr):
            kept = {label.strip() for label in labels.split(",")}
            assert {"job", "instance"} <= kept, f"{name}: {keyword} ({labels}) drops job/instance"
        assert not re.search(r"\b(without|ignoring)\s*\(", expr), name
        assert not re.search(r"\b(sum|min|max|count|avg|group|topk|bottomk)\s*\(", expr), (
            f"{name}: aggregates without by"
        )


def test_every_recording_rule_is_used() -> None:
    """Each recording rule feeds a panel, an alert or another recording rule (no dead series)."""
    recorded = recording_rules()
    users = [q.expr for q in panel_queries()] + [r["expr"] for r in alert_rules().values()] + list(recorded.values())
    unused = {name for name in recorded if not any(re.search(rf"{re.escape(name)}\b", u) for u in users)}
    assert unused == set()


def test_recording_rule_names_follow_level_metric_operations() -> None:
    """level:metric:operations, the level being exactly the labels of the rule's `by`, job and instance first."""
    for name, expr in recording_rules().items():
        match = re.fullmatch(r"([a-z_]+):(commtel_[a-z_]+):([a-z0-9_]+)", name)
        assert match, name
        first_by = re.search(r"\bby\s*\(([^()]*)\)", expr)
        assert first_by, name
        assert recorded_labels(name) == [label.strip() for label in first_by.group(1).split(",")], name
        assert recorded_labels(name)[:2] == ["job", "instance"], name
        window = re.search(r"\[(\w+)\]", expr)
        assert window is None or name.endswith(window.group(1)), f"{name}: operations name the window"


def test_rule_expressions_are_block_scalars() -> None:
    """Every `expr:` is a YAML block scalar, so an export can add selectors line by line safely."""
    for path in RULE_FILES:
        for line in Path(path).read_text().splitlines():
            if line.strip().startswith("expr:"):
                assert line.strip() in {"expr: |", "expr: >-"}, f"{path.name}: {line.strip()}"
    assert all(group["rules"] for group in rule_groups())
