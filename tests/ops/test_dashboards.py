"""Grafana dashboards and provisioning: structure, datasource variable, queries against the contract."""

from __future__ import annotations

import json
import re

from typing import Any

import pytest

from commtel.telemetry._metrics import SPECS
from tests.ops.bundle import (
    DASHBOARDS,
    DATASOURCE,
    GRAFANA,
    check_expression,
    dashboards,
    load_yaml,
    metric_names,
    panel_queries,
    panels,
    parse_label_values,
    recording_rules,
    selectors,
    variable_queries,
    variables_used,
)


BOARDS = dashboards()
EXPECTED = {"overview", "ratelimit", "retries", "breakers", "oauth", "messages-tasks", "resilience"}


def _datasources() -> dict[str, dict[str, Any]]:
    files = sorted((DASHBOARDS / "provisioning" / "datasources").glob("*.yaml"))
    return {ds["type"]: ds for path in files for ds in load_yaml(path)["datasources"]}


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (json path, value) pair of a JSON document."""
    if isinstance(node, dict):
        return [pair for key, value in node.items() for pair in _walk(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [pair for i, value in enumerate(node) for pair in _walk(value, f"{path}[{i}]")]
    return [(path, node)]


def test_every_area_has_a_dashboard_with_a_fixed_uid() -> None:
    """One dashboard per area, each with a fixed, unique uid matching its file name, tagged commtel."""
    assert {name.removeprefix("commtel-").removesuffix(".json") for name in BOARDS} == EXPECTED
    for name, board in BOARDS.items():
        assert board["uid"] == name.removesuffix(".json"), name
        assert len(board["uid"]) <= 40
        assert board.get("id") is None
        assert "commtel" in board["tags"]
        assert board["title"].startswith("commtel / ")
    assert len({b["title"] for b in BOARDS.values()}) == len(BOARDS)


def test_no_import_placeholders_or_hard_coded_datasource_uids() -> None:
    """File provisioning fills no __inputs or ${DS_...}; every datasource uid is the variable."""
    for name, board in BOARDS.items():
        assert "__inputs" not in board, name
        text = (GRAFANA / name).read_text()
        assert "${DS_" not in text, name
        for path, value in _walk(board):
            if path.endswith(".datasource.uid"):
                assert value == DATASOURCE, f"{name}{path} = {value!r}"


def test_datasource_variable_is_a_prometheus_datasource_picker() -> None:
    """Each dashboard's first variable is `datasource` of type datasource querying prometheus."""
    for name, board in BOARDS.items():
        first = board["templating"]["list"][0]
        assert (first["name"], first["type"], first["query"]) == ("datasource", "datasource", "prometheus"), name


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    """Panels and their queries all point at ${datasource}."""
    for name, board in BOARDS.items():
        for panel in panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE, (name, panel["title"])
        for var in board["templating"]["list"][1:]:
            assert var["datasource"]["uid"] == DATASOURCE, (name, var["name"])


def test_panel_ids_are_unique_and_grid_positions_valid() -> None:
    """Panel ids are unique per dashboard; panels fit the 24-column grid without overlapping."""
    for name, board in BOARDS.items():
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in panels(board):
            pos = panel["gridPos"]
            assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), (name, panel["title"])
            assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0, (name, panel["title"])
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{name}: {panel['title']} overlaps another panel"
            cells |= mine


def test_panels_are_documented() -> None:
    """Every panel has a title and a description for the engineer on call."""
    for name, board in BOARDS.items():
        for panel in panels(board):
            assert panel["title"].strip() and panel.get("description", "").strip(), (name, panel.get("title"))


@pytest.mark.parametrize("query", panel_queries(), ids=str)
def test_panel_queries_select_contract_metrics_only(query: Any) -> None:
    """Every series a panel selects is a contract metric (or our recording rule) with its real labels."""
    assert metric_names(query.expr), query
    assert check_expression(query.expr) == []


def test_every_contract_metric_is_on_a_dashboard() -> None:
    """Each contract metric is drawn by a panel (directly or through a recording rule) or lists a variable's values."""
    rules = recording_rules()
    selected = [query.expr for query in panel_queries()]
    selected += [selector for _, _, query in variable_queries() if (selector := parse_label_values(query)[0])]
    used: set[str] = set()
    for expr in selected:
        for name in metric_names(expr):
            used |= metric_names(rules[name]) if name in rules else {name}
    used |= {name.removesuffix(part) for name in used for part in ("_bucket", "_sum", "_count") if name.endswith(part)}
    assert {spec.name for spec in SPECS} - used == set()


