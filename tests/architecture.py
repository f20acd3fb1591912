"""commtel's package-level import graph, read from the source, and the layers it must respect.

Every import counts: module level, ``TYPE_CHECKING`` blocks and function bodies alike. A
node is a subpackage (``commtel.retries``), a top-level module (``commtel._events``) or
the package itself (``commtel``: its ``__init__``). ``python -m tests.architecture``
prints the import table of docs/architecture.md.
"""

from __future__ import annotations

import ast

from collections import defaultdict
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "commtel"

#: Lowest first. A node imports only nodes of lower layers, or of its own layer when
#: the layer's third field says so (or :data:`SIBLING_IMPORTS` names the import).
LAYERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (
        "foundation",
        (
            "commtel._defaults",
            "commtel._durations",
            "commtel._events",
            "commtel._exceptions",
            "commtel._lazy",
            "commtel._optional",
            "commtel._redaction",
            "commtel._timing",
            "commtel._validation",
            "commtel._version",
            "commtel._wrapping",
        ),
        True,
    ),
    ("standalone", ("commtel._bundle", "commtel.simulator"), False),
    ("shared services", ("commtel.backends", "commtel.context"), False),
    ("telemetry", ("commtel.telemetry",), False),
    (
        "components",
        (
            "commtel.breaker",
            "commtel.chaos",
            "commtel.concurrency",
            "commtel.fallback",
            "commtel.hedging",
            "commtel.messages",
            "commtel.oauth",
            "commtel.progress",
            "commtel.ratelimit",
            "commtel.retries",
            "commtel.timeouts",
        ),
        False,
    ),
    ("composition", ("commtel._telemetry_handlers", "commtel.instrumentation"), False),
    ("public surface", ("commtel", "commtel.compat", "commtel.errors", "commtel.events", "commtel.testing"), True),
    ("tools", ("commtel.__main__", "commtel.cli", "commtel.demo"), True),
)

#: Imports between two nodes of a layer that does not share, each with its reason; any other fails.
SIBLING_IMPORTS: dict[tuple[str, str], str] = {
    (
        "commtel.progress",
        "commtel.messages",
    ): "the progress tracker reuses the message tracker's store ownership and retention",
    (
        "commtel.concurrency",
        "commtel.retries",
    ): "the adaptive limiter reads HTTP statuses and timeouts the way retries classify them",
    ("commtel.hedging", "commtel.retries"): "hedged attempts draw from the retry budget",
    ("commtel.fallback", "commtel.concurrency"): "a fallback labels a full limiter's refusal as rejected",
    ("commtel.fallback", "commtel.retries"): "a fallback labels timeouts the way retries classify them",
}

#: Component packages: only their ``_telemetry.py`` may import these.
COMPONENTS = (
    "breaker",
    "chaos",
    "concurrency",
    "context",
    "fallback",
    "hedging",
    "messages",
    "oauth",
    "progress",
    "ratelimit",
    "retries",
    "timeouts",
)
TELEMETRY_IMPORTS = ("opentelemetry", "prometheus_client", "commtel.telemetry")


def module_name(path: Path) -> str:
    """``commtel/retries/_core.py`` -> ``commtel.retries._core``; an ``__init__`` is its package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def node(module: str) -> str:
    """The graph node *module* belongs to."""
    parts = module.split(".")
    return f"commtel.{parts[1]}" if len(parts) > 1 and _is_module(f"commtel.{parts[1]}") else "commtel"


def imports(path: Path) -> list[str]:
    """Every module *path* imports, absolute (``from x import y`` is ``x.y`` when ``y`` is a module)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[str] = []
    for statement in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(statement, ast.Import):
            found.extend(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            module = statement.module or ""
            if statement.level:
                base = package.split(".")[: package.count(".") + 2 - statement.level]
                module = ".".join([*base, module] if module else base)
            submodules = [f"{module}.{alias.name}" for alias in statement.names]
            found.extend(name for name in submodules if _is_module(name))
            if not all(_is_module(name) for name in submodules):
                found.append(module)
    return found


def sources() -> list[Path]:
    """Every module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def graph() -> dict[tuple[str, str], set[str]]:
    """(importing node, imported node) -> the modules imported (cross-node imports only)."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in sources():
        source = node(module_name(path))
        for target in imports(path):
            if target.split(".")[0] == "commtel" and node(target) != source:
                edges[source, node(target)].add(target)
    return dict(edges)


def cycles(edges: dict[tuple[str, str], set[str]]) -> list[list[str]]:
    """Every group of nodes that import one another, directly or not (Tarjan's SCCs of size > 1)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(edges):
        successors[source].append(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in successors[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted({n for edge in edges for n in edge}):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str) -> int:
    """Index of *name*'s layer in :data:`LAYERS`."""
    return next(i for i, (_, members, _) in enumerate(LAYERS) if name in members)


def _short(name: str) -> str:
    return name.removeprefix("commtel.") if name != "commtel" else "commtel"


def import_table(edges: dict[tuple[str, str], set[str]]) -> str:
    """The Markdown table of every cross-node import, by layer: what each node imports from which."""
    rows = ["| layer | node | imports (modules) |", "|---|---|---|"]
    for layer, members, _ in LAYERS:
        for member in members:
            targets = sorted(target for source, target in edges if source == member)
            cells = []
            for target in targets:
                inner = sorted(
                    _short(m).removeprefix(_short(target) + ".") for m in edges[member, target] if m != target
                )
                cells.append(f"`{_short(target)}`" + (f" ({', '.join(f'`{m}`' for m in inner)})" if inner else ""))
            rows.append(f"| {layer} | `{_short(member)}` | {', '.join(cells) or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(import_table(graph()))  # noqa: T201 - the command's output
