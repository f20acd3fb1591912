"""Fixtures of the ops-bundle tests: the process whose /metrics the real Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.emitter import ContractEmitter


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[str]:
    """``host:port`` of a live /metrics endpoint exposing every contract metric.

    The one place to swap the stand-in for the real demo, e.g. start
    ``python -m commtel demo --metrics-port PORT --live off`` as a subprocess and yield
    ``127.0.0.1:PORT`` once it listens: the tests only need every panel's series to exist.
    """
    with ContractEmitter() as emitter:
        yield emitter.target