def test_variables_are_defined_and_used_as_regex_matchers() -> None:
    """Every $variable in a query is defined on its dashboard and matched with =~ (multi-value safe)."""
    for name, board in BOARDS.items():
        defined = {var["name"] for var in board["templating"]["list"]}
        for panel in panels(board):
            for target in panel.get("targets", []):
                expr = target["expr"]
                user = {v for v in variables_used(expr) if not v.startswith("__")}
                assert user <= defined, (name, panel["title"], user - defined)
                for _metric, matchers in selectors(expr):
                    for op, value in matchers.values():
                        if "$" in value:
                            assert op == "=~", (name, panel["title"], expr)


def test_query_variables_use_contract_metrics() -> None:
    """label_values() variables read contract series, all-able and multi-value."""
    for board, var_name, query in variable_queries():
        selector, _label = parse_label_values(query)
        assert selector is not None, (board, var_name)
        assert check_expression(selector) == [], (board, var_name)
    for board in BOARDS.values():
        for var in board["templating"]["list"][1:]:
            assert var["multi"] and var["includeAll"] and var["allValue"] == ".*", (board["uid"], var["name"])


def test_latency_panels_show_exemplars() -> None:
    """Every histogram query (latency, waits, backoff, durations) has exemplars switched on."""
    for query in panel_queries():
        if "_bucket" in query.expr:
            assert query.exemplar, query
    assert any(q.exemplar and "commtel_operation_duration_seconds_bucket" in q.expr for q in panel_queries())


def test_datasource_provisioning_links_exemplars_to_jaeger() -> None:
    """Prometheus and Jaeger datasources have fixed uids; exemplar trace_id opens the Jaeger trace."""
    sources = _datasources()
    prometheus, jaeger = sources["prometheus"], sources["jaeger"]
    assert prometheus["uid"] and jaeger["uid"]
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": jaeger["uid"]}.items() <= destinations[0].items()
    assert prometheus["url"] == "http://prometheus:9090"
    assert jaeger["url"] == "http://jaeger:16686"


def test_dashboard_provider_points_at_the_grafana_mount() -> None:
    """The dashboard provider reads the directory docker-compose mounts dashboards/grafana into."""
    providers = load_yaml(DASHBOARDS / "provisioning" / "dashboards" / "commtel.yaml")["providers"]
    compose = load_yaml(DASHBOARDS.parent / "docker-compose.yaml")
    mounts = dict(v.split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"])
    assert mounts[providers[0]["options"]["path"]] == "./dashboards/grafana"
    assert mounts["/etc/grafana/provisioning"] == "./dashboards/provisioning"


def test_dashboards_are_stable_json() -> None:
    """Dashboards are pretty-printed JSON (reviewable diffs), ending in a newline."""
    for name, board in BOARDS.items():
        assert (GRAFANA / name).read_text() == json.dumps(board, indent=2, ensure_ascii=False) + "\n", name


def test_every_dashboard_has_job_and_instance_variables_from_build_info() -> None:
    """job and instance come right after the datasource, listed from commtel_build_info (instance within $job)."""
    for name, board in BOARDS.items():
        variables = board["templating"]["list"]
        assert [v["name"] for v in variables[1:3]] == ["job", "instance"], name
        assert parse_label_values(variables[1]["query"]) == ("commtel_build_info", "job"), name
        assert parse_label_values(variables[2]["query"]) == ('commtel_build_info{job=~"$job"}', "instance"), name


def test_every_query_is_scoped_to_the_chosen_jobs_and_instances() -> None:
    """Each selector of every panel and variable query matches job=~"$job" and instance=~"$instance"."""
    unscoped = []
    queries = [(q.board, q.panel, q.expr) for q in panel_queries()]
    queries += [
        (board, f"${var}", parse_label_values(query)[0] or "")
        for board, var, query in variable_queries()
        if var not in {"job", "instance"}
    ]
    for board, where, expr in queries:
        for metric, matchers in selectors(expr):
            if matchers.get("job") != ("=~", '"$job"') or matchers.get("instance") != ("=~", '"$instance"'):
                unscoped.append(f"{board} / {where}: {metric}")
        bare = [n for n in metric_names(expr) if not re.search(rf"{re.escape(n)}\s*\{{", expr)]
        unscoped += [f"{board} / {where}: {n} without a selector" for n in bare]
    assert unscoped == []
