"""Fixtures for running the older packages' own examples against commtel.compat."""

from __future__ import annotations

import logging

from collections.abc import Iterator
from typing import Any

import pytest

from commtel.telemetry import _logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo what an example's logging set-up installed on the root logger."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(_logging._installed):
        root.removeHandler(handler)
        handler.close()
    _logging._installed.clear()
    root.setLevel(level)


@pytest.fixture
def authserver() -> Iterator[Any]:
    """A real OAuth 2 authorization server (authlib's server side) on a free loopback port."""
    from tests.oauth.authserver import AuthServer  # here: the server side needs a newer authlib than the client

    server = AuthServer()
    server.start()
    yield server
    server.stop()
