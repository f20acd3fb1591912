"""Fallback: a value or handler answers a failed call; the failure is counted, logged and on the span."""

from __future__ import annotations

import asyncio
import logging

import pytest

from prometheus_client import CollectorRegistry

from commtel.concurrency import Bulkhead
from commtel.errors import CircuitOpenError, ConfigurationError
from commtel.fallback import Failure, Fallback
from commtel.telemetry import start_span


def _fails(exc: BaseException):
    def call() -> str:
        raise exc

    return call


def _sample(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("commtel_fallbacks_total", labels) or 0.0


def test_value_answers_a_failed_call_and_the_failure_is_recorded(
    registry: CollectorRegistry, spans, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller gets the value; the metric counts it; the span carries the exception; a warning is logged."""
    prices = Fallback({}, name="prices")
    with caplog.at_level(logging.WARNING, logger="commtel.fallback"), start_span("op"):
        assert prices.call(_fails(ConnectionError("down"))) == {}
    assert _sample(registry, fallback="prices", reason="error") == 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "op"]
    names = [e.name for e in span.events]
    assert "exception" in names and "commtel.fallback.used" in names
    (used,) = [e for e in span.events if e.name == "commtel.fallback.used"]
    assert used.attributes["error.type"] == "ConnectionError"
    assert "fallback prices answered a failed call (error: ConnectionError: down)" in caplog.text


def test_success_passes_through_untouched(registry: CollectorRegistry) -> None:
    """A call that works returns its own result and counts nothing."""
    assert Fallback(0).call(lambda: 42) == 42
    assert _sample(registry, fallback="default", reason="error") == 0


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (CircuitOpenError("b", 1.0), "rejected"),
        (TimeoutError("slow"), "timeout"),
        (ValueError("bad"), "error"),
    ],
)
def test_reason_label_says_why(registry: CollectorRegistry, error: Exception, reason: str) -> None:
    """Rejections (breaker, limiter, bulkhead), timeouts and other errors are told apart (bounded label)."""
    Fallback(None, name="f").call(_fails(error))
    assert _sample(registry, fallback="f", reason=reason) == 1


def test_bulkhead_refusal_is_a_rejection(registry: CollectorRegistry) -> None:
    """A full bulkhead's refusal is answered by the fallback and labelled rejected."""
    bulkhead = Bulkhead("b", max_concurrent=1)
    with bulkhead:
        assert Fallback("busy", name="f").call(bulkhead.call, lambda: "ran") == "busy"
    assert _sample(registry, fallback="f", reason="rejected") == 1


def test_handler_gets_the_failure_and_results_can_fail_too() -> None:
    """A handler is called with the Failure; on_result turns a returned value into a failure."""
    seen: list[Failure] = []

    def handler(failure: Failure) -> str:
        seen.append(failure)
        return "cached"

    fallback = Fallback(handler=handler, on_result=lambda r: r == "stale")
    assert fallback.call(_fails(KeyError("k"))) == "cached"
    assert fallback.call(lambda: "stale") == "cached"
    assert isinstance(seen[0].error, KeyError)
    assert seen[1] == Failure(None, "stale")


def test_only_matching_errors_are_replaced_never_cancellation() -> None:
    """Errors outside `on` propagate; so do cancellation and KeyboardInterrupt."""
    fallback = Fallback("x", on=ConnectionError)
    with pytest.raises(ValueError):
        fallback.call(_fails(ValueError("not mine")))

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Fallback("x").acall(cancelled))


def test_async_paths_await_an_async_handler() -> None:
    """acall and the async decorator answer with an awaited async handler."""

    async def handler(failure: Failure) -> str:
        return f"fallback for {type(failure.error).__name__}"

    @Fallback(handler=handler)
    async def fetch() -> str:
        raise ConnectionError

    assert asyncio.run(fetch()) == "fallback for ConnectionError"
    assert asyncio.run(Fallback(7).acall(_async_fail)) == 7


async def _async_fail() -> int:
    raise OSError("boom")


def test_needs_exactly_one_of_value_and_handler() -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        Fallback()
    with pytest.raises(ConfigurationError, match="exactly one"):
        Fallback(1, handler=lambda f: 2)
