"""NaN, infinities and negatives from TOML policies and the environment, and hostile Retry-After values.

TOML has ``nan`` and ``inf`` literals, so a policy file can say ``max_attempts = nan``
(which used to retry forever); each such value is refused when the file is loaded,
with the file, the table and the field in the message. A server's ``Retry-After`` that
is negative or not a number is ignored: the caller backs off as if there were no hint.
"""

from __future__ import annotations

import math

import httpx
import pytest

from commtel import ConfigurationError, RetryConfig, RetryPolicy
from commtel.instrumentation import HostPolicies
from commtel.ratelimit import RateLimitConfig
from commtel.retries._classify import retry_after_s


@pytest.mark.parametrize(
    ("table", "line", "field"),
    [
        ("default.retry", "max_attempts = nan", "max_attempts"),
        ("default.retry", "max_attempts = inf", "max_attempts"),
        ("default.retry", "max_attempts = -1", "max_attempts"),
        ("default.retry", "max_attempts = 2.5", "max_attempts"),
        ("default.retry", "backoff_factor = nan", "backoff_factor"),
        ("default.retry", "base_delay = -inf", "base_delay"),
        ("default.retry", "jitter_factor = nan", "jitter_factor"),
        ("default.retry", 'retry_status_codes = [500, "x"]', "retry_status_codes"),
        ("default.breaker", "failure_threshold = nan", "failure_threshold"),
        ("default.breaker", "recovery_timeout = inf", "recovery_timeout"),
        ("default.breaker", "failure_rate_threshold = nan", "failure_rate_threshold"),
        ('hosts."api.example.com".rate_limit', "rate = inf", "rate"),
        ('hosts."api.example.com".rate_limit', "rate = nan", "rate"),
        ('hosts."api.example.com".rate_limit', "per_minute = -5", "limit"),
        ("platforms.x.rate_limit", "limit = 10\nwindow_s = nan", "window_s"),
    ],
)
def test_hostile_numbers_in_a_toml_policy_are_refused_at_load(tmp_path, table: str, line: str, field: str) -> None:
    path = tmp_path / "policies.toml"
    path.write_text(f"[{table}]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=field) as info:
        HostPolicies.from_toml(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e400", "0x10", "3.5", "", "ten"])
def test_hostile_numbers_in_rate_limit_variables_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_REQUESTS_PER_MINUTE"):
        RateLimitConfig.from_env(environ={"RATE_LIMIT_REQUESTS_PER_MINUTE": value})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "2.5", "1e400", '"3"'])
def test_hostile_numbers_in_the_policies_variable_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        HostPolicies.from_env(environ={"COMMTEL_POLICIES": f"[default.retry]\nmax_attempts = {value}"})


@pytest.mark.parametrize("header", ["-30", "nan", "NaN", "inf", "-inf", "1e999", "soon", "", "   "])
def test_a_hostile_retry_after_is_ignored_not_obeyed(header: str) -> None:
    """Retry-After: -30 or NaN used to mean "retry at once"; now the backoff applies."""
    response = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after_s(response) is None
    policy = RetryPolicy(RetryConfig(max_attempts=2, base_delay=0.5, jitter=False), operation="hostile-retry-after")
    call = policy.begin(0.0)
    assert call.on_result(response, "429", 0.0) == 0.5


def test_a_valid_retry_after_is_still_obeyed() -> None:
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "0"})) == 0.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


@pytest.mark.parametrize("hint", [math.nan, -30.0, math.inf])
def test_a_hostile_retry_after_attribute_is_ignored(hint: float) -> None:
    class Throttled(Exception):
        retry_after_s = hint

    assert retry_after_s(Throttled()) is None
