"""The common-resilience API (async limiter, retry_with_backoff, logging_config) through commtel.compat.

The two usage examples of that package's README run as written, with only the import
line changed (and the top-level ``await`` inside a coroutine); behaviour tests follow.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading

import pytest

import commtel

from commtel.errors import CircuitOpenError
from tests.compat.helpers import isolated
from tests.harness.clock import FakeClock


def test_resilience_usage_example_runs(clock: FakeClock) -> None:
    """The README's resilience example: an awaited acquire, and a decorated coroutine."""
    calls = []

    async def example() -> None:
        # fmt: off
        from commtel.compat import (
            RateLimiter,
            retry_with_backoff,
            RetryConfig,
        )

        # Rate limiting
        limiter = RateLimiter(max_calls=200, time_window=60.0)
        await limiter.acquire()
        # Make API call

        # Retry with backoff
        @retry_with_backoff(config=RetryConfig(max_attempts=3))
        async def risky_api_call():
            # Your code here
            calls.append("called")

        # fmt: on
        await risky_api_call()
        # One call was taken from the window of 200: 199 more fit, 200 do not.
        assert limiter.limiter.peek(cost=199).allowed and not limiter.limiter.peek(cost=200).allowed

    asyncio.run(example())
    assert calls == ["called"]
    assert clock.sleeps == []


def test_logging_usage_example_runs(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    """The README's logging example: JSON lines on stderr carrying the correlation id."""

    def example() -> None:
        # fmt: off
        from commtel.compat import (
            setup_logging,
            get_logger,
            set_correlation_id,
        )

        # Set up logging
        setup_logging(level="INFO", json_format=True)

        # Get logger
        logger = get_logger(__name__)

        # Set correlation ID
        set_correlation_id("request-123")

        # Log
        logger.info("Processing request")

    # fmt: on
    isolated(example)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "Processing request"
    assert line["correlation_id"] == "request-123"
    assert line["level"] == "INFO" and line["logger"] == __name__


def test_rate_limiter_admits_max_calls_per_window_and_acquire_waits(clock: FakeClock) -> None:
    """RateLimiter(max_calls, time_window): at most max_calls in any window; acquire() awaits the wait."""
    from commtel.compat import RateLimiter

    limiter = RateLimiter(max_calls=2, time_window=10.0)
    assert inspect.iscoroutinefunction(limiter.acquire)
    assert (limiter.max_calls, limiter.time_window) == (2, 10.0)

    async def three_calls() -> None:
        for _ in range(3):
            await limiter.acquire()

    asyncio.run(three_calls())
    assert clock.sleeps == [pytest.approx(10.0)]  # the third call waited for the first to leave the window


def test_retry_with_backoff_backs_off_exponentially_then_reraises(clock: FakeClock) -> None:
    """Delays double from the initial delay; when attempts run out the last error propagates unchanged."""
    from commtel.compat import RetryConfig, retry_with_backoff

    attempts = []

    @retry_with_backoff(config=RetryConfig(max_attempts=3, initial_delay=1.0, max_delay=60.0, jitter=False))
    async def always_down() -> None:
        attempts.append(1)
        raise ConnectionError(f"down {len(attempts)}")

    with pytest.raises(ConnectionError, match="down 3"):
        asyncio.run(always_down())
    assert clock.sleeps == [1.0, 2.0]


def test_retry_config_keeps_older_spellings() -> None:
    """initial_delay/exponential_base/retry_exceptions are accepted and readable; it is a commtel RetryConfig."""
    from commtel.compat import RetryConfig

    config = RetryConfig(max_attempts=4, initial_delay=0.5, exponential_base=3.0, jitter=False)
    assert isinstance(config, commtel.RetryConfig)
    assert (config.base_delay, config.backoff_factor, config.initial_delay, config.exponential_base) == (
        0.5,
        3.0,
        0.5,
        3.0,
    )
    positional = RetryConfig(5, 2.0, 10.0, 1.5, [KeyError], [418])
    assert positional.max_attempts == 5 and positional.base_delay == 2.0 and positional.max_delay == 10.0
    assert positional.backoff_factor == 1.5 and positional.retry_exceptions == [KeyError]
    assert positional.retry_status_codes == frozenset({418})
    assert positional.merge(max_attempts=2).retry_exceptions == [KeyError]  # merge keeps the class
    with pytest.raises(commtel.ConfigurationError, match="max_attempts"):
        RetryConfig(max_attempts=0)


def test_circuit_breaker_and_error_tracker() -> None:
    """CircuitBreaker opens after failure_threshold failures; ErrorTracker keeps going and summarises."""
    from commtel.compat import CircuitBreaker, ErrorTracker

    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)

    def fail() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(fail)

    tracker = ErrorTracker("import")
    for item in ["1", "x", "3"]:
        with tracker.track(item):
            int(item)
    summary = tracker.get_summary()
    assert (summary["total"], summary["successful"], summary["failed"]) == (3, 2, 1)
    assert summary["errors"][0]["item"] == "x" and summary["errors"][0]["type"] == "ValueError"


