"""Fixtures of the retry suite: sync/async driver, fresh statistics (the fake clock is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commtel.retries import reset_retry_stats
from tests.retry.helpers import Driver


@pytest.fixture(autouse=True)
def _fresh_stats() -> Iterator[None]:
    reset_retry_stats()
    yield
    reset_retry_stats()


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    """The same behaviour through the sync and the async driver."""
    return Driver(request.param)
