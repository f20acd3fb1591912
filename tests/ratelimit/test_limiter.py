"""RateLimiter behaviour through its sync and async drivers, on a fake clock."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import commtel
import commtel.events

from commtel import (
    ConfigurationError,
    GlobalRateLimiter,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    rate_limited,
)
from commtel.ratelimit import (
    MemoryBackend,
    SlidingWindow,
    TokenBucket,
    extract_endpoint_from_url,
    get_rate_limiter,
)
from commtel.testing import set_testing
from tests.harness.clock import FakeClock


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """The same behaviour through acquire and aacquire."""
    return str(request.param)


def _acquire(mode: str, limiter: RateLimiter, key: str = "default", cost: int = 1, **kwargs: object) -> object:
    if mode == "sync":
        return limiter.acquire(key, cost, **kwargs)  # type: ignore[arg-type]
    return asyncio.run(limiter.aacquire(key, cost, **kwargs))  # type: ignore[arg-type]


def test_try_acquire_reports_remaining_and_retry(clock: FakeClock) -> None:
    """try_acquire admits up to the limit, then says exactly when to retry, never waiting."""
    limiter = RateLimiter(SlidingWindow(2, 10.0))
    first, second, third = (limiter.try_acquire("k") for _ in range(3))
    assert (first.allowed, first.remaining, first.limit) == (True, 1, 2)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third and third.retry_after_s == pytest.approx(10.0)
    assert clock.sleeps == []
    clock.advance(10.0)
    assert limiter.try_acquire("k")


def test_keys_are_independent(clock: FakeClock) -> None:
    """Each key has its own budget; reset forgets one key only."""
    limiter = RateLimiter(TokenBucket(1.0, 1))
    assert limiter.try_acquire("a") and limiter.try_acquire("b")
    assert not limiter.try_acquire("a") and not limiter.try_acquire("b")
    limiter.reset("a")
    assert limiter.try_acquire("a") and not limiter.try_acquire("b")


def test_acquire_waits_until_admitted(mode: str, clock: FakeClock) -> None:
    """acquire/aacquire sleep exactly the retry delay, then admit."""
    limiter = RateLimiter(TokenBucket(2.0, 1))
    _acquire(mode, limiter)
    decision = _acquire(mode, limiter)
    assert decision
    assert clock.sleeps == [pytest.approx(0.5)]


def test_acquire_raises_instead_of_waiting_past_timeout(mode: str, clock: FakeClock) -> None:
    """A wait longer than the timeout raises RateLimitExceeded at once, without sleeping."""
    limiter = RateLimiter(SlidingWindow(1, 60.0), name="slow")
    _acquire(mode, limiter)
    with pytest.raises(RateLimitExceeded) as info:
        _acquire(mode, limiter, timeout=5.0)
    assert info.value.limiter == "slow"
    assert info.value.retry_after_s == pytest.approx(60.0)
    assert clock.sleeps == []


def test_cost_above_one_and_invalid_costs(clock: FakeClock) -> None:
    """A request may cost several units; a cost above the capacity is a configuration error."""
    limiter = RateLimiter(TokenBucket(1.0, 5))
    assert limiter.try_acquire("k", 3).remaining == 2
    assert not limiter.try_acquire("k", 3)
    with pytest.raises(ConfigurationError, match="cost"):
        limiter.try_acquire("k", 6)
    with pytest.raises(ConfigurationError, match="cost"):
        limiter.try_acquire("k", 0)


def test_context_manager_sync_and_async(clock: FakeClock) -> None:
    """limit() works with `with` and `async with`, and yields the admitting decision."""
    limiter = RateLimiter(SlidingWindow(1, 1.0))
    with limiter.limit("k") as decision:
        assert decision.allowed

    async def main() -> None:
        async with limiter.limit("k") as again:
            assert again.allowed

    asyncio.run(main())
    assert clock.sleeps == [pytest.approx(1.0)]


def test_decorator_on_function_method_and_coroutine(clock: FakeClock) -> None:
    """rate_limited wraps functions, methods and coroutines; key_func sees the call's arguments."""
    limiter = RateLimiter(SlidingWindow(1, 10.0))
    keys: list[str] = []

    def key_of(user: str, *_: object) -> str:
        keys.append(user)
        return f"user_{user}"

    @rate_limited(limiter, key_func=key_of, timeout=0)
    def post(user: str, text: str) -> str:
        return text

    class Client:
        @rate_limited(limiter, key="method", timeout=0)
        def send(self, text: str) -> str:
            return text

    @rate_limited(limiter, key="coro", timeout=0)
    async def apost(text: str) -> str:
        return text

    assert post("ann", "hi") == "hi"
    assert post("bob", "yo") == "yo"
    with pytest.raises(RateLimitExceeded):
        post("ann", "again")
    assert keys == ["ann", "bob", "ann"]
    assert Client().send("x") == "x"
    with pytest.raises(RateLimitExceeded):
        Client().send("y")
    assert asyncio.run(apost("z")) == "z"
    with pytest.raises(RateLimitExceeded):
        asyncio.run(apost("z"))
    assert post.__name__ == "post"


