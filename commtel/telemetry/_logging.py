"""Structured logging: JSON lines carrying trace, span and correlation ids, secrets redacted.

``get_logger(name, platform=None)`` returns a logger that takes keyword fields
(``log.info("sent", tweet_id=1)``); ``log_context(**fields)`` adds fields to every
line logged inside a block; ``configure_logging`` installs the JSON (or plain text)
formatter on the root logger. All work with the standard library's logging, so
third-party log records get the same treatment.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import trace

from .._redaction import redact_mapping, redact_text
from ..context._correlation import peek_correlation_id
from ..context._platform import get_platform_context


__all__ = ["BoundLogger", "JSONFormatter", "TextFormatter", "configure_logging", "get_logger", "log_context"]

_FIELDS_ATTR = "commtel_fields"
_RESERVED = frozenset({"timestamp", "level", "logger", "message", "trace_id", "span_id", "correlation_id"})
_context_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "commtel_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Add *fields* to every line logged inside the block (thread- and task-isolated).

    Blocks nest (inner values win); a logger's own keyword fields win over both.

    Yields:
        Every field in effect inside the block.

    .. versionadded:: 0.1.0
    """
    merged = {**_context_fields.get(), **fields}
    token = _context_fields.set(merged)
    try:
        yield merged
    finally:
        _context_fields.reset(token)


def _ids(record: logging.LogRecord) -> dict[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    out: dict[str, Any] = {
        "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else None,
        "span_id": format(ctx.span_id, "016x") if ctx.is_valid else None,
        "correlation_id": peek_correlation_id(),
    }
    platform = get_platform_context()
    if platform is not None and platform.platform is not None:
        out["platform"] = platform.platform
    fields = getattr(record, _FIELDS_ATTR, None)
    scoped = _context_fields.get()
    if scoped:
        fields = {**scoped, **fields} if fields else scoped
    if fields:
        for key, value in redact_mapping(fields).items():
            out[f"field_{key}" if key in _RESERVED else key] = value
    return out


#: Characters kept of a message or a stack trace (redacted first, then cut).
MAX_MESSAGE = 65_536


def _bounded(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}…[{len(text) - MAX_MESSAGE} more characters]"


def _fallback(record: logging.LogRecord, error: BaseException, *, as_json: bool) -> str:
    """The line written when formatting *record* failed: logging never raises into the application."""
    try:
        message = redact_text(str(record.msg))[:1024]
    except Exception:
        message = "<unprintable message>"
    problem = f"commtel could not format this record: {type(error).__name__}"
    if as_json:
        return json.dumps(
            {"level": record.levelname, "logger": record.name, "message": message, "log_error": problem},
            ensure_ascii=False,
        )
    return f"{record.levelname} {record.name}: {message} ({problem})"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, ids, then the fields.

    Fields are redacted and bounded (8 levels deep, 100 items per container, 16 KB per
    string; a cycle ends as ``"<dict cycle>"``); a record that cannot be formatted at all
    becomes a plain fallback line, so logging never raises into the application.

    .. versionadded:: 0.1.0
    """

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as error:  # includes RecursionError, which StreamHandler would re-raise
            return _fallback(record, error, as_json=True)

    def _format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": _bounded(redact_text(record.getMessage())),
        }
        entry.update(_ids(record))
        if record.exc_info:
            entry["exception"] = _bounded(redact_text(self.formatException(record.exc_info)))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the same redaction, bounds and ids as :class:`JSONFormatter`.

    .. versionadded:: 0.1.0
    """

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._format(record)
        except Exception as error:
            return _fallback(record, error, as_json=False)

    def _format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _ids(record).items() if v is not None)
        text = f"{self.formatTime(record)} {record.levelname:<8} {record.name}: {record.getMessage()} {extra}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return _bounded(redact_text(text))


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # LoggerAdapter is subscriptable at runtime only from Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class BoundLogger(_LoggerAdapter):
    """A logger whose methods take structured keyword fields.

    .. versionadded:: 0.1.0
    """

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(logger, dict(fields or {}))

    def bind(self, **fields: Any) -> BoundLogger:
        """A logger that adds *fields* to every line."""
        return BoundLogger(self.logger, {**(self.extra or {}), **fields})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        passthrough = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel", "extra") if k in kwargs}
        fields = {**(self.extra or {}), **kwargs}
        extra = dict(passthrough.pop("extra", None) or {})
        extra[_FIELDS_ATTR] = fields
        passthrough["extra"] = extra
        return msg, passthrough


def get_logger(name: str, platform: str | None = None, **fields: Any) -> BoundLogger:
    """A :class:`BoundLogger` for *name*; *platform* and *fields* go on every line.

    .. versionadded:: 0.1.0
    """
    if platform is not None:
        fields["platform"] = platform
    return BoundLogger(logging.getLogger(name), fields)


_lock = threading.Lock()
_installed: list[logging.Handler] = []


def configure_logging(
    level: int | str = "INFO",
    *,
    json: bool = True,
    log_file: str | Path | None = None,
    stream: IO[str] | None = None,
    console: bool = True,
) -> None:
    """Send log records to *stream* (stderr) and optionally *log_file*, as JSON lines or text.

    Args:
        level: Root logger level.
        json: JSON lines (default) or human-readable text.
        log_file: Also append to this file.
        stream: Where console lines go (default stderr).
        console: False writes to *log_file* only (e.g. under a live terminal view).

    Idempotent: calling it again replaces only the handlers it installed before.

    .. versionadded:: 0.1.0
    """
    formatter: logging.Formatter = JSONFormatter() if json else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)] if console else []
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    root = logging.getLogger()
    with _lock:
        for handler in _installed:
            root.removeHandler(handler)
            handler.close()
        _installed[:] = handlers
        for handler in handlers:
            handler.setFormatter(formatter)
            root.addHandler(handler)
        root.setLevel(level.upper() if isinstance(level, str) else level)
