"""Read the ops bundle (dashboards, rules, configs) and take PromQL apart for the checks."""

from __future__ import annotations

import json
import re

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from commtel.telemetry._metrics import SPECS


ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
GRAFANA = DASHBOARDS / "grafana"
RULES_DIR = DASHBOARDS / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
RULE_TESTS = sorted((RULES_DIR / "tests").glob("*.test.yml"))
PROMETHEUS_YML = DASHBOARDS / "prometheus.yml"
COLLECTOR = ROOT / "otel-collector.yaml"
COMPOSE = ROOT / "docker-compose.yaml"
OPS_DOC = ROOT / "docs" / "ops.md"
DATASOURCE = "${datasource}"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- dashboards


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class PanelQuery:
    board: str
    panel: str
    expr: str
    exemplar: bool

    def __str__(self) -> str:
        return f"{self.board} / {self.panel}: {self.expr}"


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, panel["title"], target["expr"], bool(target.get("exemplar")))
        for name, board in dashboards().items()
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable name, query) of every query variable."""
    out = []
    for name, board in dashboards().items():
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                out.append((name, var["name"], query))
    return out


_GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def variables_used(expr: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str) -> str:
    """The query Grafana would send with every multi-value variable at "All" (``.*``)."""

    def repl(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return _GRAFANA_BUILTINS.get(name, ".*")

    return _VARIABLE.sub(repl, expr)


_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$", re.DOTALL)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """(series selector or None, label) of a Grafana ``label_values(...)`` variable query."""
    match = _LABEL_VALUES.match(query.strip())
    assert match, f"not a label_values() query: {query}"
    return match.group(1), match.group(2)


# --------------------------------------------------------------------------- rules


def rule_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in load_yaml(path)["groups"]]


def recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for g in rule_groups() for r in g["rules"] if "record" in r}


def alert_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}


# --------------------------------------------------------------------------- PromQL

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*")')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*|\S")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric (and recorded series) names a PromQL expression selects."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    tokens = _TOKEN.findall(text)
    names = set()
    for i, token in enumerate(tokens):
        if not re.match(r"[A-Za-z_:]", token) or token.lower() in _KEYWORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "(":
            continue  # a function or an aggregation
        names.add(token)
    return names


def selectors(expr: str) -> list[tuple[str | None, dict[str, tuple[str, str]]]]:
    """(metric name or None, {label: (operator, quoted value)}) of each ``{...}`` selector."""
    out = []
    for match in _SELECTOR.finditer(expr):
        name, body = match.groups()
        out.append((name, {m.group(1): (m.group(2), m.group(3)) for m in _MATCHER.finditer(body)}))
    return out


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring/group_* clauses."""
    return {label.strip() for m in _GROUPING.finditer(expr) for label in m.group(2).split(",") if label.strip()}


def contract_series() -> dict[str, set[str]]:
    """Every exposed series name of the contract (and ``up``) -> the labels it carries."""
    out: dict[str, set[str]] = {"up": set()}
    for spec in SPECS:
        if spec.type_name == "histogram":
            out[f"{spec.name}_bucket"] = {*spec.labels, "le"}
            out[f"{spec.name}_sum"] = set(spec.labels)
            out[f"{spec.name}_count"] = set(spec.labels)
        else:
            out[spec.name] = set(spec.labels)
    return out


def enumerated_values() -> dict[str, dict[str, tuple[str, ...]]]:
    """Exposed series name -> its enumerated labels' values (the contract's closed sets)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for spec in SPECS:
        names = (
            [f"{spec.name}_{s}" for s in ("bucket", "sum", "count")] if spec.type_name == "histogram" else [spec.name]
        )
        for name in names:
            out[name] = dict(spec.values)
    return out


def recorded_series() -> dict[str, set[str]]:
    """Every recording rule name -> its labels (the level of its ``level:metric:operations`` name)."""
    return {name: set(recorded_labels(name)) for name in recording_rules()}


def recorded_labels(name: str) -> list[str]:
    """The labels a recorded series keeps, read from its level (``job_instance_breaker`` -> job, instance, breaker)."""
    level = name.split(":", 1)[0]
    labels: list[str] = []
    for part in level.split("_"):
        # Labels with an underscore (grant_type) are the ones the contract knows.
        if labels and f"{labels[-1]}_{part}" in _CONTRACT_LABELS:
            labels[-1] = f"{labels[-1]}_{part}"
        else:
            labels.append(part)
    return labels


_CONTRACT_LABELS = {label for spec in SPECS for label in spec.labels} | {"job", "instance"}


def known_series() -> dict[str, set[str]]:
    """Series a query may select: contract metrics and our recording rules, with their labels."""
    return {**contract_series(), **recorded_series()}


_TARGET_LABELS = {"job", "instance"}


def check_expression(expr: str) -> list[str]:
    """Problems of one PromQL expression against the contract (empty when fine)."""
    known = known_series()
    problems = []
    names = metric_names(expr)
    problems += [f"unknown metric {n!r}" for n in sorted(names - known.keys())]
    labels_here = set().union(*(known.get(n, set()) for n in names)) | _TARGET_LABELS
    for name, matchers in selectors(expr):
        if name in known:
            allowed = known[name] | _TARGET_LABELS
        elif "__name__" in matchers:  # {__name__=~"commtel_.+"}: the labels of every series it matches
            pattern = re.compile(matchers["__name__"][1][1:-1])
            matched = [labels for series, labels in known.items() if pattern.fullmatch(series)]
            if not matched:
                problems.append(f"__name__ selector {pattern.pattern!r} matches no known series")
            allowed = set().union(*matched) | _TARGET_LABELS | {"__name__"}
        else:
            allowed = labels_here
        problems += [f"label {label!r} not on {name or 'selector'}" for label in sorted(matchers.keys() - allowed)]
        closed = enumerated_values().get(name or "", {})
        for label, (op, quoted) in matchers.items():
            if label in closed and op in {"=", "=~"} and "$" not in quoted:
                wanted = quoted[1:-1].split("|") if op == "=~" else [quoted[1:-1]]
                problems += [
                    f"{name}: {label}={v!r} is not one of {closed[label]}" for v in wanted if v not in closed[label]
                ]
    problems += [
        f"grouping label {label!r} not on any selected metric" for label in sorted(grouping_labels(expr) - labels_here)
    ]
    return problems


# --------------------------------------------------------------------------- docs

REFERENCE_START = (
    "<!-- metric reference: generated from commtel.telemetry.SPECS (tests/ops/test_metric_contract.py) -->"
)
REFERENCE_END = "<!-- end of metric reference -->"


def metric_reference() -> str:
    """The docs' metric reference table, rendered from the contract table."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        labels = ", ".join(
            f"{label}={'/'.join(spec.values[label])}" if label in spec.values else label for label in spec.labels
        )
        kind = spec.type_name if spec.multiprocess_mode is None else f"{spec.type_name} ({spec.multiprocess_mode})"
        rows.append(f"| `{spec.name}` | {kind} | {labels} | {spec.help} |")
    return "\n".join(rows)
