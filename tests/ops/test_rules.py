"""Prometheus rules and config: promtool checks, unit tests per alert, runbooks, contract names."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.harness.procs import need_binary
from tests.ops.bundle import (
    OPS_DOC,
    PROMETHEUS_YML,
    RULE_FILES,
    RULE_TESTS,
    alert_rules,
    check_expression,
    load_yaml,
    panel_queries,
    recording_rules,
)


SEVERITIES = {"critical", "warning", "info"}
RUNBOOK = "https://github.com/commtel/commtel/blob/main/docs/ops.md#"
REQUIRED_ALERTS = {
    "CommtelRetryStorm",
    "CommtelRetriesExhausted",
    "CommtelSustainedThrottling",
    "CommtelServerThrottling",
    "CommtelCircuitOpenTooLong",
    "CommtelCircuitFlapping",
    "CommtelOAuthRefreshFailing",
    "CommtelTokenExpiringWithoutRefresh",
    "CommtelRateLimitBackendErrors",
}


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
    """`promtool test rules` passes for every rule test file."""
    assert RULE_TESTS
    out = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert "FAILED" not in out


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """The promtool tests expect each alert to fire in one case and stay quiet in another."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        spec = load_yaml(path)
        assert {str((path.parent / f).resolve()) for f in spec["rule_files"]} == {str(p) for p in RULE_FILES}
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == set(alert_rules())
    assert quiet == set(alert_rules())


def test_required_alerts_exist_with_severity_and_annotations() -> None:
    """Each required alert exists; every alert has a severity, summary, description and runbook URL."""
    alerts = alert_rules()
    assert REQUIRED_ALERTS <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook_url"] == RUNBOOK + name.lower(), name


def test_every_runbook_url_has_a_section_in_the_ops_doc() -> None:
    """The runbook anchor of every alert is a heading in docs/ops.md that explains it."""
    text = OPS_DOC.read_text()
    anchors = {_github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", text, re.MULTILINE)}
    for name, rule in alert_rules().items():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"docs/ops.md has no section for {name}"
        section = text.split(f"### {name}", 1)[1].split("\n### ", 1)[0]
        for part in ("What it means", "How to check", "What to do"):
            assert part in section, f"runbook of {name} lacks '{part}'"


def test_rule_expressions_select_contract_metrics_only() -> None:
    """Every rule selects contract metrics (or recorded series) with labels those series carry."""
    problems = {
        name: check_expression(expr)
        for name, expr in {**recording_rules(), **{a: r["expr"] for a, r in alert_rules().items()}}.items()
    }
    assert {name: p for name, p in problems.items() if p} == {}


def test_every_recording_rule_is_used() -> None:
    """Each recording rule feeds a panel, an alert or another recording rule (no dead series)."""
    recorded = recording_rules()
    # A recording rule never selects its own name, so all of them can count as users.
    users = [q.expr for q in panel_queries()] + [r["expr"] for r in alert_rules().values()] + list(recorded.values())
    unused = {name for name in recorded if not any(re.search(rf"{re.escape(name)}\b", u) for u in users)}
    assert unused == set()


def test_recording_rule_names_follow_the_convention() -> None:
    """Recorded series are named commtel:<what>:<how> and never collide with contract metrics."""
    for name in recording_rules():
        assert re.fullmatch(r"commtel:[a-z0-9_]+:[a-z0-9_]+", name), name
