"""The older logging and monitoring helpers over :mod:`commtel.telemetry`.

``setup_logging(level, json_format=)``, ``get_logger(name)`` / ``get_logger(name, platform)``,
``StructuredFormatter``, ``ContextLogger``, ``LoggingContext`` and ``log_operation_metrics``
write through commtel's formatters: every line carries the trace, span and correlation ids,
and secrets are redacted.
"""

from __future__ import annotations

import logging

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, overload

from typing_extensions import Self

from ..telemetry._logging import BoundLogger, JSONFormatter, configure_logging, log_context
from ..telemetry._operations import OperationTracker


__all__ = [
    "ContextLogger",
    "LoggingContext",
    "MetricsCollector",
    "StructuredFormatter",
    "get_logger",
    "log_operation_metrics",
    "setup_logging",
]

#: JSON lines: timestamp, level, logger, message, trace/span/correlation ids, then the fields.
StructuredFormatter = JSONFormatter


class ContextLogger(BoundLogger):
    """A logger adapter that adds *context* (and the correlation id) to every line; methods take keyword fields.

    .. versionadded:: 0.1.0
    """

    def __init__(self, logger: logging.Logger, context: Mapping[str, Any] | None = None) -> None:
        super().__init__(logger, context)


@overload
def get_logger(name: str, context: Mapping[str, Any] | None = None, /) -> ContextLogger: ...


@overload
def get_logger(name: str, platform: str, /, **fields: Any) -> ContextLogger: ...


def get_logger(name: str, context: Mapping[str, Any] | str | None = None, /, **fields: Any) -> ContextLogger:
    """A :class:`ContextLogger` for *name*.

    The second argument is either a dict of context fields for every line, or a platform
    name (``get_logger("myapp", "twitter")``), which becomes the ``platform`` field.

    .. versionadded:: 0.1.0
    """
    if isinstance(context, str):
        fields["platform"] = context
    elif context is not None:
        fields = {**context, **fields}
    return ContextLogger(logging.getLogger(name), fields)


def setup_logging(level: str | int = "INFO", json_format: bool = False, log_file: str | Path | None = None) -> None:
    """Log to stderr (and *log_file*) at *level*, as JSON lines (*json_format*) or text.

    Calling it again replaces what it installed before.

    .. versionadded:: 0.1.0
    """
    configure_logging(level, json=json_format, log_file=log_file)


class LoggingContext:
    """Add *context* fields to every line logged inside the ``with`` block (thread- and task-isolated).

    Example::

        with LoggingContext(operation="discovery", resource_type="vm"):
            logger.info("Discovering resources")

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_active", "context")

    def __init__(self, **context: Any) -> None:
        self.context = context
        self._active: AbstractContextManager[Mapping[str, Any]] | None = None

    def __enter__(self) -> Self:
        self._active = log_context(**self.context)
        self._active.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.__exit__(exc_type, exc, tb)


_metrics_log = ContextLogger(logging.getLogger("commtel.operations"))


def log_operation_metrics(
    operation: str,
    duration: float,
    success: bool,
    items_processed: int = 0,
    errors: int = 0,
    **extra: Any,
) -> None:
    """Log one INFO line on ``commtel.operations`` with an operation's duration and counts.

    Fields: ``operation``, ``duration_seconds`` (rounded to ms), ``success``,
    ``items_processed``, ``errors`` and every *extra* keyword.

    .. versionadded:: 0.1.0
    """
    _metrics_log.info(
        "Operation metrics: %s",
        operation,
        operation=operation,
        duration_seconds=round(duration, 3),
        success=success,
        items_processed=items_processed,
        errors=errors,
        **extra,
    )


#: ``MetricsCollector()``: :class:`commtel.OperationTracker` (``start_operation(...).complete(...)``,
#: ``get_stats(platform=)``, ``get_operation_breakdown()``).
MetricsCollector = OperationTracker
