"""Every dashboard panel and every rule, evaluated by a real Prometheus scraping live metrics."""

from __future__ import annotations

import math
import time

import pytest

from tests.harness.procs import need_binary
from tests.harness.prometheus import PrometheusServer
from tests.harness.waiting import eventually
from tests.ops.bundle import (
    alert_rules,
    panel_queries,
    parse_label_values,
    recording_rules,
    substitute,
    variable_queries,
)


pytestmark = pytest.mark.slow
_DEADLINE_S = 40.0


@pytest.fixture(scope="module")
def loaded(running_demo, metrics_target: str) -> PrometheusServer:
    """The session's Prometheus, scraping the demo with the bundle's rules since the demo started."""
    if running_demo.alerting is None:
        need_binary("prometheus", "prometheus")
    prometheus = running_demo.alerting.prometheus
    assert prometheus.targets == [metrics_target]
    # Two scrapes for rate(), then one rule evaluation on top of them.
    assert prometheus.wait_for(
        "job_instance_operation_platform:commtel_retry_attempts_per_call:ratio_rate2m", timeout=30
    ), "no scrape landed"
    return prometheus


def _has_value(result: list[dict]) -> bool:
    return any(not math.isnan(float(sample["value"][1])) for sample in result)


def _eventually(prometheus: PrometheusServer, expr: str, deadline: float) -> list[dict]:
    found: list[dict] = []

    def has_value() -> bool:
        found[:] = prometheus.query(expr)
        return _has_value(found)

    eventually(has_value, timeout=deadline - time.monotonic(), interval=0.5)
    return found


def test_every_panel_query_returns_data(loaded: PrometheusServer) -> None:
    """Each panel expression, with Grafana variables at "All", parses and returns a number."""
    deadline = time.monotonic() + _DEADLINE_S
    empty = [str(q) for q in panel_queries() if not _has_value(_eventually(loaded, substitute(q.expr), deadline))]
    assert empty == []


def test_every_variable_query_lists_values(loaded: PrometheusServer) -> None:
    """Each label_values() variable finds label values in the scraped series."""
    missing = []
    for board, name, query in variable_queries():
        selector, label = parse_label_values(query)
        params = {"match[]": substitute(selector)} if selector else {}
        if not loaded.api(f"label/{label}/values", **params):
            missing.append(f"{board} ${name}: {query}")
    assert missing == []


def test_every_rule_expression_parses_and_recordings_return_data(loaded: PrometheusServer) -> None:
    """Alert expressions are valid PromQL; recording expressions also yield samples."""
    deadline = time.monotonic() + _DEADLINE_S
    for rule in alert_rules().values():
        loaded.query(rule["expr"])  # raises on a parse error
    empty = [name for name, expr in recording_rules().items() if not _has_value(_eventually(loaded, expr, deadline))]
    assert empty == []


def test_rules_load_and_evaluate_without_errors(loaded: PrometheusServer) -> None:
    """Prometheus loaded every rule of the bundle and evaluates each one healthily."""
    groups = loaded.api("rules")["groups"]
    by_name = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(by_name) == set(recording_rules()) | set(alert_rules())
    assert {name: r["health"] for name, r in by_name.items() if r["health"] != "ok"} == {}


def test_latency_panels_carry_trace_exemplars(loaded: PrometheusServer) -> None:
    """Exemplar-enabled latency queries return exemplars whose trace_id Grafana links to Jaeger."""
    now = time.time()
    queries = [q for q in panel_queries() if q.exemplar]
    assert queries
    for query in queries:
        found = loaded.api("query_exemplars", query=substitute(query.expr), start=str(now - 300), end=str(now + 5))
        trace_ids = [e["labels"].get("trace_id", "") for series in found for e in series["exemplars"]]
        assert trace_ids, f"no exemplars for {query}"
        assert all(len(t) == 32 for t in trace_ids)
