"""Fixtures of the retry suite: fake clock, sync/async driver, fresh statistics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commtel.policies import reset_retry_stats
from tests.retry.helpers import Driver, FakeClock


@pytest.fixture(autouse=True)
def _fresh_stats() -> Iterator[None]:
    reset_retry_stats()
    yield
    reset_retry_stats()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Time stands still unless a policy sleeps; every sleep is recorded."""
    return FakeClock().install(monkeypatch)


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    """The same behaviour through the sync and the async driver."""
    return Driver(request.param)
