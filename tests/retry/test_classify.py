"""Which outcomes are retryable, with what reason, and how long the server asked to wait."""

from __future__ import annotations

import time

import httpx
import pytest
import requests

from yarl import URL as yarl_url

from commtel import CircuitOpenError, RetryConfig
from commtel.errors import RateLimitedByServer
from commtel.retries._classify import Classifier, retry_after_s


def _reason(exc: BaseException, **options: object) -> str | None:
    return Classifier(RetryConfig(**options)).error(exc)  # type: ignore[arg-type]


def _http_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://example.invalid/x")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError("boom", request=request, response=response)


def test_library_errors_are_classified_without_importing_them() -> None:
    """httpx and requests timeouts/connection errors and HTTP statuses are recognised by duck typing."""
    assert _reason(httpx.ConnectError("x")) == "ConnectError"
    assert _reason(httpx.ReadTimeout("x")) == "ReadTimeout"
    assert _reason(requests.ConnectionError("x")) == "ConnectionError"
    assert _reason(requests.Timeout("x")) == "Timeout"
    assert _reason(_http_error(503)) == "503"
    assert _reason(_http_error(429)) == "rate_limited"
    assert _reason(_http_error(404)) is None
    assert _reason(_http_error(404), retry_status_codes=[404]) == "404"


def test_an_exceptions_own_http_status_counts() -> None:
    """aiohttp's and urllib's errors carry the status as ``.status``; a ``.status`` that is not a number is none."""
    import urllib.error

    import aiohttp

    info = aiohttp.RequestInfo(yarl_url("http://example.invalid/x"), "GET", {}, yarl_url("http://example.invalid/x"))  # type: ignore[arg-type]
    assert _reason(aiohttp.ClientResponseError(info, (), status=503)) == "503"
    assert _reason(aiohttp.ClientResponseError(info, (), status=429)) == "rate_limited"
    assert _reason(aiohttp.ClientResponseError(info, (), status=404)) is None
    assert _reason(urllib.error.HTTPError("http://example.invalid/x", 502, "Bad Gateway", None, None)) == "502"  # type: ignore[arg-type]
    odd = ValueError("x")
    odd.status = "503"  # type: ignore[attr-defined]
    assert _reason(odd) is None


def test_flags_switch_families_off() -> None:
    """Each retry_on_* flag removes its family."""
    assert _reason(_http_error(503), retry_on_server_error=False) is None
    assert _reason(_http_error(429), retry_on_rate_limit=False) is None
    assert _reason(RateLimitedByServer("p", 1), retry_on_rate_limit=False) is None
    assert _reason(httpx.ConnectError("x"), retry_on_connection_error=False) is None


def test_predicate_and_types() -> None:
    """`on` accepts a predicate as well as types; BaseExceptions are never retried."""
    assert _reason(ValueError("x"), on=lambda e: "x" in str(e)) == "ValueError"
    assert _reason(KeyboardInterrupt(), on=(BaseException,)) is None  # type: ignore[arg-type]


def test_result_statuses() -> None:
    """Responses are judged by status: requests and httpx alike, 200 accepted."""
    classifier = Classifier(RetryConfig())
    response = requests.Response()
    response.status_code = 502
    assert classifier.result(response) == "502"
    assert classifier.result(httpx.Response(200)) is None
    assert classifier.result(None) is None


def test_retry_after_sources() -> None:
    """Retry-After comes from RateLimitedByServer, CircuitOpenError, or the header (seconds or date)."""
    assert retry_after_s(RateLimitedByServer("p", retry_after=12)) == 12
    assert retry_after_s(CircuitOpenError("b", 3.5)) == 3.5
    assert retry_after_s(_http_error(429, {"Retry-After": "9"})) == 9
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 58 <= (retry_after_s(httpx.Response(503, headers={"Retry-After": date})) or 0) <= 61
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after_s(httpx.Response(503)) is None


@pytest.mark.parametrize("value", [-1, float("nan")])
def test_negative_durations_are_rejected(value: float) -> None:
    """Durations must be non-negative numbers."""
    with pytest.raises(ValueError, match="base_delay"):
        RetryConfig(base_delay=value)