def test_structured_formatter_context_logger_and_logging_context(capsys: pytest.CaptureFixture[str]) -> None:
    """StructuredFormatter writes JSON; ContextLogger adds its context; LoggingContext adds fields in a block only."""
    from commtel.compat import ContextLogger, LoggingContext, StructuredFormatter, get_logger

    stream_handler = logging.StreamHandler()
    stream_handler.setFormatter(StructuredFormatter())
    base = logging.getLogger("compat.ctx")
    base.addHandler(stream_handler)
    base.setLevel(logging.INFO)
    base.propagate = False
    try:
        ContextLogger(base, {"tenant": "acme"}).info("with context", step=1)
        with LoggingContext(operation="discovery", resource_type="vm"):
            base.info("plain stdlib logger inside")
            with LoggingContext(resource_type="disk"):
                get_logger("compat.ctx", {"tenant": "globex"}).info("nested")
        base.info("after")
    finally:
        base.removeHandler(stream_handler)
        base.propagate = True
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["tenant"] == "acme" and lines[0]["step"] == 1
    assert lines[1]["operation"] == "discovery" and lines[1]["resource_type"] == "vm"
    assert (
        lines[2]["resource_type"] == "disk" and lines[2]["tenant"] == "globex" and lines[2]["operation"] == "discovery"
    )
    assert "operation" not in lines[3] and "resource_type" not in lines[3]


def test_logging_context_is_isolated_per_thread(capsys: pytest.CaptureFixture[str]) -> None:
    """A LoggingContext in one thread never shows on another thread's lines."""
    from commtel.compat import LoggingContext, StructuredFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter())
    log = logging.getLogger("compat.threads")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    inside = threading.Event()
    logged = threading.Event()

    def other() -> None:
        inside.wait(5)
        log.info("other thread")
        logged.set()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        with LoggingContext(job="batch-7"):
            inside.set()
            logged.wait(5)
            log.info("this thread")
    finally:
        thread.join(5)
        log.removeHandler(handler)
        log.propagate = True
    lines = {entry["message"]: entry for entry in map(json.loads, capsys.readouterr().err.strip().splitlines())}
    assert lines["this thread"]["job"] == "batch-7"
    assert "job" not in lines["other thread"]


def test_log_operation_metrics_logs_one_line(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    """log_operation_metrics writes the operation, duration, success, counts and extra fields."""
    from commtel.compat import log_operation_metrics, setup_logging

    setup_logging("INFO", json_format=True)
    log_operation_metrics("discover_vms", 1.23456, True, items_processed=40, errors=2, region="eu")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "Operation metrics: discover_vms"
    assert line["duration_seconds"] == 1.235
    assert (line["success"], line["items_processed"], line["errors"], line["region"]) == (True, 40, 2, "eu")


def test_setup_logging_text_format(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    """json_format=False (the default) writes human-readable lines with the same ids."""
    from commtel.compat import get_logger, set_correlation_id, setup_logging

    def example() -> None:
        setup_logging("INFO")
        set_correlation_id("text-1")
        get_logger("compat.text").warning("plain line")

    isolated(example)
    text = capsys.readouterr().err
    assert "WARNING" in text and "compat.text: plain line" in text and "correlation_id=text-1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.strip().splitlines()[-1])