def test_config_endpoint_budget_peek_and_reset(clock: FakeClock) -> None:
    """An endpoint budget refuses past its limit; time_until_ready peeks without consuming; reset clears."""
    config = RateLimitConfig(
        requests_per_minute=30,
        requests_per_hour=500,
        endpoint_limits={"media": {"minute": 2, "hour": 100}},
        platform_limits={"mastodon": {"minute": 300, "hour": 5000}},
    )
    limiter = RateLimiter(config)
    results = [limiter.try_acquire("user_123", endpoint="media", platform="mastodon") for _ in range(3)]
    assert [decision.allowed for decision in results] == [True, True, False]
    assert results[2].as_info()["limit"] == 2
    assert limiter.time_until_ready("user_123", endpoint="media", platform="mastodon") == pytest.approx(60.0)
    assert limiter.time_until_ready("user_123", endpoint="media", platform="mastodon") == pytest.approx(60.0)
    # Another endpoint of the same platform has its own (platform) budget left.
    assert limiter.try_acquire("user_123", endpoint="posts", platform="mastodon")
    limiter.reset("user_123")
    assert limiter.try_acquire("user_123", endpoint="media", platform="mastodon")


def test_config_platform_overrides_and_burst(clock: FakeClock) -> None:
    """Platform limits override the global ones; max_burst paces requests at the per-minute rate."""
    config = RateLimitConfig(requests_per_minute=2, max_burst=2, platform_limits={"fast": {"minute": 600}})
    limiter = RateLimiter(config)
    assert [limiter.try_acquire("k").allowed for _ in range(3)] == [True, True, False]
    fast = [limiter.try_acquire("k", platform="fast").allowed for _ in range(3)]
    assert fast == [True, True, False]  # the burst of 2 still applies
    clock.advance(0.1)  # 600/min = one every 0.1 s
    assert limiter.try_acquire("k", platform="fast")


def test_presets_and_time_until_ready(clock: FakeClock) -> None:
    """for_platform builds a limiter from a published preset; time_until_ready says when the next call fits."""
    limiter = RateLimiter.for_platform("Discord")
    assert limiter.name == "discord"
    assert all(limiter.try_acquire() for _ in range(5))
    assert not limiter.try_acquire()
    assert limiter.time_until_ready() == pytest.approx(5.0)
    with pytest.raises(ConfigurationError, match="unknown rate-limit preset platform='myspace'"):
        RateLimiter.for_platform("myspace")


def test_global_limiter_caps_the_sum_across_platforms(clock: FakeClock) -> None:
    """GlobalRateLimiter admits only what both the platform and the cross-platform cap allow."""
    manager = GlobalRateLimiter(SlidingWindow(3, 60.0))
    manager.add_limiter("twitter", RateLimiter(SlidingWindow(2, 60.0), name="twitter"))
    manager.add_limiter("email", RateLimiter(SlidingWindow(10, 60.0), name="email"))
    assert manager.try_acquire("twitter") and manager.try_acquire("twitter")
    assert not manager.try_acquire("twitter")  # platform limit
    assert manager.try_acquire("email")
    assert not manager.try_acquire("email")  # the cap (3 in total)
    assert manager.get_limiter("email").time_until_ready() == 0.0  # the refused call consumed nothing
    assert manager.time_until_ready("email") == pytest.approx(60.0)
    with pytest.raises(RateLimitExceeded):
        manager.acquire("email", timeout=1.0)
    assert asyncio.run(manager.aacquire("email", timeout=120.0))
    assert manager.get_limiter("slack").name == "slack"  # made from its preset


def test_invalid_configuration_names_the_field() -> None:
    """Zero/negative rates, unknown timeframes, mixed arguments and bad env values raise ConfigurationError."""
    cases = [
        (lambda: TokenBucket(0, 1), "TokenBucket.rate"),
        (lambda: TokenBucket(1.0, 0), "TokenBucket.burst"),
        (lambda: SlidingWindow(-1, 1.0), "SlidingWindow.limit"),
        (lambda: SlidingWindow(1, float("inf")), "SlidingWindow.window_s"),
        (lambda: RateLimiter(TokenBucket(1, 1), TokenBucket(2, 2)), "at most one TokenBucket"),
        (lambda: RateLimitConfig(requests_per_minute=0), "requests_per_minute"),
        (lambda: RateLimitConfig(endpoint_limits={"media": {"fortnight": 3}}), "unknown timeframe"),
        (lambda: RateLimitConfig(platform_limits={"x": {"minute": -5}}), r"platform_limits\['x'\]\['minute'\]"),
        (lambda: RateLimitConfig.from_env(environ={"RATE_LIMIT_MAX_BURST": "many"}), "RATE_LIMIT_MAX_BURST"),
        (
            lambda: RateLimitConfig.from_env(environ={"RATE_LIMIT_ENDPOINT_MEDIA_MINUTE": "0"}),
            "RATE_LIMIT_ENDPOINT_MEDIA_MINUTE",
        ),
        (lambda: RateLimiter(SlidingWindow(1, 1.0), max_server_wait_s=0), "max_server_wait_s"),
    ]
    for make, field in cases:
        with pytest.raises(ConfigurationError, match=field):
            make()


