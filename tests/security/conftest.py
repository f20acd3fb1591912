"""The security suite: hostile inputs are counted by outcome, and every test here has a time limit."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest


#: Outcomes of the hostile corpus in this session ("clear error", "handled").
TALLY: Counter[str] = Counter()
#: Inputs that failed, by kind ("crash": an unexpected exception, "hang": out of time).
FAILED: Counter[str] = Counter()
#: Seconds any one security test may take before it counts as a hang.
TIMEOUT_S = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == "security" and item.get_closest_marker("timeout") is None:
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
