"""The ops bundle shipped with commtel, and ``commtel dashboards export DIR``.

The bundle is ``dashboards/`` (Grafana dashboards and provisioning, Prometheus recording
and alert rules with their promtool tests, ``prometheus.yml``) and ``otel-collector.yaml``.
A wheel carries them inside the package at ``commtel/_bundle/`` (pyproject's
``force-include``); an editable install reads them from the repository checkout.

An export can narrow every rule and dashboard query to the series of your services
(``selector``) and point the alerts' ``runbook_url`` at your own copy of the runbooks
(``runbook_base``).
"""

from __future__ import annotations

import json
import os
import re
import shutil

from pathlib import Path


__all__ = ["BUNDLE_PARTS", "RUNBOOK_BASE", "add_selector", "bundle_root", "export_bundle"]

#: What the bundle holds, relative to its root: one directory and one file.
BUNDLE_PARTS = ("dashboards", "otel-collector.yaml")
#: Where the shipped alerts' ``runbook_url`` points: docs/runbooks.md (pyproject's ``Runbooks`` URL).
RUNBOOK_BASE = "https://github.com/commtel/commtel/blob/main/docs/runbooks.md"
_RULE_TESTS = Path("dashboards", "prometheus", "tests")

_MATCHER = r'\s*[A-Za-z_]\w*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_MATCHERS = re.compile(rf"{_MATCHER}(?:,{_MATCHER})*,?\s*")
# A commtel metric (not a recorded series: those carry ':'), ``up``, or a ``{__name__=~"commtel_..."}``
# selector, with its label matchers if any.
_SELECTED = re.compile(r'(?<![\w:.])(commtel_\w+|up)(?![\w:(])(\{[^{}]*\})?|\{(__name__=~"commtel_[^"]*"[^{}]*)\}')
_EXPR_BLOCK = re.compile(r"^(\s*)expr: [|>]-?\s*$")
_RUNBOOK = re.compile(r"^(\s*runbook_url: )" + re.escape(RUNBOOK_BASE) + "#")


def _matchers(selector: str) -> str:
    """The comma-separated matchers of *selector* (``job="api"`` or ``{job="api", env="prod"}``)."""
    text = selector.strip()
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    if not _MATCHERS.fullmatch(body):
        msg = f"selector must be PromQL label matchers such as 'job=\"myapp\"' or '{{job=~\"api|worker\"}}', got {selector!r}"
        raise ValueError(msg)
    return ", ".join(part.strip() for part in re.findall(_MATCHER, body))


def add_selector(expr: str, selector: str) -> str:
    """*expr* with *selector*'s label matchers added to every commtel metric and ``up`` it selects.

    Recorded series (``level:metric:operations``) are left alone: the rules that record them
    select the same way.

    Raises:
        ValueError: *selector* is not a list of PromQL label matchers.

    .. versionadded:: 0.1.0
    """
    matchers = _matchers(selector)

    def add(match: re.Match[str]) -> str:
        name, braces, by_name = match.groups()
        if by_name is not None:
            return f"{{{by_name}, {matchers}}}"
        body = (braces or "{}")[1:-1].strip()
        return f"{name}{{{body + ', ' if body else ''}{matchers}}}"

    return _SELECTED.sub(add, expr)


def _complete(root: Path) -> bool:
    return (root / BUNDLE_PARTS[0]).is_dir() and (root / BUNDLE_PARTS[1]).is_file()


def bundle_root() -> Path:
    """The directory holding the bundle: the installed copy, else the repository checkout.

    Returns:
        A directory containing ``dashboards/`` and ``otel-collector.yaml``.

    Raises:
        FileNotFoundError: Neither the installed copy nor a checkout is there.

    .. versionadded:: 0.1.0
    """
    package = Path(__file__).resolve().parent
    for root in (package / "_bundle", package.parent):
        if _complete(root):
            return root
    msg = f"the commtel ops bundle is missing: neither {package / '_bundle'} nor a source checkout has it"
    raise FileNotFoundError(msg)