def test_from_env_reads_every_documented_variable() -> None:
    """from_env reads global, endpoint, platform and platform-endpoint limits (names may hold underscores)."""
    config = RateLimitConfig.from_env(
        environ={
            "RATE_LIMIT_REQUESTS_PER_MINUTE": "30",
            "RATE_LIMIT_MAX_BURST": "5",
            "RATE_LIMIT_ENDPOINT_MEDIA_UPLOAD_MINUTE": "10",
            "RATE_LIMIT_MASTODON_HOUR": "5000",
            "RATE_LIMIT_MASTODON_ENDPOINT_MEDIA_MINUTE": "100",
            "RATE_LIMIT_BACKEND_URL": "ignored",
            "OTHER": "1",
        }
    )
    assert (config.requests_per_minute, config.max_burst, config.requests_per_hour) == (30, 5, 1000)
    assert config.endpoint_limits == {"media_upload": {"minute": 10}}
    assert config.platform_limits == {"mastodon": {"hour": 5000}}
    assert config.platform_endpoint_limits == {"mastodon": {"media": {"minute": 100}}}


def test_get_rate_limiter_is_a_singleton_per_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_rate_limiter returns one limiter until a different config replaces it."""
    from commtel.ratelimit import _global as _ratelimit_global

    monkeypatch.setattr(_ratelimit_global, "_singleton", None)
    first = get_rate_limiter(RateLimitConfig(requests_per_minute=5))
    assert get_rate_limiter() is first
    assert get_rate_limiter(RateLimitConfig(requests_per_minute=5)) is first
    assert get_rate_limiter(RateLimitConfig(requests_per_minute=6)) is not first


def test_extract_endpoint_from_url() -> None:
    """The endpoint is the last resource segment, skipping versions, ids and extensions."""
    assert extract_endpoint_from_url("https://mastodon.social/api/v1/accounts/123/statuses") == "statuses"
    assert extract_endpoint_from_url("https://pixelfed.social/api/v1/media/123?x=1") == "media"
    assert extract_endpoint_from_url("https://api.twitter.com/2/tweets") == "tweets"
    assert extract_endpoint_from_url("/1.1/statuses/update.json") == "update"
    assert extract_endpoint_from_url("/api/v2/media/9f8e7d6c-1111-2222-3333-444455556666") == "media"
    assert extract_endpoint_from_url("https://example.com/") == ""


def test_testing_mode_skips_waits() -> None:
    """Under set_testing, acquire returns at once instead of waiting for the window."""
    limiter = RateLimiter(SlidingWindow(1, 3600.0))
    limiter.acquire()
    start = time.monotonic()
    with set_testing():
        assert limiter.acquire()
    assert time.monotonic() - start < 1.0


def test_eight_threads_on_one_memory_key_never_over_admit() -> None:
    """8 threads hammering one key get exactly the window's limit and the bucket's bound (real clock)."""
    commtel.events.set_listeners([])
    window = RateLimiter(SlidingWindow(500, 30.0))
    bucket = RateLimiter(TokenBucket(200.0, 50))
    admitted = {"window": 0, "bucket": 0}
    lock = threading.Lock()
    stop = time.monotonic() + 0.5

    def hammer() -> None:
        local = {"window": 0, "bucket": 0}
        while time.monotonic() < stop:
            local["window"] += window.try_acquire("hot").allowed
            local["bucket"] += bucket.try_acquire("hot").allowed
        with lock:
            for name, count in local.items():
                admitted[name] += count

    start = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    assert admitted["window"] == 500
    assert 50 <= admitted["bucket"] <= 50 + 200.0 * elapsed


def test_memory_backend_needs_no_thread_and_drops_idle_keys(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle keys are dropped as time passes (no background thread); active ones keep their state.

    Threads are counted as this test's thread starts them: other tests' threads may come and go meanwhile.
    """
    caller, start, started = threading.current_thread(), threading.Thread.start, []

    def recorded_start(thread: threading.Thread) -> None:
        if threading.current_thread() is caller:
            started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", recorded_start)
    backend = MemoryBackend()
    limiter = RateLimiter(SlidingWindow(1, 10.0), backend=backend)
    for i in range(1000):
        limiter.try_acquire(f"user-{i}")
    assert started == []
    store = backend.bind("default")
    assert len(store) == 1000
    clock.advance(11.5)
    assert limiter.try_acquire("user-0")  # its old unit expired; the rest are idle
    clock.advance(5.0)
    assert not limiter.try_acquire("user-0")  # within its new window: state kept
    clock.advance(6.5)
    limiter.try_acquire("user-1")
    assert len(store) == 2  # the 998 idle keys are gone
