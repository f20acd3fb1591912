"""The communication-utils API through commtel.compat: each README example, then behaviour tests.

Every example keeps its text; only the import line changes, placeholders the README leaves
to the reader (paths, ``client_id``, ``update_shared_resource`` …) are defined first, and
the remote services are real local ones: the simulated platform for HTTP APIs and authlib's
authorization server for OAuth.
"""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from commtel.oauth import OAuthProvider
from commtel.oauth import _providers
from commtel.simulator import SimulatedPlatform
from tests.compat.helpers import isolated
from tests.harness.clock import FakeClock


def test_rate_limiting_example(clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """for_platform presets, can_proceed / time_until_ready, and the global limiter."""
    # fmt: off
    from commtel.compat import RateLimiter, GlobalRateLimiter

    # Single platform rate limiter
    limiter = RateLimiter.for_platform("twitter")  # 300 req/15min

    if limiter.can_proceed():
        # Make API call
        pass
    else:
        wait_time = limiter.time_until_ready()
        print(f"Wait {wait_time}s before next request")

    # Global rate limiter for multiple platforms
    global_limiter = GlobalRateLimiter()
    global_limiter.add_limiter("twitter", RateLimiter.for_platform("twitter"))
    global_limiter.add_limiter("email", RateLimiter.for_platform("email"))

    if global_limiter.can_proceed("twitter"):
        # Make Twitter API call
        pass

    # fmt: on
    assert capsys.readouterr().out == ""  # the first call proceeded
    assert sum(limiter.can_proceed() for _ in range(400)) == 299  # 300 per window, one already taken
    assert limiter.time_until_ready() == pytest.approx(900.0)  # 15 minutes
    assert sum(global_limiter.can_proceed("twitter") for _ in range(400)) == 299  # its own limiter, its own budget


def test_message_headers_example() -> None:
    """create / to_dict / parse_headers."""
    # fmt: off
    from commtel.compat import MessageHeaders

    # Create new message with universal ID
    headers = MessageHeaders.create(
        subject="Re: Previous discussion",
        in_reply_to="<message-id-123>",
        platform="email"
    )

    # Serialize for storage
    headers_dict = headers.to_dict()

    # Parse from email
    email_content = "Subject: Test\nMessage-ID: <123>\n\nBody..."
    parsed = MessageHeaders.parse_headers(email_content)

    # fmt: on
    assert headers_dict["subject"] == "Re: Previous discussion"
    assert headers_dict["in_reply_to"] == "<message-id-123>"
    assert MessageHeaders.from_dict(headers_dict) == headers
    assert parsed.subject == "Test" and parsed.message_id == "<123>"


@pytest.fixture
def twitter_is_local(authserver: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The "twitter" OAuth preset pointed at a real local authorization server; returns (client_id, client_secret)."""
    local = OAuthProvider(
        name="twitter",
        authorize_url=f"{authserver.url}/authorize",
        token_url=f"{authserver.url}/token",
        revocation_url=f"{authserver.url}/revoke",
        scopes=("read",),
    )
    monkeypatch.setattr(_providers, "PROVIDERS", {**_providers.PROVIDERS, "twitter": local})
    authserver.register_client("twitter-app", "twitter-app-secret-1")
    return "twitter-app", "twitter-app-secret-1"


def authserver_approve(url: str) -> str:
    from tests.oauth.authserver import approve

    return approve(url)


def test_authentication_example(
    twitter_is_local: tuple[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Token from the environment, bearer header, and the three OAuth steps against a real server."""
    monkeypatch.setenv("TWITTER_ACCESS_TOKEN", "env-access-token-1")
    client_id, client_secret = twitter_is_local

    # fmt: off
    from commtel.compat import TokenManager, OAuthManager

    # Token management
    token = TokenManager.get_token("twitter")
    if token:
        headers = TokenManager.create_bearer_header(token)
        # Use headers in API request

    # OAuth flow
    oauth = OAuthManager.for_twitter(client_id, client_secret)

    # Step 1: Get authorization URL
    auth_url = oauth.get_authorization_url(state="random_state")
    print(f"Visit: {auth_url}")

    auth_code = parse_qs(urlsplit(authserver_approve(auth_url)).query)["code"][0]  # the user approves in a browser

    # Step 2: Exchange code for token
    token_info, error = oauth.exchange_code_for_token(auth_code)
    if token_info:
        print(f"Access token: {token_info.token}")

    # Step 3: Refresh expired token
    if token_info.is_expired():
        new_token, error = oauth.refresh_token(token_info.refresh_token)

    # fmt: on
    assert headers == {"Authorization": "Bearer env-access-token-1"}
    assert "state=random_state" in auth_url
    assert error is None and token_info.token and not token_info.is_expired()
    assert f"Access token: {token_info.token}" in capsys.readouterr().out
    new_token, error = oauth.refresh_token(token_info.refresh_token)  # refreshing works when it is needed
    assert error is None and new_token.token != token_info.token
    again, error = oauth.refresh_token(token_info.refresh_token)  # the old refresh token was rotated away
    assert again is None and error is not None and error.error == "invalid_grant"
    oauth.close()


def test_state_management_example(tmp_path: Path) -> None:
    """FileLock(...).locked(), and the conversation tracker's manual form on a state directory."""
    lock_path = str(tmp_path / "mylock.lock")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    updates = []

    def update_shared_resource() -> None:
        updates.append("updated")

    # fmt: off
    from commtel.compat import FileLock, ConversationTracker, MessageState

    # File locking
    with FileLock(lock_path).locked():
        # Critical section - only one process at a time
        update_shared_resource()

    # Conversation tracking
    tracker = ConversationTracker(str(state_dir))

    # Track new message
    tracker.track_message(
        conversation_id="conv-123",
        message_id="msg-456",
        in_reply_to="msg-455"
    )

    # Update message state
    tracker.set_message_state("conv-123", "msg-456", MessageState.IN_PROGRESS)
    tracker.set_message_state("conv-123", "msg-456", MessageState.COMPLETED)

    # Get pending messages
    pending = tracker.get_pending_messages("conv-123")

    # fmt: on
    assert updates == ["updated"]
    assert pending == []
    assert tracker.get_message_state("conv-123", "msg-456") is MessageState.COMPLETED
    tracker.close()
    assert any(state_dir.iterdir())  # the state lives in that directory


def test_logging_and_monitoring_example(
    tmp_path: Path, restore_logging: None, platform: SimulatedPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure_logging to a file, a platform logger with keyword fields, and MetricsCollector statistics."""
    log_file = str(tmp_path / "app.log")

    def send_tweet_api_call() -> None:
        requests.post(f"{platform.url}/api/tweets", timeout=5).raise_for_status()

    # fmt: off
    from commtel.compat import (
        get_logger,
        configure_logging,
        MetricsCollector,
    )

    # Configure logging
    configure_logging(level="INFO", log_file=log_file)

    # Get platform-specific logger
    logger = get_logger("myapp", "twitter")
    logger.info("Processing tweet", tweet_id=123, user="@handle")
    logger.error("API error", status_code=429, retry_after=60)

    # Collect metrics
    metrics = MetricsCollector()

    # Track operation
    op = metrics.start_operation("send_tweet", "twitter")
    try:
        send_tweet_api_call()
        op.complete(success=True)
    except Exception as e:
        op.complete(success=False, error=str(e))

    # Get statistics
    stats = metrics.get_stats(platform="twitter")
    print(f"Success rate: {stats['success_rate']}%")
    print(f"Average duration: {stats['avg_duration']}s")

    # Get operation breakdown
    breakdown = metrics.get_operation_breakdown()
    for operation, stats in breakdown.items():
        print(f"{operation}: {stats['successful']}/{stats['total']} successful")

    # fmt: on
    lines = [json.loads(line) for line in Path(log_file).read_text().splitlines()]
    assert (lines[0]["message"], lines[0]["platform"], lines[0]["tweet_id"], lines[0]["user"]) == (
        "Processing tweet",
        "twitter",
        123,
        "@handle",
    )
    assert lines[1]["level"] == "ERROR" and lines[1]["retry_after"] == 60
    out = capsys.readouterr().out
    assert "Success rate: 100.0%" in out and "send_tweet: 1/1 successful" in out
    assert platform.stats.requests == 1


def test_error_handling_example(clock: FakeClock) -> None:
    """retry / retry(config=) / retry_with_rate_limit against a real local API (503s and a 429)."""
    with SimulatedPlatform("example-api", limit=1, window_s=30.0) as limited, SimulatedPlatform("data-api") as data:
        api = data.url  # stands for https://api.example.com
        limited_api = limited.url
        data.fail_next(2, 503)

        # fmt: off
        from commtel.compat import (
            retry,
            retry_with_rate_limit,
            RetryConfig,
            RateLimitError,
        )

        # Simple retry decorator
        @retry(max_attempts=3, initial_delay=1.0)
        def api_call():
            response = requests.get(f"{api}/data")
            response.raise_for_status()
            return response.json()

        # Retry with custom configuration
        config = RetryConfig(
            max_attempts=5,
            initial_delay=2.0,
            max_delay=60.0,
            exponential_base=2.0,
            jitter=True,
        )

        @retry(config=config)
        def complex_api_call():
            # Will retry up to 5 times with exponential backoff
            pass

        # Rate limit aware retry
        @retry_with_rate_limit(max_attempts=5)
        def rate_limited_api():
            response = requests.get(f"{limited_api}/limited")
            if response.status_code == 429:
                retry_after = int(response.headers.get("Retry-After", 60))
                raise RateLimitError("twitter", retry_after=retry_after)
            return response.json()

        # fmt: on
        assert api_call()["path"] == "/data"  # two 503s retried away
        assert data.stats.errors == 2
        assert len(clock.sleeps) == 2 and 0.9 <= clock.sleeps[0] <= 1.1 and 1.8 <= clock.sleeps[1] <= 2.2
        assert complex_api_call() is None
        assert rate_limited_api()["ok"] is True  # the first call fits the quota
        clock.sleeps.clear()
        with pytest.raises(RateLimitError) as raised:
            rate_limited_api()  # over quota: waits each Retry-After, then gives up after 5 attempts
        assert raised.value.platform == "twitter" and 1 <= raised.value.retry_after <= 30
        assert len(clock.sleeps) == 4 and all(1 <= s <= 30 for s in clock.sleeps)
        assert limited.stats.throttled == 5


def test_retry_exhaustion_reraises_the_last_error(clock: FakeClock) -> None:
    """retry re-raises the last original exception when attempts run out; a non-retryable one at once."""
    from commtel.compat import retry

    attempts: list[int] = []

    @retry(max_attempts=3, initial_delay=0.5, jitter=False)
    def down() -> None:
        attempts.append(1)
        raise TimeoutError(f"attempt {len(attempts)}")

    with pytest.raises(TimeoutError, match="attempt 3"):
        down()
    assert clock.sleeps == [0.5, 1.0]

    @retry(max_attempts=3)
    def wrong() -> None:
        attempts.append(1)
        raise KeyError("not retryable")

    attempts.clear()
    with pytest.raises(KeyError):
        wrong()
    assert attempts == [1]


def test_metrics_collector_records_failures_and_error_types() -> None:
    """A failed operation counts as failed, by error type; the success rate follows."""
    from commtel.compat import MetricsCollector

    metrics = MetricsCollector()
    metrics.start_operation("send_tweet", "twitter").complete(success=True)
    metrics.start_operation("send_tweet", "twitter").complete(success=False, error="HTTPError: 503")
    metrics.start_operation("send_mail", "email").complete(success=True)
    stats = metrics.get_stats(platform="twitter")
    assert (stats["total"], stats["successful"], stats["failed"], stats["success_rate"]) == (2, 1, 1, 50.0)
    assert stats["errors_by_type"] == {"HTTPError": 1}
    assert metrics.get_operation_breakdown()["send_mail"]["successful"] == 1


def test_platform_logger_keeps_correlation_id(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    """get_logger(name, platform) lines carry the platform and the current correlation id."""
    from commtel.compat import configure_logging, get_logger, set_correlation_id

    def example() -> None:
        configure_logging(level="INFO")
        set_correlation_id("corr-42")
        get_logger("bot", "discord").info("sent", channel="general")

    isolated(example)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["platform"], line["correlation_id"], line["channel"]) == ("discord", "corr-42", "general")