def _files(root: Path) -> list[Path]:
    """Every bundle file, relative to *root*, in a stable order."""
    found: list[Path] = []
    for part in BUNDLE_PARTS:
        path = root / part
        if path.is_file():
            found.append(Path(part))
            continue
        found.extend(p.relative_to(root) for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(found)


def _rules(text: str, selector: str | None, runbook_base: str | None) -> str:
    """A rule file with *selector* added to every expression and runbooks under *runbook_base*."""
    lines = text.splitlines(keepends=True)
    block: int | None = None  # indentation of the ``expr:`` key whose block scalar we are in
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block is not None and line.strip() and indent <= block:
            block = None
        if block is not None and selector is not None:
            lines[i] = add_selector(line, selector)
        elif (opened := _EXPR_BLOCK.match(line)) is not None:
            block = len(opened.group(1))
        elif runbook_base is not None:
            lines[i] = _RUNBOOK.sub(lambda m: f"{m.group(1)}{runbook_base}#", line)
    return "".join(lines)


def _dashboard(text: str, selector: str) -> str:
    """A dashboard with *selector* added to every panel and variable query."""
    board = json.loads(text)
    for panel in [p for top in board.get("panels", []) for p in (top, *top.get("panels", []))]:
        for target in panel.get("targets", []):
            target["expr"] = add_selector(target["expr"], selector)
    for variable in board["templating"]["list"]:
        if variable.get("type") == "query":
            variable["query"] = variable["definition"] = add_selector(variable["query"], selector)
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def export_bundle(
    target_dir: str | os.PathLike[str], *, selector: str | None = None, runbook_base: str | None = None
) -> list[Path]:
    """Copy the ops bundle into *target_dir* (created if missing) and list the files written.

    Bundle files already in *target_dir* are overwritten; other files there are left alone.
    The result keeps the bundle's layout, so ``promtool check config dashboards/prometheus.yml``
    and the Grafana provisioning paths work from *target_dir* as they do in the repository.

    Args:
        target_dir: Where to write the bundle.
        selector: Label matchers (``'job="myapp"'``) added to every commtel metric and ``up``
            that a rule or dashboard selects, so they watch your services only. The promtool
            unit tests describe the shipped selector-free rules and are not written then.
        runbook_base: URL of your copy of docs/runbooks.md; each alert's ``runbook_url``
            becomes ``<runbook_base>#<alert name in lower case>``.

    Returns:
        The paths written, sorted, each under *target_dir*.

    Raises:
        FileNotFoundError: The bundle is not installed (see :func:`bundle_root`).
        NotADirectoryError: *target_dir* exists and is not a directory.
        ValueError: *selector* is not a list of PromQL label matchers, or *runbook_base* not a URL.

    .. versionadded:: 0.1.0
    """
    target = Path(target_dir)
    if target.exists() and not target.is_dir():
        msg = f"{target} exists and is not a directory"
        raise NotADirectoryError(msg)
    if selector is not None:
        _matchers(selector)
    if runbook_base is not None and not re.fullmatch(r"https?://\S+", runbook_base):
        msg = f"runbook_base must be an http(s) URL, got {runbook_base!r}"
        raise ValueError(msg)
    root = bundle_root()
    written: list[Path] = []
    for relative in _files(root):
        if selector is not None and relative.is_relative_to(_RULE_TESTS):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (selector or runbook_base) and relative.name.endswith(".rules.yml"):
            destination.write_text(_rules((root / relative).read_text(), selector, runbook_base))
        elif runbook_base and relative.is_relative_to(_RULE_TESTS):
            destination.write_text((root / relative).read_text().replace(f"{RUNBOOK_BASE}#", f"{runbook_base}#"))
        elif selector and relative.suffix == ".json" and relative.parent.name == "grafana":
            destination.write_text(_dashboard((root / relative).read_text(), selector))
        else:
            shutil.copyfile(root / relative, destination)
        written.append(destination)
    return written
