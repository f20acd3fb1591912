"""Fixtures of the ops-bundle tests: the process whose /metrics the real Prometheus scrapes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def metrics_target(running_demo) -> str:
    """``host:port`` of the running ``commtel demo`` once it serves every contract metric.

    The panels and rules are evaluated against what the demo really emits, so a metric a
    dashboard expects but no component produces shows up as an empty panel.
    """
    from tests.demo.test_demo import _missing
    from tests.harness.waiting import eventually

    eventually(lambda: not _missing(running_demo.target), timeout=75, interval=1)
    return running_demo.target
