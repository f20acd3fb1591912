"""The utility-modules API (utils, platform_context, progress_tracker, rate_limiter) through commtel.compat.

Each usage example of that API document runs as written with only the import line
changed; ``Config``, ``DatabaseManager`` and ``Post`` (the application's own classes
in the examples) are a small real SQLite-backed stand-in defined here, and the HTTP API is
a real local simulated platform. Behaviour tests of the documented semantics follow.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sqlalchemy import Boolean, ForeignKey, Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from commtel.simulator import SimulatedPlatform
from tests.harness.clock import FakeClock


# -- the application's side of the examples: config, database manager, models ----------------


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(50))


class PlatformConnection(Base):
    __tablename__ = "platform_connections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    platform_type: Mapped[str] = mapped_column(String(32))
    instance_url: Mapped[str | None] = mapped_column(String(200), default=None)
    username: Mapped[str | None] = mapped_column(String(100), default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    user: Mapped[User] = relationship()


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    platform_connection_id: Mapped[int] = mapped_column(ForeignKey("platform_connections.id"))
    text: Mapped[str] = mapped_column(String(100))


class Config:
    """The application's configuration: where its database is (set by the fixture)."""

    database_url = "sqlite://"


class DatabaseManager:
    """The application's database manager: an engine and ``get_session()``."""

    def __init__(self, config: Config) -> None:
        self.engine = create_engine(config.database_url)
        Base.metadata.create_all(self.engine)

    @contextmanager
    def get_session(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database file with two users, their connections and posts."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setattr(Config, "database_url", url)
    manager = DatabaseManager(Config())
    with manager.get_session() as session:
        session.add_all(
            [
                User(id=123, username="ada"),
                User(id=7, username="bob"),
                PlatformConnection(id=456, user_id=123, platform_type="pixelfed", instance_url="https://pix.example"),
                PlatformConnection(id=457, user_id=123, platform_type="mastodon", is_default=True),
                PlatformConnection(id=900, user_id=7, platform_type="mastodon"),
                Post(user_id=123, platform_connection_id=456, text="photo"),
                Post(user_id=123, platform_connection_id=457, text="toot"),
                Post(user_id=7, platform_connection_id=900, text="bob's"),
            ]
        )
        session.commit()
    manager.engine.dispose()
    return url


# -- utils: async_retry, RetryConfig, statistics ------------------------------------------------


def test_async_retry_example(clock: FakeClock) -> None:
    """The decorator with overrides and with a RetryConfig, on real HTTP with two 503s."""
    with SimulatedPlatform("data") as api:
        api.fail_next(2, 503)

        # fmt: off
        from commtel.compat import async_retry, RetryConfig

        # Using decorator with default config
        @async_retry(max_attempts=5, base_delay=2.0)
        async def fetch_data(url: str):
            async with httpx.AsyncClient() as client:
                response = await client.get(url)
                response.raise_for_status()
                return response.json()

        # Using decorator with custom config
        retry_config = RetryConfig(
            max_attempts=3,
            base_delay=1.0,
            backoff_factor=2.0,
            retry_on_timeout=True
        )

        @async_retry(config=retry_config)
        async def api_call():
            # API call implementation
            pass

        # fmt: on
        assert asyncio.run(fetch_data(f"{api.url}/api/items"))["ok"] is True
        assert asyncio.run(api_call()) is None
    assert len(clock.sleeps) == 2 and 1.8 <= clock.sleeps[0] <= 2.2 and 3.6 <= clock.sleeps[1] <= 4.4


def test_async_retry_raises_retry_exhausted_when_retries_run_out(clock: FakeClock) -> None:
    """RetryExhausted (cause: the last error) when retries run out; a non-retryable error passes unchanged."""
    from commtel.compat import RetryExhausted, async_retry

    with SimulatedPlatform("down") as api:
        api.fail_next(10, 503)

        @async_retry(max_attempts=3, base_delay=0.5, jitter=False)
        async def fetch() -> None:
            async with httpx.AsyncClient() as client:
                (await client.get(f"{api.url}/api/x")).raise_for_status()

        with pytest.raises(RetryExhausted) as raised:
            asyncio.run(fetch())
    assert raised.value.attempts == 3 and raised.value.operation.endswith("fetch")
    assert isinstance(raised.value.__cause__, httpx.HTTPStatusError)
    assert raised.value.__cause__.response.status_code == 503
    assert clock.sleeps == [0.5, 1.0]

    calls: list[int] = []

    @async_retry(max_attempts=3)
    async def bad_input() -> None:
        calls.append(1)
        raise ValueError("not retryable")

    with pytest.raises(ValueError, match="not retryable"):
        asyncio.run(bad_input())
    assert calls == [1]

    @async_retry(max_attempts=2, base_delay=0.0, retry_exceptions=[KeyError])
    def sync_too() -> None:
        raise KeyError("k")

    with pytest.raises(RetryExhausted) as sync_raised:
        sync_too()
    assert isinstance(sync_raised.value.__cause__, KeyError) and sync_raised.value.attempts == 2


def test_retry_config_signature_and_defaults() -> None:
    """Every documented parameter, in the documented order, with the documented defaults."""
    from commtel.compat import RetryConfig

    default = RetryConfig()
    assert (default.max_attempts, default.base_delay, default.max_delay, default.backoff_factor) == (3, 1.0, 30.0, 2.0)
    assert default.retry_exceptions == [] and default.retry_status_codes == frozenset()
    assert (default.jitter, default.jitter_factor) == (True, 0.1)
    assert default.retry_on_timeout and default.retry_on_connection_error
    assert default.retry_on_server_error and default.retry_on_rate_limit
    assert default.retry_on_specific_errors == ()
    config = RetryConfig(4, 0.5, 8.0, 3.0, [KeyError], [418], False, 0.2, False, False, False, False, ["flaky"])
    assert (config.max_attempts, config.base_delay, config.max_delay, config.backoff_factor) == (4, 0.5, 8.0, 3.0)
    assert config.on == (KeyError,) and config.retry_status_codes == frozenset({418})
    assert (config.jitter, config.jitter_factor) == (False, 0.2)
    assert not (config.retry_on_timeout or config.retry_on_connection_error)
    assert not (config.retry_on_server_error or config.retry_on_rate_limit)
    assert config.retry_on_specific_errors == ("flaky",)


def test_retry_specific_errors_and_statistics(clock: FakeClock) -> None:
    """retry_on_specific_errors matches message text; get_retry_stats_summary/detailed count every call."""
    from commtel.compat import RetryConfig, async_retry, get_retry_stats_detailed, get_retry_stats_summary

    before = get_retry_stats_summary()["total_calls"]
    failures = [RuntimeError("database is locked"), RuntimeError("database is locked")]

    @async_retry(config=RetryConfig(max_attempts=3, base_delay=0.1, retry_on_specific_errors=["is locked"]))
    async def write() -> str:
        if failures:
            raise failures.pop()
        return "written"

    assert asyncio.run(write()) == "written"
    summary = get_retry_stats_summary()
    assert summary["total_calls"] == before + 1 and summary["retries"] >= 2
    detail = get_retry_stats_detailed()["operations"][write.__qualname__]
    assert (detail["success_after_retry"], detail["retries"]) == (1, 2)


# -- platform context -------------------------------------------------------------------------------


def test_platform_context_example(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """set_context / is_valid / platform_info / filter_posts_by_platform / clear_context on a real database."""
    # fmt: off
    from commtel.compat import PlatformContextManager, PlatformContext

    config = Config()
    db_manager = DatabaseManager(config)

    with db_manager.get_session() as session:
        context_manager = PlatformContextManager(session)

        # Set context for user
        context = context_manager.set_context(
            user_id=123,
            platform_connection_id=456
        )

        if context.is_valid:
            print(f"Context set for platform: {context.platform_info['platform_type']}")

            # Use context for filtering
            posts_query = session.query(Post)
            filtered_query = context_manager.filter_posts_by_platform(posts_query)
            posts = filtered_query.all()

        # Clear context when done
        context_manager.clear_context()

        # fmt: on
        assert isinstance(context, PlatformContext)
        assert [post.text for post in posts] == ["photo"]
        assert context_manager.get_context() is None
    assert capsys.readouterr().out.startswith("Context set for platform:")


def test_platform_context_field_order_and_loaded_objects(database: str) -> None:
    """PlatformContext(user_id, user, platform_connection_id, platform_connection, session_id); objects loaded."""
    from commtel.compat import PlatformContext, PlatformContextError, PlatformContextManager

    bare = PlatformContext(1, None, 2, None, "s-1")
    assert (bare.user_id, bare.user, bare.platform_connection_id, bare.platform_connection, bare.session_id) == (
        1,
        None,
        2,
        None,
        "s-1",
    )
    assert bare.is_valid and not PlatformContext(1).is_valid
    db = DatabaseManager(Config())
    with db.get_session() as session:
        manager = PlatformContextManager(session, connection_model=PlatformConnection, user_model=User)
        ctx = manager.set_context(123)  # the default connection
        assert ctx.platform_connection_id == 457 and ctx.user.username == "ada"
        assert ctx.platform_info["platform_type"] == "mastodon" and ctx.is_valid
        assert manager.get_context() is ctx
        manager.clear_context()
        ctx = manager.set_context(123, 456)
        assert ctx.platform_info == {
            "platform_type": "pixelfed",
            "instance_url": "https://pix.example",
            "username": None,
            "name": None,
        }
        assert [p.text for p in manager.filter_posts_by_platform(session.query(Post), user_id=123).all()] == ["photo"]
        manager.clear_context()
        with pytest.raises(PlatformContextError, match="another user|does not belong"):
            manager.set_context(123, 900)  # bob's connection
        with pytest.raises(PlatformContextError):
            manager.filter_posts_by_platform(session.query(Post))  # no context: refuses to return every row
        without_user_model = PlatformContextManager(session, connection_model=PlatformConnection)
        assert without_user_model.set_context(7).user.username == "bob"  # through connection.user
        without_user_model.clear_context()


def test_platform_context_is_isolated_per_thread(database: str) -> None:
    """A context set in one thread is not visible in another."""
    from commtel.compat import PlatformContextManager

    db = DatabaseManager(Config())
    seen: list[object] = []
    with db.get_session() as session:
        manager = PlatformContextManager(session, connection_model=PlatformConnection)
        manager.set_context(123, 456)
        thread = threading.Thread(target=lambda: seen.append(manager.get_context()))
        thread.start()
        thread.join(5)
        assert manager.get_context().platform_connection_id == 456
        manager.clear_context()
    assert seen == [None]


# -- progress tracker ------------------------------------------------------------------------------


def test_progress_tracker_example(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """create / update / get / register_callback, stored in the application's database."""
    # fmt: off
    from commtel.compat import ProgressTracker, ProgressStatus

    config = Config()
    db_manager = DatabaseManager(config)
    tracker = ProgressTracker(db_manager)

    # Create progress session
    session_id = tracker.create_progress_session('task_123', user_id=456)

    # Update progress
    tracker.update_progress(
        task_id='task_123',
        current_step='Processing images',
        progress_percent=25,
        details={'images_processed': 5, 'total_images': 20}
    )

    # Get current progress
    progress = tracker.get_progress('task_123', user_id=456)
    if progress:
        print(f"Progress: {progress.progress_percent}% - {progress.current_step}")

    # Register callback for real-time updates
    def on_progress_update(status: ProgressStatus):
        print(f"Task {status.task_id}: {status.progress_percent}%")

    tracker.register_callback('task_123', on_progress_update)

    # fmt: on
    assert session_id == "task_123"
    assert tracker.update_progress("task_123", "Captioning", 50)
    assert capsys.readouterr().out == "Progress: 25% - Processing images\nTask task_123: 50%\n"
    again = ProgressTracker(DatabaseManager(config)).get_progress("task_123", user_id=456)  # persisted
    assert again is not None and again.progress_percent == 50 and again.details == {}


def test_progress_tracker_semantics(database: str) -> None:
    """ValueError for another user's task, None when reading it, int percent, False for refused updates."""
    from commtel.compat import ProgressStatus, ProgressTracker

    tracker = ProgressTracker(DatabaseManager(Config()))
    tracker.create_progress_session("t", user_id=1)
    with pytest.raises(ValueError, match="another user"):
        tracker.create_progress_session("t", user_id=2)
    assert tracker.get_progress("t", user_id=2) is None
    assert tracker.get_progress("missing", user_id=1) is None
    assert tracker.update_progress("t", "step", 33.7) is True
    status = tracker.get_progress("t", user_id=1)
    assert isinstance(status, ProgressStatus)
    assert status.progress_percent == 33 and isinstance(status.progress_percent, int)
    assert tracker.update_progress("t", "step", 101) is False
    assert tracker.update_progress("t", "step", -1) is False
    assert tracker.update_progress("missing", "step", 10) is False
    as_dict = status.to_dict()
    assert set(as_dict) == {
        "task_id",
        "user_id",
        "current_step",
        "progress_percent",
        "details",
        "started_at",
        "updated_at",
    }
    assert isinstance(status.started_at, datetime)
    assert datetime.fromisoformat(as_dict["updated_at"]) == status.updated_at
    tracker.tracker.finish_task("t")  # commtel's tracker underneath
    assert tracker.update_progress("t", "late", 99) is False
    assert tracker.get_progress("t", user_id=1).progress_percent == 100


# -- rate limiter ------------------------------------------------------------------------------------


def test_rate_limiter_example(clock: FakeClock, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """RateLimitConfig, get_rate_limiter, is_allowed / wait_time, the decorator with key_func, from_env."""
    from commtel.ratelimit import _global

    monkeypatch.setattr(_global, "_singleton", None)

    # fmt: off
    from commtel.compat import RateLimitConfig, get_rate_limiter, rate_limited

    # Create configuration
    config = RateLimitConfig(
        requests_per_minute=30,
        requests_per_hour=500,
        endpoint_limits={
            'media': {'minute': 10, 'hour': 100},
            'posts': {'minute': 20, 'hour': 200}
        },
        platform_limits={
            'mastodon': {'minute': 300, 'hour': 5000},
            'pixelfed': {'minute': 60, 'hour': 1000}
        }
    )

    # Get rate limiter
    limiter = get_rate_limiter(config)

    # Check if request is allowed
    allowed, info = limiter.is_allowed(
        key='user_123',
        endpoint='media',
        platform='mastodon'
    )

    if allowed:
        print("Request allowed")
    else:
        wait_time = limiter.wait_time('user_123', 'media', 'mastodon')
        print(f"Rate limited. Wait {wait_time} seconds")

    # Using decorator
    @rate_limited(
        config=config,
        key_func=lambda user_id: f"user_{user_id}",
        endpoint='posts',
        platform='pixelfed'
    )
    async def create_post(user_id: int, content: str):
        # Post creation logic
        return content

    # Environment-based configuration
    env_config = RateLimitConfig.from_env()

    # fmt: on
    assert capsys.readouterr().out == "Request allowed\n"
    assert info["limit"] == 10 and info["allowed"] is True
    assert get_rate_limiter(config) is limiter and get_rate_limiter() is limiter
    assert asyncio.run(create_post(123, "hello")) == "hello"
    assert asyncio.run(create_post(user_id=123, content="again")) == "again"
    assert env_config == RateLimitConfig()  # no RATE_LIMIT_* variables set here


def test_is_allowed_wait_time_and_reset_limits(clock: FakeClock) -> None:
    """is_allowed takes one unit per call, wait_time peeks, reset_limits forgets the key."""
    from commtel.compat import RateLimitConfig, RateLimiter

    limiter = RateLimiter(RateLimitConfig(endpoint_limits={"media": {"minute": 2}}))
    results = [limiter.is_allowed("user_123", "media", "mastodon") for _ in range(3)]
    assert [allowed for allowed, _ in results] == [True, True, False]
    assert results[2][1]["retry_after_s"] == pytest.approx(60.0)
    assert limiter.wait_time("user_123", "media", "mastodon") == pytest.approx(60.0)
    assert limiter.wait_time("user_123", "media", "mastodon") == pytest.approx(60.0)  # nothing consumed
    assert limiter.is_allowed("user_456", "media", "mastodon")[0]  # another key, another budget
    limiter.reset_limits("user_123")
    assert limiter.is_allowed("user_123", "media", "mastodon")[0]


def test_rate_limited_key_func_gives_each_user_a_budget(clock: FakeClock) -> None:
    """key_func=lambda user_id: ... keys by the argument it names, by position or keyword."""
    from commtel.compat import RateLimitConfig, rate_limited

    config = RateLimitConfig(platform_endpoint_limits={"pixelfed": {"posts": {"minute": 1}}})

    @rate_limited(config=config, key_func=lambda user_id: f"user_{user_id}", endpoint="posts", platform="pixelfed")
    async def create_post(user_id: int, content: str) -> str:
        return content

    @rate_limited(config=config, key_func=lambda user_id: f"user_{user_id}", endpoint="posts", platform="pixelfed")
    def create_post_sync(user_id: int, content: str) -> str:
        return content

    asyncio.run(create_post(1, "a"))
    asyncio.run(create_post(2, "b"))  # another user: no wait
    assert clock.sleeps == []
    asyncio.run(create_post(content="c", user_id=1))  # user 1 again: waits a minute
    assert clock.sleeps == [pytest.approx(60.0)]
    create_post_sync(3, "d")
    create_post_sync(user_id=3, content="e")
    assert clock.sleeps[1:] == [pytest.approx(60.0)]


def test_extract_endpoint_from_url_and_errors() -> None:
    """extract_endpoint_from_url names the resource; the documented exceptions are importable."""
    from commtel.compat import PlatformContextError, RateLimitExceeded, RetryExhausted, extract_endpoint_from_url

    assert extract_endpoint_from_url("https://mastodon.social/api/v1/accounts/123/statuses") == "statuses"
    assert extract_endpoint_from_url("https://pixelfed.social/api/v1/media/9f8e7d6c5b4a") == "media"
    assert all(issubclass(e, Exception) for e in (PlatformContextError, RateLimitExceeded, RetryExhausted))
