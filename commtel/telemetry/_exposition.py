"""Serving the contract metrics: HTTP server, WSGI/ASGI app, or a registry you own.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every exposition reads the multiprocess
files of all worker processes, under the lock that :func:`mark_process_dead` takes
to fold a dead worker's files (no exemplars in that mode: prometheus_client cannot
aggregate them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import prometheus_client

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry

from .. import _validation as check
from .._exceptions import ConfigurationError
from ._metrics import get_metrics
from ._multiprocess import locked_registry, multiprocess_dir


__all__ = ["make_asgi_app", "make_wsgi_app", "metrics_registry", "start_http_server"]


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: the active one, or a collector of every live and dead worker's files.

    .. versionadded:: 0.1.0
    """
    directory = multiprocess_dir()
    if directory is not None:
        return locked_registry(directory)
    return get_metrics().registry or DEFAULT_REGISTRY


def start_http_server(port: int, addr: str = "127.0.0.1") -> tuple[Any, Any]:
    """Serve ``/metrics`` (OpenMetrics with exemplars when the scraper asks) on *addr*:*port*.

    Returns prometheus_client's ``(server, thread)``; ``server.shutdown()`` stops it.

    .. versionadded:: 0.1.0
    """
    port = check.whole(port, "port", owner="start_http_server", minimum=0)
    if port > 65535:
        msg = f"start_http_server: port must be within 0-65535, got {port}"
        raise ConfigurationError(msg)
    get_metrics()
    return prometheus_client.start_http_server(port, addr=addr, registry=metrics_registry())


def make_wsgi_app() -> Callable[..., Any]:
    """A WSGI app serving the contract metrics.

    .. versionadded:: 0.1.0
    """
    get_metrics()
    return prometheus_client.make_wsgi_app(metrics_registry())


def make_asgi_app() -> Callable[..., Any]:
    """An ASGI app serving the contract metrics.

    .. versionadded:: 0.1.0
    """
    get_metrics()
    return prometheus_client.make_asgi_app(metrics_registry())
