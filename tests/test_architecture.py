"""The architecture holds: layers, no import cycles, telemetry only in telemetry modules, the doc's table."""

from __future__ import annotations

import re

from pathlib import Path

from tests.architecture import (
    COMPONENTS,
    LAYERS,
    PACKAGE,
    SIBLING_IMPORTS,
    TELEMETRY_IMPORTS,
    cycles,
    graph,
    import_table,
    imports,
    layer_of,
    module_name,
    node,
    sources,
)


DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_every_node_has_one_layer() -> None:
    """Each subpackage and top-level module is in exactly one layer, and every layer member exists."""
    members = [member for _, group, _ in LAYERS for member in group]
    assert len(members) == len(set(members))
    assert {node(module_name(path)) for path in sources()} == set(members)


def test_no_import_cycles_between_packages() -> None:
    """The package-level import graph (function-level and TYPE_CHECKING imports included) is acyclic."""
    assert cycles(graph()) == []


def test_the_cycle_check_finds_cycles() -> None:
    """The check itself reports a cycle, however long, and nothing for a chain."""
    assert cycles({("a", "b"): set(), ("b", "c"): set(), ("c", "a"): set(), ("c", "d"): set()}) == [["a", "b", "c"]]
    assert cycles({("a", "b"): set(), ("b", "c"): set()}) == []


def test_imports_go_down_the_layers() -> None:
    """A node imports lower layers only (its own layer where that layer allows it): components import
    each other only where listed, nothing below the public surface imports the package's ``__init__``."""
    edges = graph()
    wrong = []
    for source, target in edges:
        above, below = layer_of(source), layer_of(target)
        if below > above or (below == above and not LAYERS[above][2] and (source, target) not in SIBLING_IMPORTS):
            wrong.append(f"{source} ({LAYERS[above][0]}) imports {target} ({LAYERS[below][0]})")
    assert wrong == []
    assert set(SIBLING_IMPORTS) <= set(edges), "an allowed sibling import no longer exists: drop it from the list"


def _telemetry_imports(path: Path) -> list[str]:
    return [name for name in imports(path) for lib in TELEMETRY_IMPORTS if name == lib or name.startswith(f"{lib}.")]


def test_only_a_components_telemetry_module_imports_telemetry() -> None:
    """In every component package only ``_telemetry.py`` imports opentelemetry, prometheus_client or
    commtel.telemetry (anywhere in the module); each ``_telemetry.py`` does, so the check sees imports."""
    offenders = []
    observed = set()
    for component in COMPONENTS:
        for path in sorted((PACKAGE / component).rglob("*.py")):
            found = _telemetry_imports(path)
            if path.name != "_telemetry.py" and found:
                offenders.append(f"{module_name(path)}: {', '.join(found)}")
            elif found:
                observed.add(component)
    assert offenders == []
    assert observed == {c for c in COMPONENTS if (PACKAGE / c / "_telemetry.py").exists()}
    assert len(observed) >= 5


def test_architecture_doc_names_every_cross_package_import() -> None:
    """docs/architecture.md carries the import table computed from the source (python -m tests.architecture)."""
    text = DOC.read_text()
    match = re.search(r"<!-- imports:begin -->\n(.*?)\n<!-- imports:end -->", text, re.DOTALL)
    assert match, "docs/architecture.md lost its <!-- imports:begin/end --> markers"
    assert match.group(1) == import_table(graph()), "regenerate the table: python -m tests.architecture"


def test_architecture_doc_lists_the_layers() -> None:
    """The layers table of docs/architecture.md has the layers, members and shared marks of the test."""
    text = DOC.read_text()
    section = text[text.index("## Layers") : text.index("## One guarded call")]
    documented = {}
    for row in re.findall(r"^\| ([a-z ]+?)( \(shared\))? \| ([^|]*) \|", section, re.MULTILINE):
        name, shared, members = row
        if name == "layer":  # the header
            continue
        documented[name] = (sorted(re.findall(r"`([^`]+)`", members)), bool(shared))
    expected = {name: (sorted(m.removeprefix("commtel.") for m in members), shared) for name, members, shared in LAYERS}
    assert documented == expected
