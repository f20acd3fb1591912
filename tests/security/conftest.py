"""The security suite: hostile inputs are counted by outcome (each with a time limit), measured bounds printed."""

from __future__ import annotations

import io
import logging

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import commtel

from commtel.telemetry import _logging


#: Outcomes of the hostile corpus in this session ("clear error", "handled").
TALLY: Counter[str] = Counter()
#: Inputs that failed, by kind ("crash": an unexpected exception, "hang": out of time).
FAILED: Counter[str] = Counter()
#: Measured bounds of this session, worst value of each (printed in the summary).
MEASURED: dict[str, float] = {}
#: Seconds any one input of the corpus may take before it counts as a hang.
TIMEOUT_S = 20


def measured(name: str, value: float) -> None:
    """Keep the worst (largest) *value* seen for the bound *name*."""
    MEASURED[name] = max(value, MEASURED.get(name, value))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name == "test_corpus.py" and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUT_S))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call" and report.failed and item.path.name == "test_corpus.py":
        timed_out = "Timeout" in str(call.excinfo.value) if call.excinfo else False
        FAILED["hang" if timed_out else "crash"] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tried = sum(TALLY.values()) + sum(FAILED.values())
    if tried:
        terminalreporter.write_line(
            f"hostile corpus: {tried} inputs tried, {TALLY['clear error']} clear errors, "
            f"{TALLY['handled']} handled, {FAILED['hang']} hangs, {FAILED['crash']} crashes"
        )
    for name, value in sorted(MEASURED.items()):
        terminalreporter.write_line(f"measured: {name}: {value:.4g}")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What ``configure_logging("DEBUG")`` writes during the test: commtel's lines and forwarded third-party ones."""
    stream = io.StringIO()
    root = logging.getLogger()
    previous_level = root.level
    commtel.configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(_logging._installed):
            root.removeHandler(handler)
        _logging._installed.clear()
        root.setLevel(previous_level)
